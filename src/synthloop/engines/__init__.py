"""Engines decide where stages run: `local` (this process) today; each engine is one file."""

from __future__ import annotations

from synthloop.engines.base import Chunk, ChunkResult, Commit, Engine
from synthloop.errors import RecipeError


def make_engine(name: str = "local") -> Engine:
    if name == "local":
        from synthloop.engines.local import LocalEngine

        return LocalEngine()
    raise RecipeError(f"unknown engine {name!r}: use 'local'")


__all__ = ["Chunk", "ChunkResult", "Commit", "Engine", "make_engine"]
