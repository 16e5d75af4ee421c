"""synthloop: manufacture verified, curated, grounded synthetic training data."""

from typing import Any

from synthloop.errors import SynthloopError
from synthloop.recipe import Recipe, load_recipe
from synthloop.records import Record, Verdict

__version__ = "0.1.0"


def run(recipe: "Recipe | str", **kwargs: Any) -> Any:
    """Run (or resume) a recipe (a `Recipe` or a path to a TOML file); returns the `RunResult`.
    Keyword arguments: `runs_dir`, `backend`, `progress`, `steer`, `hooks` (see `synthloop.rounds.Run`)."""
    from synthloop.rounds import run as run_rounds

    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    return run_rounds(recipe, **kwargs)


__all__ = ["Record", "Recipe", "SynthloopError", "Verdict", "__version__", "load_recipe", "run"]
