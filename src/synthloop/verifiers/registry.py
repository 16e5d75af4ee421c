"""Verifiers register themselves here: a name, a factory that builds the verifier from the recipe
(or returns None when the recipe switches it off), and which records it checks. The verify stage
gives each record to the first registered verifier that applies to it.

    register_verifier("python_tests", lambda recipe: PythonCodeVerifier(...), applies=has_tests)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from synthloop.pipeline.stage import Verifier
from synthloop.recipe import Recipe
from synthloop.records import Record

Factory = Callable[[Recipe], Verifier | None]
Applies = Callable[[Record], bool]


@dataclass(frozen=True)
class VerifierSpec:
    name: str
    factory: Factory
    applies: Applies


_VERIFIERS: dict[str, VerifierSpec] = {}


def register_verifier(name: str, factory: Factory, *, applies: Applies = lambda r: True, first: bool = False) -> None:
    """Add (or replace) a verifier; registration order is the order records are offered in
    (`first`: before every other, e.g. the verifier of recipe-defined tasks)."""
    global _VERIFIERS
    spec = VerifierSpec(name, factory, applies)
    if first:
        _VERIFIERS = {name: spec, **{k: v for k, v in _VERIFIERS.items() if k != name}}
    else:
        _VERIFIERS[name] = spec


def unregister_verifier(name: str) -> None:
    _VERIFIERS.pop(name, None)


def verifier_names() -> list[str]:
    return list(_VERIFIERS)


class _Routed:
    """A built verifier with its spec's `applies`, as `VerifierStage` expects."""

    def __init__(self, verifier: Verifier, applies: Applies) -> None:
        self.verifier = verifier
        self.name = verifier.name
        self.parallel = bool(getattr(verifier, "parallel", False))  # see `pipeline.stage.parallel_safe`
        self._applies = applies

    def applies(self, record: Record) -> bool:
        return self._applies(record)

    def verify(self, record: Record) -> Any:
        return self.verifier.verify(record)


def build_verifiers(recipe: Recipe) -> list[Verifier]:
    out: list[Verifier] = []
    for spec in _VERIFIERS.values():
        v = spec.factory(recipe)
        if v is not None:
            out.append(_Routed(v, spec.applies))
    return out


__all__ = ["VerifierSpec", "build_verifiers", "register_verifier", "unregister_verifier", "verifier_names"]
