"""The plan: which records to make in a round. Cells are topic x skill x persona x difficulty; each
cell gets `per_cell` records per task. Ids and seeds are derived from the round and the cell, so the
same recipe always plans the same records in the same order (the basis of resume).

Later rounds may be steered: `weights` (cell key -> weight) re-divides the round's record budget over
the cells in proportion (largest remainder, deterministic); a cell with weight 0 gets nothing.
Uniform weights (or none) give exactly the unsteered plan.

A recipe may weigh axis values (`[plan.weights.<axis>]`: a cell weighs the product of its values'
weights) and exclude impossible combinations (`[[plan.exclude]]`); recipes without either plan
exactly as before. Records of a task with `seeds = true` each take a seed chunk, in turn: the
unsteered plan gives every chunk `per_cell` records (spread over the cells), and the chunk's id is
in the record's `parent_ids` (and its file, offsets and text in `meta["seed_chunk"]`)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import xxhash

from synthloop.recipe import Recipe
from synthloop.records import Record

#: Plan weights: cell key (`Cell.key`) -> non-negative weight. Missing cells weigh 0.
PlanWeights = dict[str, float]


@dataclass(frozen=True)
class Cell:
    topic: str
    skill: str
    persona: str
    difficulty: str

    @property
    def key(self) -> str:
        return f"{self.topic}|{self.skill}|{self.persona}|{self.difficulty}"


@dataclass(frozen=True)
class SeedItem:
    """An example a round's prompts are built around (a failed evaluation item, say); records made
    from it name it in `parent_ids`."""

    id: str
    text: str
    cell: str


def cells(recipe: Recipe) -> list[Cell]:
    """Every combination of the axes, less the ones `[[plan.exclude]]` rules out."""
    p = recipe.plan
    out = [Cell(*c) for c in itertools.product(p.topics, p.skills, p.personas, p.difficulties)]
    return [c for c in out if not excluded(c, p.exclude)] if p.exclude else out


def excluded(cell: Cell, rules: Sequence[Mapping[str, str | list[str]]]) -> bool:
    """A cell matching every key of one rule (a value, or any of a list) is excluded."""
    def hit(axis: str, want: str | list[str]) -> bool:
        return getattr(cell, axis) in ([want] if isinstance(want, str) else want)

    return any(rule and all(hit(a, v) for a, v in rule.items()) for rule in rules)


def axis_weights(recipe: Recipe) -> PlanWeights | None:
    """Cell weights from `[plan.weights.<axis>]` (product over axes; unlisted values weigh 1); None without."""
    w = recipe.plan.weights
    if not w:
        return None
    out: PlanWeights = {}
    for c in cells(recipe):
        value = 1.0
        for axis, table in w.items():
            value *= float(table.get(getattr(c, axis), 1.0))
        out[c.key] = value
    return out


def uniform_weights(recipe: Recipe) -> PlanWeights:
    return {c.key: 1.0 for c in cells(recipe)}


def weights_by_axis(recipe: Recipe, axis: str, values: Mapping[str, float]) -> PlanWeights:
    """Cell weights from weights on one axis (`skill`, `topic`, ...): each cell takes its value's."""
    return {c.key: float(values.get(getattr(c, axis), 0.0)) for c in cells(recipe)}


def round_size(recipe: Recipe) -> int:
    """How many records a round plans: `rounds.records_per_round`, else the unsteered plan's size."""
    if recipe.rounds.records_per_round is not None:
        return recipe.rounds.records_per_round
    return len(_items(recipe))


def plan(recipe: Recipe, round: int = 0, weights: Mapping[str, float] | None = None,
         seeds: Sequence[SeedItem] = ()) -> list[Record]:
    """All planned records for a round."""
    prior = axis_weights(recipe)
    if weights and not _is_uniform(recipe, weights):
        steered = weights if prior is None else {k: float(weights.get(k, 0.0)) * v for k, v in prior.items()}
        items = _weighted_items(recipe, steered, round_size(recipe))
    elif prior is not None:
        items = _weighted_items(recipe, prior, round_size(recipe))
    else:
        items = _items(recipe)
        n = round_size(recipe)
        if n != len(items):
            items = _weighted_items(recipe, uniform_weights(recipe), n)
    by_cell: dict[str, list[SeedItem]] = {}
    for s in seeds:
        by_cell.setdefault(s.cell, []).append(s)
    chunks = _chunk_for(recipe, items)
    return [_record(recipe, round, cell, task, k, by_cell.get(cell.key, []), chunks[i]) for i, (cell, task, k) in enumerate(items)]


def seed_tasks(recipe: Recipe) -> list[str]:
    """The planned tasks that write from seed chunks (`seeds = true`)."""
    from synthloop.tasks.base import TASKS

    out = []
    for t in recipe.plan.tasks:
        compiled = getattr(TASKS.get(t), "compiled", None)
        if compiled is not None and compiled.spec.seeds:
            out.append(t)
    return out


