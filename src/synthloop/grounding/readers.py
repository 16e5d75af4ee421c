"""Read a user's file row by row, each row with the position a person can find it at.

One reader per format; each yields `(position, row)` where `row` is a dict, or a `str` saying why
the row could not even be parsed (bad JSON). Mapping rows to records happens in `golden.py`.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from synthloop.errors import InputError, MissingDependency

RawRow = tuple[str, dict[str, Any] | str]

_SUFFIX_FORMATS = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
    ".parquet": "parquet", ".pq": "parquet",
    ".csv": "csv",
}


def detect_format(path: Path) -> str:
    """`hf` for a directory, else by suffix (a trailing `.gz` is looked through)."""
    if path.is_dir():
        return "hf"
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    fmt = _SUFFIX_FORMATS.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        raise InputError(f"{path}: cannot tell the golden file's format from its name: set "
                         "grounding.format to 'jsonl', 'parquet', 'csv' or 'hf'")
    return fmt


def read_rows(path: Path, fmt: str = "auto") -> Iterator[RawRow]:
    """Every row of `path` with its position (`file:line` or `file row N`, N counted from 0)."""
    if not path.exists():
        raise InputError(f"golden set not found: {path} (check grounding.golden; it is relative to "
                         "the directory you run synthloop from)")
    fmt = detect_format(path) if fmt == "auto" else fmt
    readers: dict[str, Callable[[Path], Iterator[RawRow]]] = {
        "jsonl": _read_jsonl, "csv": _read_csv, "parquet": _read_parquet, "hf": _read_hf,
    }
    return readers[fmt](path)


def _open_text(path: Path) -> IO[str]:
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return path.open("r", encoding="utf-8", newline="")


def _read_jsonl(path: Path) -> Iterator[RawRow]:
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                yield where, f"not valid JSON ({e.msg} at column {e.colno})"
                continue
            yield where, row if isinstance(row, dict) else f"not a JSON object (got {type(row).__name__})"


def _read_csv(path: Path) -> Iterator[RawRow]:
    with _open_text(path) as fh:
        reader = csv.DictReader(fh)
        start = 2  # line 1 is the header; a quoted cell may span lines, so track where each row began
        for row in reader:
            where = f"{path}:{start}"
            start = reader.line_num + 1
            width = len(reader.fieldnames or [])
            if None in row:
                yield where, f"more cells than the {width} header columns (quote cells holding commas)"
            elif any(v is None for v in row.values()):
                yield where, f"fewer cells than the {width} header columns"
            else:
                yield where, dict(row)


def _read_parquet(path: Path) -> Iterator[RawRow]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as e:
        raise InputError(f"{path}: not a readable Parquet file ({e}); re-export it or set grounding.format") from None
    index = 0
    for batch in pf.iter_batches(batch_size=4096):
        for row in batch.to_pylist():
            yield f"{path} row {index}", row
            index += 1


def _read_hf(path: Path) -> Iterator[RawRow]:
    try:
        import datasets
    except ImportError:
        raise MissingDependency.for_package("datasets", "Reading a saved Hugging Face dataset directory") from None
    try:
        loaded = datasets.load_from_disk(str(path))
    except FileNotFoundError as e:
        raise InputError(f"{path}: not a dataset saved with `save_to_disk` ({e}); point grounding.golden "
                         "at such a directory or at a JSONL/Parquet/CSV file") from None
    splits = loaded.items() if isinstance(loaded, datasets.DatasetDict) else [("", loaded)]
    for split, ds in sorted(splits):
        label = f"{path}[{split}]" if split else str(path)
        for index, row in enumerate(ds):
            yield f"{label} row {index}", dict(row)


__all__ = ["RawRow", "detect_format", "read_rows"]
