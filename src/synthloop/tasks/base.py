"""A teacher task turns a planned record into requests, and the parsed answers back into fields.

A task is one file: its templates, its parsers (raise `ParseFailure` with a reason for unusable
output: the client re-asks, then rejects), `apply` (fill the record), and a canned answer for the
fake backend so the whole pipeline runs without a model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from synthloop.backends.base import Request, Response
from synthloop.recipe import BackendConfig
from synthloop.records import Record, Teacher
from synthloop.tasks.templates import Template, load_template


class Task:
    name: str = "task"
    #: One template per request the task sends for a record, in order.
    template_ids: tuple[str, ...] = ()

    def __init__(self) -> None:
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
                t.render(**fields),
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
