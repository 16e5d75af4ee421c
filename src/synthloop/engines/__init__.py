"""Engines decide where stages run: `local` (this process) or `ray` (Ray workers); each engine is one file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from synthloop.engines.base import Chunk, ChunkResult, Commit, Engine
from synthloop.errors import RecipeError

if TYPE_CHECKING:
    from synthloop.backends import Budget
    from synthloop.recipe import Recipe
    from synthloop.records import Usage

ENGINES = ("local", "ray")


@dataclass
class EngineSetup:
    """What an engine that runs stages elsewhere needs of the run: the recipe (a worker builds its
    own stages from it: stages hold model clients and cannot travel), the run directory (its request
    cache and spend ledger), the run's budget (kept equal to the ledger's total) and the usage the
    session reports (workers' requests are added to it), and the golden texts (memorisation)."""

    recipe: "Recipe"
    run_dir: Path
    budget: "Budget | None" = None
    usage: "Usage | None" = None
    golden_texts: list[str] | None = None


def make_engine(name: str = "local", setup: EngineSetup | None = None) -> Engine:
    if name == "local":
        from synthloop.engines.local import LocalEngine

        return LocalEngine()
    if name == "ray":
        if setup is None:
            raise RecipeError("the ray engine needs the run (make_engine('ray', EngineSetup(recipe, run_dir)))")
        from synthloop.engines.ray import RayEngine

        return RayEngine(setup)
    raise RecipeError(f"unknown engine {name!r}: use one of {', '.join(ENGINES)}")


__all__ = ["ENGINES", "Chunk", "ChunkResult", "Commit", "Engine", "EngineSetup", "make_engine"]
