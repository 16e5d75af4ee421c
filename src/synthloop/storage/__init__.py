"""The run directory, its typed manifest, its Parquet shards, and the one atomic writer."""

from synthloop.storage.atomic import atomic_write, atomic_write_json, atomic_write_text
from synthloop.storage.manifest import Manifest, RoundState
from synthloop.storage.rundir import RunDir, inputs_hash, recipe_hash
from synthloop.storage.shards import RECORD_SCHEMA, count_rows, read_records, read_shards, records_to_table, write_shard

__all__ = [
    "RECORD_SCHEMA",
    "Manifest",
    "RoundState",
    "RunDir",
    "atomic_write",
    "atomic_write_json",
    "atomic_write_text",
    "count_rows",
    "inputs_hash",
    "read_records",
    "read_shards",
    "recipe_hash",
    "records_to_table",
    "write_shard",
]
