"""A teacher task turns a planned record into requests, and the parsed answers back into fields.

A task is one file: its templates, its parsers (raise `ParseFailure` with a reason for unusable
output: the client re-asks, then rejects), `apply` (fill the record), and a canned answer for the
fake backend so the whole pipeline runs without a model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from synthloop.backends.base import Request, Response
from synthloop.recipe import BackendConfig
from synthloop.records import Record, Teacher
from synthloop.tasks.templates import Template, load_template

if TYPE_CHECKING:
    from synthloop.recipe import Recipe

#: Every task by name; `@register_task` adds one. The recipe's `plan.tasks` must name tasks here.
TASKS: dict[str, type["Task"]] = {}
T = TypeVar("T", bound="type[Task]")

#: Added to the user turn of a record planned around a seed example (a failed evaluation item).
SEED_LINE = "\n\nBuild it around this example, which a learner got wrong:\n{example}"


def register_task(cls: T) -> T:
    """Class decorator: make a task selectable by its `name` in `[plan] tasks`."""
    TASKS[cls.name] = cls
    return cls


def task_names() -> list[str]:
    import synthloop.tasks  # noqa: F401  (the built-in tasks register on import)

    return sorted(TASKS)


class Task:
    name: str = "task"
    #: One template per request the task sends for a record, in order.
    template_ids: tuple[str, ...] = ()
    #: template id -> canned, well-formed answer for the fake backend (tests, --dry-run).
    fake_answers: ClassVar[dict[str, Callable[[Request], str]]] = {}

    def __init__(self, recipe: "Recipe | None" = None) -> None:
        self.recipe = recipe
        self.templates: list[Template] = [load_template(t) for t in self.template_ids]

    def parsers(self) -> list[Callable[[Response], Any]]:
        """One parser per template; each returns a value or raises ParseFailure."""
        raise NotImplementedError

    def apply(self, record: Record, values: list[Any]) -> None:
        """Fill the record from the parsed values (same order as the templates)."""
        raise NotImplementedError

    def requests(self, record: Record, cfg: BackendConfig, seed: int) -> list[Request]:
        fields = {
            "topic": record.topic,
            "skill": record.skill,
            "persona": record.persona,
            "difficulty": record.difficulty,
        }
        return [
            Request.chat(
                _with_seed(t.render(**fields), record),
                model=cfg.model,
                temperature=cfg.temperature,
                top_p=cfg.top_p,
                max_tokens=cfg.max_tokens,
                seed=seed,
                tag=f"{self.name}:{t.id}",
            )
            for t in self.templates
        ]

    def teacher(self, cfg: BackendConfig) -> Teacher:
        return Teacher(
            backend=cfg.backend,
            model=cfg.model,
            params={"temperature": cfg.temperature, "top_p": cfg.top_p, "max_tokens": cfg.max_tokens},
            template_id="+".join(t.id for t in self.templates),
            template_hash="+".join(t.hash for t in self.templates),
        )


def _with_seed(messages: list[dict[str, str]], record: Record) -> list[dict[str, str]]:
    """A record planned around a seed example names it in its prompt (and in `parent_ids`)."""
    example = record.meta.get("seed_example")
    if not example or not messages:
        return messages
    last = dict(messages[-1])
    last["content"] += SEED_LINE.format(example=example)
    return [*messages[:-1], last]
