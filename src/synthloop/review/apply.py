"""The human decisions applied to what is published, and the calibration set they make.

Publishing with decisions: the accepted records of the published rounds, less those a human
rejected, plus the rejected records a human accepted, with every edit applied. Nothing here
writes a shard; `synthloop.reports.publish` calls these when `review/decisions.jsonl` exists.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from synthloop.records import Record
from synthloop.review.decisions import DecisionLog, ReviewState, apply_edits, fold
from synthloop.review.index import decisions_path
from synthloop.storage import RunDir, atomic_write


@dataclass
class ReviewCounts:
    """What the humans changed in the published set (the card shows these)."""

    reviewed: int = 0
    human_accepted: int = 0  # rejected by the pipeline, accepted by a person: now published
    human_rejected: int = 0  # accepted by the pipeline, rejected by a person: no longer published
    edited: int = 0  # published records carrying a person's edits
    confirmed: int = 0  # a person agreed with the pipeline
    flagged: int = 0

    def to_json(self) -> dict[str, int]:
        return asdict(self)


def review_states(rd: RunDir) -> dict[str, ReviewState] | None:
    """The fold of the run's decisions log, or None when nobody reviewed the run."""
    path = decisions_path(rd)
    if not path.is_file():
        return None
    return fold(DecisionLog(path))


def review_counts(rd: RunDir, rounds: Iterable[int], states: dict[str, ReviewState]) -> ReviewCounts:
    rounds = list(rounds)
    c = ReviewCounts(reviewed=sum(s.label is not None for s in states.values()),
                     flagged=sum(s.flagged for s in states.values()))
    for kind in ("accepted", "rejected"):
        for shard in rd.shards(kind, rounds):
            for rid in pq.read_table(shard, columns=["id"]).column("id").to_pylist():
                s = states.get(rid)
                if s is None:
                    continue
                published = (kind == "accepted" and s.label != "rejected") or (kind == "rejected" and s.label == "accepted")
                if s.label is not None and s.label == kind:
                    c.confirmed += 1
                elif s.label == "accepted":
                    c.human_accepted += 1
                elif s.label == "rejected":
                    c.human_rejected += 1
                c.edited += int(published and s.edited)
    return c


def reviewed_records(rd: RunDir, rounds: Iterable[int], states: dict[str, ReviewState]) -> Iterator[tuple[Record, ReviewState | None]]:
    """What is published once the decisions apply, each record with its review state."""
    rounds = list(rounds)
    for rec in rd.records("accepted", rounds=rounds):
        s = states.get(rec.id)
        if s is not None and s.label == "rejected":
            continue
        yield (apply_edits(rec, s.edits) if s and s.edits else rec), s
    for rec in rd.records("rejected", rounds=rounds):
        s = states.get(rec.id)
        if s is not None and s.label == "accepted":
            yield (apply_edits(rec, s.edits) if s.edits else rec), s


def review_lineage(s: ReviewState | None) -> dict[str, Any] | None:
    """The `human_review` field of an exported row (absent when nobody reviewed the record)."""
    if s is None or (s.label is None and not s.edits):
        return None
    return {"label": s.label, "reviewer": s.reviewer, "edited": s.edited, "reason": s.reason}


# -- the calibration set ---------------------------------------------------------------------------
def calibration_rows(rd: RunDir, states: dict[str, ReviewState], max_chars: int = 6000) -> Iterator[dict[str, Any]]:
    """`{"task", "text", "label": "good"|"bad", ...}` for every record a person labelled: the text
    is what the judge sees (`record_for_judging`), the label the person's accept or reject."""
    from synthloop.verifiers.judge import record_for_judging

    for kind in ("accepted", "rejected"):
        for rec in rd.records(kind):
            s = states.get(rec.id)
            if s is None or s.label is None:
                continue
            shown = apply_edits(rec, s.edits) if s.edits else rec
            yield {"task": rec.task, "text": record_for_judging(shown, max_chars),
                   "label": "good" if s.label == "accepted" else "bad", "id": rec.id, "skill": rec.skill,
                   "reviewer": s.reviewer, "reason": s.reason, "judge_score": _judge_score(rec)}


def export_calibration(rd: RunDir, out: Path) -> int:
    states = review_states(rd) or {}
    rows = list(calibration_rows(rd, states))

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")

    atomic_write(Path(out), write)
    return len(rows)


def _judge_score(rec: Record) -> float | None:
    return next((v.score for v in rec.verdicts if v.name == "judge" and v.score is not None), None)


__all__ = ["ReviewCounts", "calibration_rows", "export_calibration", "review_counts", "review_lineage", "review_states", "reviewed_records"]
