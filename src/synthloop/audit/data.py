"""Reading the sets an audit compares: a run directory (accepted records, by round), a JSONL or
Parquet file, or the built-in golden set. Each becomes `AuditSet`: texts, field values, rounds, and
records for the counterfactual test."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from synthloop.audit.counts import FIELD_AXES
from synthloop.errors import InputError
from synthloop.records import Record


@dataclass
class AuditSet:
    name: str
    records: list[Record] = field(default_factory=list)

    @property
    def texts(self) -> list[str]:
        return [r.main_text() for r in self.records]

    def values(self, axis: str) -> list[str]:
        return [str(getattr(r, axis, "") or "") for r in self.records]

    @property
    def rounds(self) -> list[int]:
        return sorted({r.round for r in self.records})


def load_set(source: str | Path) -> AuditSet:
    """A run directory, a JSONL/Parquet file, or a built-in golden set name ("python-docs")."""
    from synthloop.grounding import BUILTIN_GOLDEN_SETS, load_builtin

    if str(source) in BUILTIN_GOLDEN_SETS:
        g = load_builtin(str(source))
        return AuditSet(str(source), list(g.train + g.heldout))
    path = Path(source)
    if path.is_dir():
        if not (path / "manifest.json").exists():
            raise InputError(f"{path} is a folder but not a run directory (no manifest.json): give a run directory, "
                             "a JSONL/Parquet file or 'python-docs'")
        from synthloop.storage import RunDir

        return AuditSet(str(path), list(RunDir(path).records("accepted")))
    return AuditSet(str(path), _file_records(path))


def _file_records(path: Path) -> list[Record]:
    from synthloop.curation.io import iter_rows, row_text

    out: list[Record] = []
    for row in iter_rows(path):
        if row.error or row.data is None:
            raise InputError(f"{row.where}: {row.error}; fix or remove that line")
        d = row.data
        text = row_text(d, None) or ""
        rec = Record(id=str(d.get("id", row.line)), task=str(d.get("task", "") or ""), text=text,
                     round=_int(d.get("round")))
        for axis in FIELD_AXES:
            setattr(rec, axis, str(d.get(axis, "") or ""))
        out.append(rec)
    if not out:
        raise InputError(f"{path}: no rows to audit (the file is empty)")
    return out


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


__all__ = ["AuditSet", "load_set"]
