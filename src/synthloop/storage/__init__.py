"""The run directory and its Parquet shards."""

from synthloop.storage.rundir import RunDir, recipe_hash
from synthloop.storage.shards import RECORD_SCHEMA, count_rows, read_records, records_to_table, write_shard

__all__ = ["RECORD_SCHEMA", "RunDir", "count_rows", "read_records", "recipe_hash", "records_to_table", "write_shard"]
