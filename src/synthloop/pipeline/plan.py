"""The plan: which records to make. Cells are topic x skill x persona x difficulty; each cell gets
`per_cell` records per task. Ids and seeds are derived from the cell, so the same recipe always
plans the same records in the same order (the basis of resume)."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

import xxhash

from synthloop.recipe import Recipe
from synthloop.records import Record


@dataclass(frozen=True)
class Cell:
    topic: str
    skill: str
    persona: str
    difficulty: str


def cells(recipe: Recipe) -> list[Cell]:
    p = recipe.plan
    return [Cell(*c) for c in itertools.product(p.topics, p.skills, p.personas, p.difficulties)]


def plan(recipe: Recipe, round: int = 0) -> list[Record]:
    """All planned records for a round, capped by `plan.max_records`, spread over topics."""
    items = [
        (cell, task, k)
        for cell in cells(recipe)
        for task in recipe.plan.tasks
        for k in range(recipe.plan.per_cell)
    ]
    cap = recipe.plan.max_records
    if cap is not None and cap < len(items):
        items = _spread_sample(items, cap, seed=recipe.seed)
    records = []
    for cell, task, k in items:
        key = f"{round}|{task}|{cell.topic}|{cell.skill}|{cell.persona}|{cell.difficulty}|{k}"
        records.append(
            Record(
                id=f"r{round}-{xxhash.xxh3_64_hexdigest(key.encode())[:12]}",
                task=task,
                topic=cell.topic,
                skill=cell.skill,
                persona=cell.persona,
                difficulty=cell.difficulty,
                round=round,
                meta={"seed": record_seed(recipe.seed, key)},
            )
        )
    return records


def record_seed(base: int, key: str) -> int:
    return (base * 1_000_003 + xxhash.xxh32_intdigest(key.encode())) % (2**31)


def _spread_sample(items: list, n: int, seed: int) -> list:  # type: ignore[type-arg]
    """Shuffle within each topic, then take topics round-robin: every topic is covered before any
    topic gets a second item. Deterministic for a seed."""
    rng = random.Random(seed)
    by_topic: dict[str, list] = {}  # type: ignore[type-arg]
    for it in items:
        by_topic.setdefault(it[0].topic, []).append(it)
    for group in by_topic.values():
        rng.shuffle(group)
    picked = []
    for row in itertools.zip_longest(*by_topic.values()):
        picked.extend(x for x in row if x is not None)
    return picked[:n]
