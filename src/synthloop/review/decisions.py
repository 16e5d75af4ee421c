"""Human decisions are data: an append-only overlay in the run directory, never a change to a shard.

    review/decisions.jsonl   one JSON object per decision, in the order they were made

A decision says who (reviewer), when (UTC time), what (accept / reject / edit / flag / unflag /
note / undo), and the state before and after, so the log alone replays the whole review. A bulk
action is many decisions sharing one `batch`; `undo` names a batch and the fold skips it, so undo
is itself an appended decision and nothing is ever erased. `fold` turns the log into the current
`ReviewState` of each record; publish, agreement, the app and the exports all read that fold.

This module imports nothing from the web stack: `synthloop publish` uses it without the `review` extra.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from synthloop.errors import StorageError
from synthloop.records import Record

Action = Literal["accept", "reject", "edit", "flag", "unflag", "note", "undo"]
ACTIONS: tuple[str, ...] = ("accept", "reject", "edit", "flag", "unflag", "note", "undo")
#: Record fields a reviewer may edit besides the messages (`messages.N.content`).
EDITABLE = ("text", "explanation", "problem", "reasoning", "answer", "tests")


@dataclass
class Decision:
    record_id: str
    action: str
    reviewer: str
    time: str = ""
    reason: str = ""
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    #: Decisions made together (one key press, one bulk action) share a batch; undo names one.
    batch: str = ""
    undoes: str = ""
    #: Where the decision came from: the app, or an imported file (argilla, label-studio).
    source: str = "app"

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise StorageError(f"unknown review action {self.action!r}; use one of {', '.join(ACTIONS)}")
        self.time = self.time or now()
        self.batch = self.batch or new_batch()

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Decision":
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class ReviewState:
    """What the humans decided about one record, after every decision so far."""

    record_id: str
    label: str | None = None  # "accepted" | "rejected" | None (not reviewed)
    reason: str = ""
    reviewer: str = ""
    #: Each reviewer's latest label: the inter-reviewer agreement reads these.
    labels: dict[str, str] = field(default_factory=dict)
    edits: dict[str, Any] = field(default_factory=dict)
    flagged: bool = False
    notes: list[dict[str, str]] = field(default_factory=list)

    @property
    def reviewed(self) -> bool:
        return self.label is not None

    @property
    def edited(self) -> bool:
        return bool(self.edits)


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def new_batch() -> str:
    return uuid.uuid4().hex[:12]


class DecisionLog:
    """`review/decisions.jsonl`: appended (one write + fsync per batch), read in order."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, decisions: Iterable[Decision]) -> list[Decision]:
        batch = list(decisions)
        if not batch:
            return batch
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = "".join(d.to_json() + "\n" for d in batch).encode("utf-8")
        with self._lock, open(self.path, "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return batch

    def read(self) -> list[Decision]:
        return list(self)

    def __iter__(self) -> Iterator[Decision]:
        if not self.path.is_file():
            return
        with open(self.path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    yield Decision.from_dict(json.loads(line))
                except (json.JSONDecodeError, TypeError) as e:
                    if not line.endswith("\n"):
                        return  # a torn last line (killed mid-write): everything before it stands
                    raise StorageError(f"{self.path} line {n} is not a decision ({e}); fix or delete that line") from None


def undone_batches(decisions: Iterable[Decision]) -> set[str]:
    return {d.undoes for d in decisions if d.action == "undo" and d.undoes}


def fold(decisions: Iterable[Decision]) -> dict[str, ReviewState]:
    """The current state of every record a decision names (undone batches skipped)."""
    log = list(decisions)
    skip = undone_batches(log)
    states: dict[str, ReviewState] = {}
    for d in log:
        if d.action == "undo" or d.batch in skip:
            continue
        apply(states.setdefault(d.record_id, ReviewState(d.record_id)), d)
    return states


def apply(state: ReviewState, d: Decision) -> None:
    """One decision onto one record's state."""
    if d.action in ("accept", "reject"):
        state.label = "accepted" if d.action == "accept" else "rejected"
        state.reason = d.reason
        state.reviewer = d.reviewer
        state.labels[d.reviewer] = state.label
    elif d.action == "edit":
        state.edits.update(d.after)
    elif d.action in ("flag", "unflag"):
        state.flagged = d.action == "flag"
    elif d.action == "note":
        state.notes.append({"reviewer": d.reviewer, "time": d.time, "text": d.reason})


def state_snapshot(state: ReviewState | None) -> dict[str, Any]:
    """The `before` of a decision: the label, flag and edits it replaces."""
    if state is None:
        return {"label": None, "flagged": False}
    return {"label": state.label, "flagged": state.flagged, **({"edits": dict(state.edits)} if state.edits else {})}


def apply_edits(record: Record, edits: dict[str, Any]) -> Record:
    """A copy of `record` with a reviewer's edits (`messages.N.content` or a field of EDITABLE)."""
    out = Record.from_dict(record.to_dict())
    for key, value in edits.items():
        if key.startswith("messages.") and key.endswith(".content"):
            i = int(key.split(".")[1])
            if 0 <= i < len(out.messages):
                out.messages[i]["content"] = str(value)
        elif key in EDITABLE:
            setattr(out, key, str(value))
    return out


def check_edit_keys(edits: dict[str, Any]) -> None:
    for key in edits:
        ok = key in EDITABLE or (key.startswith("messages.") and key.endswith(".content") and key.split(".")[1].isdigit())
        if not ok:
            raise StorageError(f"cannot edit {key!r}; edit `messages.N.content` or one of {', '.join(EDITABLE)}")


__all__ = [
    "ACTIONS",
    "EDITABLE",
    "Decision",
    "DecisionLog",
    "ReviewState",
    "apply",
    "apply_edits",
    "check_edit_keys",
    "fold",
    "new_batch",
    "now",
    "state_snapshot",
    "undone_batches",
]
