"""Steering: per-skill results of the rounds so far -> the next round's budget per skill.

Allocators are pluggable by name (`ALLOCATORS`, `register_allocator`). Each sees the whole history
(what every round was given and what the student scored after it) and returns examples per skill.

- `uniform`: the same share for every skill (the control arm).
- `error`: proportional to error, above a floor. Measured on this CPU to hurt: it moved budget to
  fractions, which a 135M student does not learn in minutes, and starved the skills it was learning.
- `expected_gain` (default): error x the skill's measured response to data, i.e. how much its
  accuracy rose per example added in the round where its budget last rose. A skill that did not
  improve by `response_min_gain` then gets its floor, not more: more data is not what it lacks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from synthloop.errors import InputError
from synthloop.student.config import SteerConfig

if TYPE_CHECKING:
    from synthloop.student.evaluate import EvalResult


@dataclass
class RoundOutcome:
    """One round: examples given per skill and accuracy per skill measured after training on them."""

    budget: dict[str, int]
    accuracy: dict[str, float]


@dataclass
class History:
    rounds: list[RoundOutcome]
    #: Accuracy before any training (None: taken as 0 everywhere, as measured for the base SmolLM2).
    baseline: dict[str, float] | None = None
    #: True when each round continues from the previous checkpoint (its budget adds to what was
    #: learned); False when each round retrains from the base (only an increase adds data).
    cumulative: bool = True
    skills: list[str] = field(default_factory=list)

    def all_skills(self) -> list[str]:
        names = set(self.skills) | {s for r in self.rounds for s in r.budget} | {s for r in self.rounds for s in r.accuracy}
        return sorted(names)


Allocator = Callable[[History, int, SteerConfig], dict[str, int]]
ALLOCATORS: dict[str, Allocator] = {}


def register_allocator(name: str) -> Callable[[Allocator], Allocator]:
    def add(fn: Allocator) -> Allocator:
        ALLOCATORS[name] = fn
        return fn

    return add


def allocate(history: History, total: int, cfg: SteerConfig) -> dict[str, int]:
    """Examples per skill for the next round (summing to `total`), by `cfg.allocator`."""
    if cfg.allocator not in ALLOCATORS:
        raise InputError(f"unknown student.steer.allocator {cfg.allocator!r}: use one of {', '.join(sorted(ALLOCATORS))}")
    if not history.all_skills():
        raise InputError("steering needs at least one skill: evaluate the student before allocating")
    return ALLOCATORS[cfg.allocator](history, total, cfg)


def weights(budget: Mapping[str, int]) -> dict[str, float]:
    """Examples per skill -> shares that sum to 1."""
    total = sum(budget.values())
    return {s: (n / total if total else 1 / len(budget)) for s, n in budget.items()}


def cell_weights(skill_weights: Mapping[str, float], cells: Sequence[Mapping[str, Any]]) -> list[float]:
    """One plan weight per cell ({topic, skill, persona, difficulty, ...}): a skill's share is split
    evenly over its cells, so the plan draws `share x total` records from that skill whatever its
    number of cells. A cell whose skill has no weight gets 0."""
    per_skill: dict[str, int] = {}
    for c in cells:
        per_skill[str(c["skill"])] = per_skill.get(str(c["skill"]), 0) + 1
    return [skill_weights.get(str(c["skill"]), 0.0) / per_skill[str(c["skill"])] for c in cells]


# -- the allocators -----------------------------------------------------------------------------------
@register_allocator("uniform")
def uniform(history: History, total: int, cfg: SteerConfig) -> dict[str, int]:
    return _integer_split({s: 1.0 for s in history.all_skills()}, total)


@register_allocator("error")
def error_proportional(history: History, total: int, cfg: SteerConfig) -> dict[str, int]:
    acc = _latest(history)
    return _with_floor({s: 1.0 - acc[s] for s in history.all_skills()}, total, cfg.floor_examples)


@register_allocator("expected_gain")
def expected_gain(history: History, total: int, cfg: SteerConfig) -> dict[str, int]:
    """Error x marginal response, above the floors. A skill's marginal response (accuracy per example
    added) needs two rounds in which its data grew: the first rise from an untrained start mostly
    measures learning the answer format, and favours the skills already half learned (measured:
    `expected_gain_v1` below, docs/classroom.md). Until then a skill that rose at all counts as
    responding at the mean rate of the skills whose rate is known (every skill alike when none is);
    a skill that did not rise keeps its floor."""
    acc, skills = _latest(history), history.all_skills()
    rates = {s: marginal_response(history, s, cfg.response_min_gain) for s in skills}
    known = [r for r in rates.values() if r is not None and r > 0]
    fill = sum(known) / len(known) if known else 1.0
    gain = {s: (1.0 - acc[s]) * (fill if r is None else r) for s, r in rates.items()}
    return _with_floor(gain, total, cfg.floor_examples)


@register_allocator("expected_gain_v1")
def expected_gain_v1(history: History, total: int, cfg: SteerConfig) -> dict[str, int]:
    """Error x the rise per example of the skill's last round of growth, the first rise from an
    untrained start included (the first allocator measured in docs/classroom.md; kept to compare)."""
    acc, skills = _latest(history), history.all_skills()
    gain = {s: (1.0 - acc[s]) * response(history, s, cfg.response_min_gain) for s in skills}
    return _with_floor(gain, total, cfg.floor_examples)


def _growth(history: History, skill: str) -> list[tuple[int, float]]:
    """(examples added, accuracy gained) for every round in which the skill's data grew."""
    before = history.baseline or {}
    prev_acc, prev_budget, out = before.get(skill, 0.0), 0, []
    for r in history.rounds:
        added = r.budget.get(skill, 0) if history.cumulative else r.budget.get(skill, 0) - prev_budget
        if added > 0:
            out.append((added, r.accuracy.get(skill, 0.0) - prev_acc))
        prev_acc, prev_budget = r.accuracy.get(skill, prev_acc), r.budget.get(skill, 0)
    return out