def _seed_chunks(recipe: Recipe) -> list[Any]:
    from synthloop.errors import RecipeError
    from synthloop.seeds import load_chunks

    if recipe.seeds is None:
        raise RecipeError(f"task(s) {', '.join(seed_tasks(recipe))} write from seed documents: add a [seeds] section with paths = [...]")
    return load_chunks(recipe.seeds)


def _chunk_for(recipe: Recipe, items: list["Item"]) -> list[Any]:
    """The seed chunk of each item (None for other tasks): each seeded task's items take the chunks in turn."""
    grounded = set(seed_tasks(recipe))
    if not grounded:
        return [None] * len(items)
    chunks = _seed_chunks(recipe)
    seen: dict[str, int] = {}
    out: list[Any] = []
    for _, task, _ in items:
        if task in grounded:
            out.append(chunks[seen.get(task, 0) % len(chunks)])
            seen[task] = seen.get(task, 0) + 1
        else:
            out.append(None)
    return out


def _record(recipe: Recipe, round: int, cell: Cell, task: str, k: int, seeds: list[SeedItem], chunk: Any = None) -> Record:
    key = f"{round}|{task}|{cell.topic}|{cell.skill}|{cell.persona}|{cell.difficulty}|{k}"
    if chunk is not None:
        key += f"|{chunk.id}"
    meta: dict[str, Any] = {"seed": record_seed(recipe.seed, key)}
    parents: list[str] = []
    if chunk is not None:
        meta["seed_chunk"] = chunk.meta()
        parents.append(chunk.id)
    if seeds:
        seed = seeds[k % len(seeds)]
        meta["seed_example"] = seed.text
        parents.append(seed.id)
    return Record(
        id=f"r{round}-{xxhash.xxh3_64_hexdigest(key.encode())[:12]}",
        task=task, topic=cell.topic, skill=cell.skill, persona=cell.persona, difficulty=cell.difficulty,
        round=round, parent_ids=parents, meta=meta,
    )


Item = tuple[Cell, str, int]


def _items(recipe: Recipe) -> list[Item]:
    """The unsteered plan: every cell x task x per_cell, capped by `plan.max_records`."""
    grounded = set(seed_tasks(recipe))
    all_cells = cells(recipe)
    items = [(cell, task, k) for cell in all_cells for task in recipe.plan.tasks if task not in grounded for k in range(recipe.plan.per_cell)]
    if grounded and all_cells:
        n = recipe.plan.per_cell * len(_seed_chunks(recipe))  # every chunk, per_cell times, over the cells
        items += [(all_cells[j % len(all_cells)], task, j // len(all_cells)) for task in recipe.plan.tasks if task in grounded for j in range(n)]
    cap = recipe.plan.max_records
    if cap is not None and cap < len(items):
        items = _spread_sample(items, cap, seed=recipe.seed)
    return items


def _weighted_items(recipe: Recipe, weights: Mapping[str, float], n: int) -> list[Item]:
    """`n` items divided over (cell, task) pairs in proportion to the cells' weights."""
    pairs = [(c, t) for c in cells(recipe) for t in recipe.plan.tasks]
    counts = apportion([max(0.0, float(weights.get(c.key, 0.0))) for c, _ in pairs], n)
    return [(c, t, k) for (c, t), m in zip(pairs, counts) for k in range(m)]


def apportion(weights: Sequence[float], n: int) -> list[int]:
    """Split `n` in proportion to `weights` (largest remainder; ties to the earlier entry)."""
    if not weights:
        return []
    exact = [Fraction(w).limit_denominator(10**6) for w in weights]
    total = sum(exact)
    if total == 0:
        exact, total = [Fraction(1)] * len(weights), Fraction(len(weights))
    shares = [n * w / total for w in exact]
    counts = [int(s) for s in shares]
    order = sorted(range(len(shares)), key=lambda i: (-(shares[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


def _is_uniform(recipe: Recipe, weights: Mapping[str, float]) -> bool:
    values = {float(weights.get(c.key, 0.0)) for c in cells(recipe)}
    return len(values) == 1 and values.pop() > 0


def record_seed(base: int, key: str) -> int:
    return (base * 1_000_003 + xxhash.xxh32_intdigest(key.encode())) % (2**31)


def _spread_sample(items: list[Item], n: int, seed: int) -> list[Item]:
    """Shuffle within each topic, then take topics round-robin: every topic is covered before any
    topic gets a second item. Deterministic for a seed."""
    rng = random.Random(seed)
    by_topic: dict[str, list[Item]] = {}
    for it in items:
        by_topic.setdefault(it[0].topic, []).append(it)
    for group in by_topic.values():
        rng.shuffle(group)
    picked: list[Item] = []
    for row in itertools.zip_longest(*by_topic.values()):
        picked.extend(x for x in row if x is not None)
    return picked[:n]


__all__ = ["Cell", "PlanWeights", "SeedItem", "apportion", "axis_weights", "cells", "excluded", "seed_tasks", "plan", "round_size", "uniform_weights", "weights_by_axis"]
