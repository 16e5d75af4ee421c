"""Golden sets: human data, loaded into `Record`s, split once into a training part and a held-out part.

A `GoldenSet` never hands out its rows as one list: `train` is what a mix may use, `heldout` is for
evaluation only. The split is a hash of each row's id with a seed, so a row stays on its side when
rows are added to the file, and the same file gives the same split on every machine.

Bad rows are not dropped silently: each one is in `GoldenSet.report.bad_rows` with its position
(`file:line` or `file row N`) and the reason. Loading fails only when no row is usable.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import xxhash

from synthloop.errors import InputError
from synthloop.grounding.config import FieldMapping, GoldenFormat
from synthloop.grounding.readers import read_rows
from synthloop.records import GOLDEN, Record, canonical_json

log = logging.getLogger("synthloop.grounding")

ROLES = frozenset({"system", "user", "assistant"})
GOLDEN_TASK = "golden"
Split = Literal["all", "train", "heldout"]


@dataclass(frozen=True)
class BadRow:
    position: str  # `path:line` (JSONL, CSV) or `path row N` (Parquet, HF; N counted from 0)
    reason: str


@dataclass
class LoadReport:
    """What happened to every row of the source: loaded, or bad with a position and a reason."""

    source: str
    rows_read: int = 0
    loaded: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)

    def summary(self, show: int = 3) -> str:
        head = f"loaded {self.loaded} of {self.rows_read} rows from {self.source}"
        if not self.bad_rows:
            return head
        shown = "; ".join(f"{b.position}: {b.reason}" for b in self.bad_rows[:show])
        more = f" (and {len(self.bad_rows) - show} more)" if len(self.bad_rows) > show else ""
        return f"{head}; {len(self.bad_rows)} bad: {shown}{more}"

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "rows_read": self.rows_read, "loaded": self.loaded,
                "bad_rows": [{"position": b.position, "reason": b.reason} for b in self.bad_rows]}


def is_heldout(record_id: str, fraction: float, seed: int) -> bool:
    """True when the row with this id belongs to the held-out split (depends on nothing else)."""
    return xxhash.xxh3_64_intdigest(f"{seed}\x00{record_id}".encode()) < fraction * 2.0**64


@dataclass(frozen=True)
class GoldenSet:
    """A golden set, already split. Build it with `GoldenSet.split(...)` or the loaders."""

    name: str
    train: tuple[Record, ...]
    heldout: tuple[Record, ...]
    heldout_fraction: float
    heldout_seed: int
    report: LoadReport

    def __post_init__(self) -> None:
        overlap = {r.id for r in self.train} & self.heldout_ids
        if overlap:
            raise ValueError(f"golden set {self.name!r}: ids in both train and heldout: {sorted(overlap)[:3]}")

    @classmethod
    def split(cls, name: str, records: Iterable[Record], *, heldout_fraction: float = 0.1,
              heldout_seed: int = 0, report: LoadReport | None = None) -> GoldenSet:
        rows = list(records)
        held = tuple(r for r in rows if is_heldout(r.id, heldout_fraction, heldout_seed))
        train = tuple(r for r in rows if not is_heldout(r.id, heldout_fraction, heldout_seed))
        rep = report or LoadReport(source=name, rows_read=len(rows), loaded=len(rows))
        return cls(name, train, held, heldout_fraction, heldout_seed, rep)

    @property
    def heldout_ids(self) -> frozenset[str]:
        return frozenset(r.id for r in self.heldout)

    def __len__(self) -> int:
        return len(self.train) + len(self.heldout)


def golden_texts(golden: GoldenSet, split: Split = "all") -> list[str]:
    """The human texts of a golden set (`Record.main_text()`), for memorization and collapse checks.

    Default "all": a memorization or contamination check must see the held-out rows too.
    """
    rows = {"all": golden.train + golden.heldout, "train": golden.train, "heldout": golden.heldout}[split]
    return [r.main_text() for r in rows]


def load_golden_file(path: str | Path, mapping: FieldMapping, *, format: GoldenFormat = "auto",
                     heldout_fraction: float = 0.1, heldout_seed: int = 0,
                     name: str | None = None) -> GoldenSet:
    """Read JSONL (optionally .gz), Parquet, CSV or a `save_to_disk` directory into a `GoldenSet`.

    Raises `InputError` when the file is missing, the mapping is unusable, or no row is usable.
    """
    problem = mapping.mapping_problem()
    if problem:
        raise InputError(f"cannot read golden set {path}: {problem}")
    path = Path(path)
    report = LoadReport(source=str(path))
    records = _records_from_rows(path, mapping, format, report)
    if not records:
        raise InputError(f"golden set {path} has no usable row: {report.summary()} "
                         "(check the field mapping in [grounding] against the file's columns)")
    if report.bad_rows:
        log.warning("golden set: %s", report.summary())
    return GoldenSet.split(name or str(path), records, heldout_fraction=heldout_fraction,
                           heldout_seed=heldout_seed, report=report)


def _records_from_rows(path: Path, mapping: FieldMapping, fmt: str, report: LoadReport) -> list[Record]:
    first_seen: dict[str, str] = {}
    records: list[Record] = []
    for position, row in read_rows(path, fmt):
        report.rows_read += 1
        result = row if isinstance(row, str) else row_to_record(row, mapping)
        if isinstance(result, Record) and result.id in first_seen:
            result = f"duplicate of {first_seen[result.id]} (same {'id' if mapping.id_field else 'content'})"
        if isinstance(result, str):
            report.bad_rows.append(BadRow(position, result))
            continue
        first_seen[result.id] = position
        records.append(result)
    report.loaded = len(records)
    return records


class _Unusable(Exception):
    """Raised by the helpers below; its message is the bad row's reason."""


