"""Teacher tasks. A new task is one file with `@register_task` on its class, one import line
below (or an import in the user's own code before the recipe is loaded), and one test."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from synthloop.tasks.base import Task, register_task, task_names

if TYPE_CHECKING:
    from synthloop.recipe import Recipe

# The built-in tasks register themselves on import.
from synthloop.tasks import instruction as _instruction  # noqa: E402,F401
from synthloop.tasks import textbook as _textbook  # noqa: E402,F401
from synthloop.tasks.base import TASKS  # noqa: E402


def get_task(name: str, recipe: "Recipe | None" = None) -> Task:
    return TASKS[name](recipe)


def task_fake_answers() -> dict[str, Any]:
    """`tag prefix -> canned answer` for every registered task's templates (the fake backend)."""
    out: dict[str, Any] = {}
    for name, cls in TASKS.items():
        for template_id, fn in cls.fake_answers.items():
            out[f"{name}:{template_id}"] = fn
    return out


__all__ = ["TASKS", "Task", "get_task", "register_task", "task_fake_answers", "task_names"]
