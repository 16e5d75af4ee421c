"""The built-in python-docs golden set: a committed snapshot, reproducible and labelled by topic."""

from __future__ import annotations

import gzip
import hashlib
import json
import platform
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from synthloop.errors import InputError
from synthloop.grounding import (
    GroundingConfig,
    load_builtin,
    load_golden,
)
from synthloop.grounding.builtin import PYTHON_DOCS_MODULES, SNAPSHOTS

SNAPSHOT = SNAPSHOTS["python-docs"]
#: Pinned: a change to the committed snapshot must be deliberate (rebuild + update these numbers).
SNAPSHOT_ROWS = 943
SNAPSHOT_SHA256 = "a071716067490cd67401127d9c5b9c30468cdf5befb28739a4a66e6190a33ee9"


def _snapshot_python() -> str:
    with gzip.open(SNAPSHOT, "rt", encoding="utf-8") as fh:
        return str(json.loads(fh.readline())["python"])


def test_snapshot_is_committed_small_and_pinned() -> None:
    assert SNAPSHOT.stat().st_size < 1_500_000
    assert hashlib.sha256(SNAPSHOT.read_bytes()).hexdigest() == SNAPSHOT_SHA256


def test_builtin_loads_with_topics_skills_and_a_stable_split() -> None:
    g = load_builtin("python-docs")
    again = load_golden(GroundingConfig())
    assert len(g) == SNAPSHOT_ROWS and g.report.bad_rows == []
    assert [r.id for r in g.train] == [r.id for r in again.train]
    assert g.heldout_ids == again.heldout_ids and 0.05 < len(g.heldout) / len(g) < 0.15
    rows = {r.id: r for r in g.train + g.heldout}
    chain = rows["golden:python-docs:itertools.chain"]
    assert (chain.topic, chain.skill, chain.source) == ("itertools", "library-reference", "golden")
    assert chain.text.startswith("itertools.chain") and chain.meta["title"] == "itertools.chain"
    assert rows["golden:python-docs:topic:assignment"].skill == "language-reference"
    topics = Counter(r.topic for r in rows.values() if r.skill == "library-reference")
    assert set(topics) == set(PYTHON_DOCS_MODULES)


def test_builtin_never_reads_the_live_docs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pydoc_data.topics", None)  # any import of it now fails
    assert len(load_builtin()) == SNAPSHOT_ROWS


def test_rebuilding_is_byte_identical(tmp_path: Path) -> None:
    # Built in fresh interpreters, as a maintainer rebuilds it: what other tests imported or
    # patched in this process (module attributes, handlers) must not leak into the snapshot.
    a, b = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz"
    for out in (a, b):
        code = f"from synthloop.grounding import build_python_docs_snapshot; build_python_docs_snapshot({str(out)!r})"
        subprocess.run([sys.executable, "-c", code], check=True)
    assert a.read_bytes() == b.read_bytes()
    if platform.python_version() == _snapshot_python():
        assert a.read_bytes() == SNAPSHOT.read_bytes()


def test_unknown_builtin_name_lists_the_known_ones() -> None:
    with pytest.raises(InputError, match="use one of python-docs"):
        load_builtin("java-docs")