def row_to_record(row: dict[str, Any], mapping: FieldMapping) -> Record | str:
    """One row as a golden `Record`, or the reason it cannot be one."""
    try:
        content = _content(row, mapping)
        user_id = _text(row, mapping.id_field, "id ") if mapping.id_field else None
    except _Unusable as e:
        return str(e)
    record = Record(id="", task=GOLDEN_TASK, source=GOLDEN, status="accepted",
                    topic=_label(row, mapping.topic_field), skill=_label(row, mapping.skill_field),
                    meta=_unmapped(row, mapping), **content)
    record.id = f"golden:{user_id}" if user_id else content_id(record)
    return record


def content_id(record: Record) -> str:
    """`golden:` + 64-bit hash of the content fields: the same row gets the same id anywhere in any file."""
    return f"golden:{xxhash.xxh3_64_hexdigest(canonical_json(record.content()).encode())}"


def _content(row: dict[str, Any], m: FieldMapping) -> dict[str, Any]:
    if m.text_field is not None:
        return {"text": _text(row, m.text_field)}
    if m.messages_field is not None:
        return {"messages": _messages(row, m.messages_field)}
    assert m.prompt_field is not None and m.response_field is not None  # mapping_problem() checked
    return {"messages": [{"role": "user", "content": _text(row, m.prompt_field)},
                         {"role": "assistant", "content": _text(row, m.response_field)}]}


def _text(row: dict[str, Any], column: str, what: str = "") -> str:
    if column not in row:
        raise _Unusable(f"missing {what}column {column!r} (row has: {', '.join(sorted(map(str, row)))[:200]})")
    value = row[column]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and what:
        return str(value)  # numeric ids are fine
    if value is None or (isinstance(value, str) and not value.strip()):
        raise _Unusable(f"{what}column {column!r} is empty")
    if not isinstance(value, str):
        raise _Unusable(f"{what}column {column!r} is not text (got {type(value).__name__})")
    return value


def _messages(row: dict[str, Any], column: str) -> list[dict[str, str]]:
    """A list of {role, content}; a JSON string is accepted too (CSV cells are strings)."""
    value = row.get(column)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise _Unusable(f"column {column!r} is text but not a JSON list of messages") from None
    if not isinstance(value, list) or not value:
        raise _Unusable(f"column {column!r} is not a non-empty list of messages")
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise _Unusable(f"column {column!r}, message {i}: needs role in {sorted(ROLES)} and text content")
        out.append({"role": m["role"], "content": m["content"]})
    if not any(m["role"] == "assistant" and m["content"].strip() for m in out):
        raise _Unusable(f"column {column!r} has no non-empty assistant message to learn from")
    return out


def _label(row: dict[str, Any], column: str | None) -> str:
    """Topic/skill labels are optional per row: missing or null becomes ""."""
    value = row.get(column) if column else None
    return "" if value is None else str(value).strip()


def _unmapped(row: dict[str, Any], m: FieldMapping) -> dict[str, Any]:
    """Columns the mapping does not use, kept so nothing about a human row is lost."""
    used = {getattr(m, k) for k in type(m).model_fields if k.endswith("_field")}
    return {k: v for k, v in row.items() if k not in used}


__all__ = ["BadRow", "GoldenSet", "LoadReport", "content_id", "golden_texts", "is_heldout",
           "load_golden_file", "row_to_record"]
