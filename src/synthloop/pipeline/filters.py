"""Filters register themselves here: a name and a factory that builds the stage from the recipe (or
returns None when the recipe leaves it off). Registered filters run after the built-in per-record
curation filters and before dedup, in registration order.

    register_filter("no_todo", lambda recipe: NoTodo())
"""

from __future__ import annotations

from collections.abc import Callable

from synthloop.pipeline.stage import Stage
from synthloop.recipe import Recipe

FilterFactory = Callable[[Recipe], Stage | None]

_FILTERS: dict[str, FilterFactory] = {}


def register_filter(name: str, factory: FilterFactory) -> None:
    _FILTERS[name] = factory


def unregister_filter(name: str) -> None:
    _FILTERS.pop(name, None)


def build_filters(recipe: Recipe) -> list[Stage]:
    return [s for f in _FILTERS.values() if (s := f(recipe)) is not None]


__all__ = ["build_filters", "register_filter", "unregister_filter"]
