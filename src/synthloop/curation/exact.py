"""Exact dedup: two records whose normalised text is identical are duplicates; the first one wins.

The index holds one 128-bit xxh3 hash per kept record (16 bytes + dict overhead), so it streams: the
same stage object sees chunk after chunk and remembers every record it kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import xxhash

from synthloop.curation.text import batched, normalize
from synthloop.pipeline import RunContext, Stage
from synthloop.records import Record


def text_key(text: str) -> bytes:
    """xxh3-128 of the normalised text (collision odds ~2^-64 at 2^32 records)."""
    return xxhash.xxh3_128_digest(normalize(text).encode("utf-8"))


class ExactDedup(Stage):
    """Reject a record whose normalised `main_text()` equals an earlier kept record's."""

    ordered = True  # its decision depends on every record kept before it

    name = "dedup_exact"

    def __init__(self) -> None:
        self._first: dict[bytes, str] = {}

    def seed(self, records: Iterable[Record]) -> None:
        """Load already-accepted records (a resumed run) so later chunks are checked against them."""
        for record in records:
            self._first.setdefault(text_key(record.main_text()), record.id)

    def run(self, records: Iterable[Record], ctx: RunContext) -> Iterator[Record]:
        for batch in batched(records, 256):
            yield from self._run_batch(batch, ctx)

    def _run_batch(self, batch: list[Record], ctx: RunContext) -> Iterator[Record]:
        stats = ctx.stage_stats(self.name)
        stats.seen += len(batch)
        with ctx.timer(self.name):  # timed per batch: a per-record timer costs more than the hash
            firsts = [self._first.setdefault(text_key(r.main_text()), r.id) for r in batch]
        for record, first in zip(batch, firsts):
            if first == record.id:
                stats.kept += 1
                yield record
            else:
                ctx.reject(record, self.name, f"duplicate: same normalized text as {first}")

    def __len__(self) -> int:
        return len(self._first)


__all__ = ["ExactDedup", "text_key"]
