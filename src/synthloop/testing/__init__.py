"""Test helpers that are public API: an OpenAI-compatible stub server (and, in
`synthloop.backends.fake`, a deterministic in-process backend)."""

from __future__ import annotations

from typing import Any

__all__ = ["Fault", "OpenAIStub"]


def __getattr__(name: str) -> Any:
    # Lazy, so `python -m synthloop.testing.openai_stub` does not import the module twice.
    if name in __all__:
        from synthloop.testing import openai_stub

        return getattr(openai_stub, name)
    raise AttributeError(f"module 'synthloop.testing' has no attribute {name!r}")
