"""The review of one run: the index, the decisions log and their fold, and the actions a reviewer
takes. The web app (review/app.py) is a thin layer over this; tests drive it directly too."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict
from typing import Any

from synthloop.errors import StorageError
from synthloop.records import Record
from synthloop.reports.funnel import read_recipe
from synthloop.review.agreement import judge_agreement, reviewer_agreement
from synthloop.review.decisions import (
    Decision,
    DecisionLog,
    ReviewState,
    apply,
    check_edit_keys,
    new_batch,
    state_snapshot,
    undone_batches,
)
from synthloop.review.index import Filters, RecordIndex, decisions_path
from synthloop.storage import RunDir

#: A bulk action over more records than this asks the caller to confirm by passing `limit`.
BULK_MAX = 200_000


class Review:
    """Open a run for review: builds or refreshes the index, replays the decisions log."""

    def __init__(self, rd: RunDir, reviewer: str = "reviewer") -> None:
        rd.read_manifest()  # a clear error when this is not a run directory
        self.rd = rd
        self.reviewer = reviewer or "reviewer"
        self.index = RecordIndex(rd)
        self.log = DecisionLog(decisions_path(rd))
        self.decisions: list[Decision] = self.log.read()
        self.undone = undone_batches(self.decisions)
        self.by_record: dict[str, list[Decision]] = defaultdict(list)
        for d in self.decisions:
            if d.action != "undo":
                self.by_record[d.record_id].append(d)
        self.states: dict[str, ReviewState] = {}
        for rid in self.by_record:
            self._refold(rid)
        self.index.reset_states(self.states.values())

    # -- reading --------------------------------------------------------------------------------
    def state(self, record_id: str) -> ReviewState | None:
        return self.states.get(record_id)

    def record_view(self, record_id: str) -> dict[str, Any]:
        """Everything the record pane shows: the record, its lineage, verdicts and review history."""
        rec = self.index.record(record_id)
        if rec is None:
            raise StorageError(f"no record {record_id!r} in {self.rd.path}; pick one from the list")
        state = self.states.get(record_id)
        history = [asdict(d) | {"undone": d.batch in self.undone} for d in self.by_record.get(record_id, [])]
        return {
            "record": _record_json(rec),
            "lineage": {
                "teacher": f"{rec.teacher.backend}:{rec.teacher.model}",
                "params": rec.teacher.params,
                "template": rec.teacher.template_id,
                "template_hash": rec.teacher.template_hash,
                "parents": rec.parent_ids,
                "round": rec.round,
                "cost_usd": rec.usage.cost_usd,
                "tokens": rec.usage.prompt_tokens + rec.usage.completion_tokens,
                "requests": rec.usage.requests,
                "content_hash": rec.content_hash,
            },
            "state": None if state is None else asdict(state),
            "history": history,
        }

    def judge_settings(self) -> tuple[float, str]:
        """The judge's threshold and rubric, from the run's recipe."""
        judge = read_recipe(self.rd).get("judge", {})
        return float(judge.get("min_score", 3.0)), str(judge.get("rubric", "auto"))

    def agreement(self) -> dict[str, Any]:
        """Judge vs human (overall, per rubric, per skill) and between reviewers."""
        min_score, rubric = self.judge_settings()
        rows = [dict(zip(("id", "task", "skill", "score"), r, strict=True))
                for r in self.index.db.execute("SELECT id, task, skill, score FROM records WHERE score IS NOT NULL")]
        judge = judge_agreement(rows, self.states, min_score, rubric)
        return {"judge": {k: [a.to_json() for a in v] for k, v in judge.items()},
                "reviewers": reviewer_agreement(self.states), "min_score": min_score, "rubric": rubric}

    # -- acting ---------------------------------------------------------------------------------
    def decide(self, record_ids: list[str], action: str, *, reason: str = "", edits: dict[str, Any] | None = None,
               batch: str = "", source: str = "app", reviewer: str = "") -> list[Decision]:
        """One action on some records, as one batch (one undo reverses it all)."""
        if action == "undo":
            raise StorageError("undo takes a batch: call Review.undo(batch)")
        if action == "edit":
            check_edit_keys(edits or {})
        if action == "reject" and not reason.strip():
            raise StorageError("a rejection needs a reason (what is wrong with the record)")
        who = reviewer or self.reviewer
        batch = batch or new_batch()
        out = []
        for rid in record_ids:
            before = state_snapshot(self.states.get(rid))
            after = dict(edits or {}) if action == "edit" else _after(action, before)
            if action == "edit":
                before = {k: self._current_value(rid, k) for k in after}
            out.append(Decision(record_id=rid, action=action, reviewer=who, reason=reason, before=before,
                                after=after, batch=batch, source=source))
        self._commit(out)
        return out

    def bulk(self, f: Filters, action: str, *, reason: str = "") -> tuple[str, int]:
        """The action on every record the filters match; returns (batch, count) for undo."""
        if action not in ("accept", "reject", "flag", "unflag"):
            raise StorageError(f"bulk {action!r} is not offered; bulk accept, reject, flag or unflag")
        ids = self.index.matching_ids(f)
        if len(ids) > BULK_MAX:
            raise StorageError(f"{len(ids)} records match; narrow the filter below {BULK_MAX}")
        decisions = self.decide(ids, action, reason=reason)
        return (decisions[0].batch if decisions else ""), len(decisions)

    def undo(self, batch: str = "") -> tuple[str, int]:
        """Undo a batch (the latest one not yet undone by default); returns (batch, records)."""
        batch = batch or self.last_batch()
        if not batch:
            return "", 0
        ids = sorted({d.record_id for d in self.decisions if d.batch == batch and d.action != "undo"})
        if not ids or batch in self.undone:
            return batch, 0
        self._commit([Decision(record_id=ids[0], action="undo", reviewer=self.reviewer, undoes=batch,
                               before={"records": len(ids)})])
        return batch, len(ids)

    def last_batch(self) -> str:
        for d in reversed(self.decisions):
            if d.action != "undo" and d.batch not in self.undone:
                return d.batch
        return ""

    # -- internals ------------------------------------------------------------------------------
    def _commit(self, decisions: list[Decision]) -> None:
        self.log.append(decisions)
        touched: set[str] = set()
        for d in decisions:
            self.decisions.append(d)
            if d.action == "undo":
                self.undone.add(d.undoes)
                touched |= {x.record_id for x in self.decisions if x.batch == d.undoes and x.action != "undo"}
            else:
                self.by_record[d.record_id].append(d)
                touched.add(d.record_id)
        for rid in touched:
            self._refold(rid)
        self.index.set_states(self.states.get(rid) or ReviewState(rid) for rid in touched)

    def _refold(self, record_id: str) -> None:
        state = ReviewState(record_id)
        for d in self.by_record.get(record_id, []):
            if d.batch not in self.undone:
                apply(state, d)
        self.states[record_id] = state

    def _current_value(self, record_id: str, key: str) -> Any:
        state = self.states.get(record_id)
        if state and key in state.edits:
            return state.edits[key]
        rec = self.index.record(record_id)
        if rec is None:
            return None
        if key.startswith("messages."):
            i = int(key.split(".")[1])
            return rec.messages[i]["content"] if 0 <= i < len(rec.messages) else None
        return getattr(rec, key, None)


def _after(action: str, before: dict[str, Any]) -> dict[str, Any]:
    after = dict(before)
    after.pop("edits", None)
    if action in ("accept", "reject"):
        after["label"] = "accepted" if action == "accept" else "rejected"
    elif action in ("flag", "unflag"):
        after["flagged"] = action == "flag"
    return after


def _record_json(rec: Record) -> dict[str, Any]:
    d = rec.to_dict()
    d["meta"] = rec.meta
    d["teacher"]["params"] = rec.teacher.params
    return d


__all__ = ["BULK_MAX", "Review"]