def response(history: History, skill: str, min_gain: float) -> float:
    """Accuracy gained per example added, in the last round where the skill's data grew; 0 when
    that gain was below `min_gain` (or there is no such round yet: no evidence, no extra budget)."""
    growth = _growth(history, skill)
    if not growth:
        return 0.0
    added, rise = growth[-1]
    return rise / added if rise >= max(min_gain, 1e-12) else 0.0


def marginal_response(history: History, skill: str, min_gain: float) -> float | None:
    """Like `response`, from the second round of growth on; after only one, None when the skill rose
    (it responds, at a rate not yet known) and 0 when it did not."""
    growth = _growth(history, skill)
    if len(growth) == 1:
        return None if growth[0][1] >= max(min_gain, 1e-12) else 0.0
    return response(history, skill, min_gain)


def _latest(history: History) -> dict[str, float]:
    last = history.rounds[-1].accuracy if history.rounds else (history.baseline or {})
    return {s: float(last.get(s, 0.0)) for s in history.all_skills()}


def _with_floor(scores: dict[str, float], total: int, floor: int) -> dict[str, int]:
    """`floor` examples per skill, the rest in proportion to `scores`; uniform when no skill scores
    above 0 (nothing to tell them apart) or the floors alone exceed the budget."""
    if floor * len(scores) >= total or not any(v > 0 for v in scores.values()):
        return _integer_split({s: 1.0 for s in scores}, total)
    extra = _integer_split(scores, total - floor * len(scores))
    return {s: floor + extra[s] for s in scores}


def _integer_split(shares: Mapping[str, float], total: int) -> dict[str, int]:
    """Whole examples in proportion to `shares`, summing to `total` (largest remainders first)."""
    mass = sum(shares.values())
    raw = {s: total * v / mass for s, v in shares.items()}
    out = {s: int(x) for s, x in raw.items()}
    for s in sorted(raw, key=lambda k: (out[k] - raw[k], k))[: total - sum(out.values())]:
        out[s] += 1
    return out


# -- failed items as seeds (LLM2LLM) -------------------------------------------------------------------
@dataclass(frozen=True)
class Seed:
    """A question the student got wrong: the next round's prompts can build on it, and a record
    generated from it names `parent_id` in its `parent_ids`."""

    parent_id: str
    skill: str
    question: str
    reference: str
    reply: str


def failed_items_as_seeds(eval_results: "EvalResult", per_skill: int = 20) -> dict[str, list[Seed]]:
    """Up to `per_skill` failed items of each skill (in evaluation order), from an `EvalResult`."""
    out: dict[str, list[Seed]] = {}
    for item in eval_results.items:
        mine = out.setdefault(item.skill, [])
        if not item.correct and len(mine) < per_skill:
            mine.append(Seed(item.id, item.skill, item.question, item.reference, item.reply))
    return out


# -- the one call between rounds ------------------------------------------------------------------------
@dataclass
class SteerPlan:
    """What the next round should generate: examples and shares per skill, one weight per plan
    cell, and the failed items each skill's prompts may build on."""

    budget: dict[str, int]
    weights: dict[str, float]
    cell_weights: list[float]
    seeds: dict[str, list[Seed]]


def steer_round(history: History, total: int, cfg: SteerConfig, *, cells: Sequence[Mapping[str, Any]] = (),
                last_eval: "EvalResult | None" = None) -> SteerPlan:
    """Budget, plan-cell weights and LLM2LLM seeds for the next round (what a rounds hook returns)."""
    budget = allocate(history, total, cfg)
    shares = weights(budget)
    seeds = failed_items_as_seeds(last_eval, cfg.failed_seeds_per_skill) if last_eval and cfg.failed_seeds_per_skill else {}
    return SteerPlan(budget=budget, weights=shares, cell_weights=cell_weights(shares, cells), seeds=seeds)


__all__ = ["ALLOCATORS", "Allocator", "History", "RoundOutcome", "Seed", "SteerPlan", "allocate", "cell_weights",
           "error_proportional", "expected_gain", "expected_gain_v1", "failed_items_as_seeds", "marginal_response", "register_allocator", "response",
           "steer_round", "uniform", "weights"]
