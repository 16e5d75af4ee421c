"""synthloop: manufacture verified, curated, grounded synthetic training data."""

from synthloop.errors import SynthloopError
from synthloop.records import Record, Verdict
from synthloop.recipe import Recipe, load_recipe

__version__ = "0.1.0"


def run(recipe: "Recipe | str", **kwargs: object) -> object:
    """Run a recipe (a `Recipe` or a path to a TOML file); returns the `RunResult`."""
    from synthloop.engines.local import run_recipe

    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    return run_recipe(recipe, **kwargs)  # type: ignore[arg-type]


__all__ = ["Record", "Recipe", "SynthloopError", "Verdict", "__version__", "load_recipe", "run"]
