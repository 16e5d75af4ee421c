"""Reading user files for curation: records to curate (JSONL / Parquet) and evaluation sets
(JSONL / Parquet / plain text). Rows stream; a malformed JSONL line becomes an error row with its
line number instead of stopping the read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthloop.errors import InputError

#: Fields tried, in order, when no text field is named.
TEXT_FIELDS_TRIED = ("text", "content", "question", "prompt", "problem", "instruction", "input")


@dataclass
class Row:
    """One row of a file: `data`, or `error` saying why the line could not be read."""

    where: str  # "file:line" (JSONL, text) or "file row N" (Parquet, N from 0)
    line: int
    data: dict[str, Any] | None = None
    error: str = ""
    raw: str | None = None  # the line as read, kept for rows that could not be parsed


def file_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".txt", ".text", ".md"):
        return "text"
    raise InputError(f"{path}: unknown file type '{suffix}': use .jsonl, .parquet or .txt (one item per line)")


def iter_rows(path: Path) -> Iterator[Row]:
    """Every row of a JSONL, Parquet or text file, streamed."""
    if not path.is_file():
        raise InputError(f"file not found: {path} (check the path; it is relative to where you run synthloop)")
    fmt = file_format(path)
    if fmt == "parquet":
        yield from _parquet_rows(path)
    else:
        yield from _line_rows(path, as_json=fmt == "jsonl")


def _line_rows(path: Path, as_json: bool) -> Iterator[Row]:
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            if not as_json:
                yield Row(where, lineno, {"text": line.rstrip("\n")})
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as e:
                yield Row(where, lineno, error=f"not valid JSON ({e.msg} at column {e.colno})", raw=line.rstrip("\n"))
                continue
            if isinstance(data, dict):
                yield Row(where, lineno, data)
            else:
                yield Row(where, lineno, error=f"not a JSON object (got {type(data).__name__})", raw=line.rstrip("\n"))


def _parquet_rows(path: Path) -> Iterator[Row]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for a damaged or non-Parquet file
        raise InputError(f"{path}: not a readable Parquet file ({e}); re-export it or convert it to JSONL") from None
    index = 0
    for batch in pf.iter_batches(batch_size=2048):
        for data in batch.to_pylist():
            yield Row(f"{path} row {index}", index, data)
            index += 1


def row_text(data: dict[str, Any], field: str | None) -> str | None:
    """The text of a row: `field` if named, else the first of TEXT_FIELDS_TRIED, else chat
    `messages` contents joined. None when there is none."""
    if field is not None:
        value = data.get(field)
        return value if isinstance(value, str) else None
    for name in TEXT_FIELDS_TRIED:
        value = data.get(name)
        if isinstance(value, str) and value:
            return value
    messages = data.get("messages")
    if isinstance(messages, list):
        parts = [m.get("content", "") for m in messages if isinstance(m, dict)]
        return "\n\n".join(p for p in parts if isinstance(p, str) and p) or None
    return None


def eval_text(data: dict[str, Any], field: str | None) -> str:
    """An eval item's text: `field` if named, else every string value of the row joined (the
    question *and* its answer both count as leaked)."""
    if field is not None:
        value = data.get(field)
        return value if isinstance(value, str) else ""
    parts = [v for v in data.values() if isinstance(v, str)]
    return "\n".join(parts) or (row_text(data, None) or "")


def load_eval_items(path: str | Path, field: str | None = None) -> list[tuple[str, str]]:
    """(item id, text) for every readable row of an eval set. The id is the row's `id` / `task_id`
    when it has one, else its `file:line`. A malformed line is an error: a decontamination that
    silently skips part of the eval set would promise more than it checked."""
    p = Path(path)
    items = []
    for row in iter_rows(p):
        if row.error or row.data is None:
            raise InputError(f"eval set {row.where}: {row.error}; fix or remove that line")
        ident = row.data.get("id", row.data.get("task_id"))
        label = f"{p.name}#{ident}" if isinstance(ident, (str, int)) else f"{p.name}:{row.line}"
        text = eval_text(row.data, field)
        if text.strip():
            items.append((label, text))
    return items


__all__ = ["Row", "TEXT_FIELDS_TRIED", "eval_text", "file_format", "iter_rows", "load_eval_items", "row_text"]
