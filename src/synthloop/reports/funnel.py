"""Read-only summaries of a run directory: the funnel (planned -> accepted, rejections by stage and
reason) and totals (tokens, cost). Everything here reads files; nothing reaches into a live run."""

from __future__ import annotations

import tomllib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow.parquet as pq

from synthloop.pipeline.context import reason_key
from synthloop.storage import RunDir
from synthloop.storage.rundir import Kind


@dataclass
class Funnel:
    planned: int
    accepted: int
    rejected: int
    by_stage: Counter[str] = field(default_factory=Counter)
    by_reason: Counter[tuple[str, str]] = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    requests: int = 0
    cached_requests: int = 0
    judge_scores: list[float] = field(default_factory=list)
    by_topic: Counter[str] = field(default_factory=Counter)

    @property
    def pending(self) -> int:
        return self.planned - self.accepted - self.rejected


def read_funnel(rd: RunDir, rounds: list[int] | None = None) -> Funnel:
    """The funnel of the whole run, or of some rounds (`rounds=[2]`)."""
    manifest = rd.read_manifest()
    states = [s for s in manifest.rounds if rounds is None or s.round in rounds]
    f = Funnel(planned=sum(s.planned for s in states), accepted=0, rejected=0)
    cols = ["rejected_stage", "rejected_reason", "usage", "verdicts", "topic"]
    kinds: tuple[Kind, ...] = ("accepted", "rejected")
    for kind in kinds:
        for shard in rd.shards(kind, rounds):
            table = pq.read_table(shard, columns=cols)
            if kind == "accepted":
                f.accepted += table.num_rows
            else:
                f.rejected += table.num_rows
            for row in table.to_pylist():
                _add_row(f, row, accepted=kind == "accepted")
    return f


def _add_row(f: Funnel, row: dict[str, Any], accepted: bool) -> None:
    u = row["usage"] or {}
    f.prompt_tokens += u.get("prompt_tokens") or 0
    f.completion_tokens += u.get("completion_tokens") or 0
    f.cost_usd += u.get("cost_usd") or 0.0
    f.requests += u.get("requests") or 0
    f.cached_requests += u.get("cached_requests") or 0
    for v in row["verdicts"] or []:
        if v["name"] == "judge" and v["score"] is not None:
            f.judge_scores.append(v["score"])
    if accepted:
        f.by_topic[row["topic"]] += 1
    else:
        f.by_stage[row["rejected_stage"]] += 1
        f.by_reason[(row["rejected_stage"], reason_key(row["rejected_reason"]))] += 1


def read_recipe(rd: RunDir) -> dict[str, Any]:
    path = rd.path / "recipe.toml"
    return tomllib.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
