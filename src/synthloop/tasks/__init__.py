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
from synthloop.tasks.spec import load_builtin_specs  # noqa: E402
from synthloop.tasks.verify import register as _register_verifier  # noqa: E402

load_builtin_specs()  # tasks written as data (tasks/builtin/*.toml): output_prediction
_register_verifier()  # the verifier of spec tasks, offered records before the built-in ones


def get_task(name: str, recipe: "Recipe | None" = None) -> Task:
    return TASKS[name](recipe)


def judge_rubric(name: str) -> str:
    """The judge rubric of a task (`judge.rubric = "auto"`): a spec task's `rubric`, else its name."""
    from synthloop.tasks.spec import SpecTask

    cls = TASKS[name]
    return cls.compiled.rubric if issubclass(cls, SpecTask) else name


def task_fake_answers() -> dict[str, Any]:
    """`tag prefix -> canned answer` for every registered task's templates (the fake backend)."""
    out: dict[str, Any] = {}
    for name, cls in TASKS.items():
        for template_id, fn in cls.fake_answers.items():
            out[f"{name}:{template_id}"] = fn
    return out


__all__ = ["TASKS", "Task", "get_task", "judge_rubric", "register_task", "task_fake_answers", "task_names"]
