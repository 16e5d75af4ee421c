"""Records <-> Parquet shards with one explicit schema, so every shard of every run has the same
columns and `datasets.load_dataset("parquet", data_files=...)` reads a run directory as it is."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from synthloop.records import Record
from synthloop.storage.atomic import atomic_write

_S = pa.string()
RECORD_SCHEMA = pa.schema(
    [
        ("id", _S),
        ("task", _S),
        ("topic", _S),
        ("skill", _S),
        ("persona", _S),
        ("difficulty", _S),
        ("round", pa.int64()),
        ("source", _S),
        ("parent_ids", pa.list_(_S)),
        ("messages", pa.list_(pa.struct([("role", _S), ("content", _S)]))),
        ("text", _S),
        ("explanation", _S),
        ("problem", _S),
        ("reasoning", _S),
        ("answer", _S),
        ("tests", _S),
        (
            "teacher",
            pa.struct([("backend", _S), ("model", _S), ("params", _S), ("template_id", _S), ("template_hash", _S)]),
        ),
        (
            "verdicts",
            pa.list_(pa.struct([("stage", _S), ("name", _S), ("ok", pa.bool_()), ("score", pa.float64()), ("reason", _S)])),
        ),
        (
            "usage",
            pa.struct(
                [
                    ("prompt_tokens", pa.int64()),
                    ("completion_tokens", pa.int64()),
                    ("cost_usd", pa.float64()),
                    ("requests", pa.int64()),
                    ("cached_requests", pa.int64()),
                ]
            ),
        ),
        ("status", _S),
        ("rejected_stage", _S),
        ("rejected_reason", _S),
        ("synthetic_notice", _S),
        ("meta", _S),
        ("content_hash", _S),
    ]
)


def records_to_table(records: Iterable[Record]) -> pa.Table:
    return pa.Table.from_pylist([r.to_dict() for r in records], schema=RECORD_SCHEMA)


def write_shard(records: list[Record], path: Path) -> None:
    """Write atomically (temp file + fsync + rename): a reader never sees half a shard."""
    atomic_write(path, lambda tmp: pq.write_table(records_to_table(records), tmp, compression="zstd"))


def read_shards(shards: Iterable[Path]) -> Iterator[Record]:
    """Every record of these shards, in order."""
    for shard in shards:
        for row in pq.read_table(shard).to_pylist():
            yield Record.from_dict(row)


def read_records(folder: Path) -> Iterator[Record]:
    """Every record in a folder of shards, in shard order."""
    return read_shards(sorted(folder.glob("*.parquet")))


def count_rows(folder: Path) -> int:
    return sum(pq.ParquetFile(s).metadata.num_rows for s in sorted(folder.glob("*.parquet")))


__all__ = ["RECORD_SCHEMA", "count_rows", "read_records", "read_shards", "records_to_table", "write_shard"]
