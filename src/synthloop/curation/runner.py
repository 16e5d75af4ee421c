"""Curate any JSONL/Parquet file of text records: the library side of `synthloop curate`.

Rows stream through the same stages `synthloop run` uses, a chunk at a time; accepted rows are
written back in their own shape (text fields replaced by the scrubbed text), rejected rows go to
rejected.jsonl with the stage, the reason and where they came from. A malformed line is a
rejection too (stage `input`), so `accepted + rejected == rows read` holds for every file.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from synthloop.curation import build_curation_stages
from synthloop.curation.config import CurateConfig
from synthloop.curation.io import TEXT_FIELDS_TRIED, Row, iter_rows, row_text
from synthloop.curation.text import batched
from synthloop.errors import InputError, RecipeError
from synthloop.pipeline import RunContext, run_stages
from synthloop.recipe import describe_validation_error, read_toml, set_dotted
from synthloop.records import EXTERNAL, Record

CHUNK = 256


@dataclass
class CurateResult:
    out_dir: Path
    rows: int = 0
    accepted: int = 0
    rejected: int = 0
    malformed: list[dict[str, Any]] = field(default_factory=list)
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir), "rows": self.rows, "accepted": self.accepted,
            "rejected": self.rejected, "malformed": len(self.malformed),
            "malformed_lines": self.malformed, "stages": self.stages,
        }


def load_curate_config(path: str | Path | None, updates: dict[str, Any] | None = None) -> CurateConfig:
    """A `CurateConfig` from a TOML file (a `[curate]` table, or the keys at top level), with
    `updates` (from CLI flags, dotted keys) applied on top."""
    data: dict[str, Any] = {}
    if path is not None:
        raw = read_toml(Path(path), "pass a TOML file with a [curate] table")
        data = raw.get("curate", raw)
    for dotted, value in (updates or {}).items():
        set_dotted(data, dotted, value)
    try:
        return CurateConfig.model_validate(data)
    except ValidationError as e:
        raise RecipeError(f"curate config: {describe_validation_error(e)}") from None


def read_golden_texts(paths: list[str]) -> list[str]:
    """Texts of golden/seed files (JSONL/Parquet/text), for the memorisation check."""
    texts = []
    for path in paths:
        for row in iter_rows(Path(path)):
            text = row_text(row.data, None) if row.data is not None else None
            if text:
                texts.append(text)
    return texts


class _Writer:
    """accepted.{jsonl,parquet} and rejected.jsonl, written as records come."""

    def __init__(self, out_dir: Path, fmt: str) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.fmt = fmt
        self.accepted_path = out_dir / f"accepted.{fmt}"
        self.rejected = (out_dir / "rejected.jsonl").open("w", encoding="utf-8")
        self.accepted: IO[str] | None = None
        self.parquet: Any = None
        if fmt == "jsonl":
            self.accepted = self.accepted_path.open("w", encoding="utf-8")

    def accept(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if self.accepted is not None:
            self.accepted.writelines(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows)
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.parquet is None:
            table = pa.Table.from_pylist(rows)
            self.parquet = pq.ParquetWriter(self.accepted_path, table.schema)
        else:
            try:
                table = pa.Table.from_pylist(rows, schema=self.parquet.schema)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
                raise InputError(f"rows do not share one schema ({e}); write JSONL instead (--format jsonl)") from None
        self.parquet.write_table(table)

    def reject(self, entry: dict[str, Any]) -> None:
        self.rejected.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")

    def close(self) -> None:
        self.rejected.close()
        if self.accepted is not None:
            self.accepted.close()
        elif self.parquet is not None:
            self.parquet.close()
        elif not self.accepted_path.exists():
            self.accepted_path.touch()  # no accepted rows: an empty file, not a missing one


def _to_record(row: Row, text_field: str | None, seen_ids: set[str]) -> Record | str:
    """A Record (text in `text` or `messages`, the row kept in meta) or why the row has no text."""
    assert row.data is not None
    data = row.data
    ident = data.get("id")
    rid = str(ident) if isinstance(ident, (str, int)) and str(ident) not in seen_ids else f"line-{row.line}"
    seen_ids.add(rid)
    record = Record(id=rid, source=EXTERNAL, meta={"row": data, "where": row.where})
    if text_field is None and not any(isinstance(data.get(f), str) and data.get(f) for f in TEXT_FIELDS_TRIED) \
            and isinstance(data.get("messages"), list):
        record.messages = [dict(m) for m in data["messages"] if isinstance(m, dict)]
        return record if record.main_text() else "no_text: the messages have no content"
    text = row_text(data, text_field)
    if text is None:
        if text_field:
            return f"no_text: the row's field '{text_field}' is missing or not a string"
        return f"no_text: none of {', '.join(TEXT_FIELDS_TRIED)}, messages holds text (choose a field with --text-field)"
    record.text = text
    record.meta["text_field"] = text_field or next(f for f in TEXT_FIELDS_TRIED if data.get(f) == text)
    return record


def _output_row(record: Record) -> dict[str, Any]:
    """The input row with its text replaced by the (possibly redacted) text, plus any flags."""
    row = dict(record.meta["row"])
    if record.messages:
        row["messages"] = record.messages
    else:
        row[record.meta["text_field"]] = record.text
    flags = [v.reason for v in record.verdicts if not v.ok]
    if flags:
        row["curation_flags"] = flags
    return row


def curate_file(
    input_path: str | Path,
    out_dir: str | Path,
    cfg: CurateConfig | None = None,
    *,
    text_field: str | None = None,
    out_format: str = "jsonl",
    golden_texts: list[str] | None = None,
    warn: IO[str] | None = sys.stderr,
) -> CurateResult:
    """Curate one file into `out_dir` (accepted, rejected, stats.json). Streams: memory holds the
    dedup indexes and one chunk of rows."""
    cfg = cfg or CurateConfig()
    if out_format not in ("jsonl", "parquet"):
        raise InputError(f"unknown output format '{out_format}': use jsonl or parquet")
    src = Path(input_path)
    rows = iter_rows(src)  # raises InputError for a missing file / unknown type before any output
    # the rows of the file are what is checked against --golden (they are not the human data)
    stages = build_curation_stages(cfg, golden_texts=golden_texts, memorization_sources=("synthetic", EXTERNAL))
    result = CurateResult(Path(out_dir))
    writer = _Writer(result.out_dir, out_format)
    ctx = RunContext(on_reject=lambda r: writer.reject(_rejected_entry(r)))
    try:
        for chunk in batched(_records(rows, text_field, result, writer, warn), CHUNK):
            kept = list(run_stages(chunk, stages, ctx))
            result.accepted += len(kept)
            writer.accept([_output_row(r) for r in kept])
    finally:
        writer.close()
    result.rejected = result.rows - result.accepted
    order = [s.name for s in stages]
    result.stages = {name: ctx.stats[name].to_dict() for name in sorted(ctx.stats, key=order.index)}
    (result.out_dir / "stats.json").write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")
    return result


def _records(rows: Iterator[Row], text_field: str | None, result: CurateResult, writer: _Writer,
             warn: IO[str] | None) -> Iterator[Record]:
    seen_ids: set[str] = set()
    for row in rows:
        result.rows += 1
        made = row.error if row.data is None else _to_record(row, text_field, seen_ids)
        if isinstance(made, Record):
            yield made
            continue
        reason = made if made.startswith("no_text") else f"malformed: {made}"
        result.malformed.append({"where": row.where, "line": row.line, "error": reason})
        writer.reject({"where": row.where, "line": row.line, "stage": "input", "reason": reason, "row": row.data, "raw": row.raw})
        if warn is not None:
            print(f"synthloop curate: skipped {row.where}: {reason}", file=warn)


def _rejected_entry(record: Record) -> dict[str, Any]:
    return {
        "where": record.meta.get("where"), "id": record.id, "stage": record.rejected_stage,
        "reason": record.rejected_reason, "row": _output_row(record),
    }


__all__ = ["CurateResult", "curate_file", "load_curate_config", "read_golden_texts"]
