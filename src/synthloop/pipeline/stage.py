"""The stage contract, and base classes that own the loop so a subclass writes one decision.

- `Stage.run(records, ctx)` yields records; this is all an engine needs.
- `Filter.keep(record)` returns True or (False, reason); the base counts, times and rejects.
- `VerifierStage` wraps a `verify(record) -> Verdict` and records the verdict on every record.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from synthloop.pipeline.context import RunContext
from synthloop.records import Record, Verdict

KeepResult = bool | tuple[bool, str]


class Stage:
    """A step of the pipeline. Subclasses override `run` (or use a base below)."""

    name: str = "stage"

    def run(self, records: Iterable[Record], ctx: RunContext) -> Iterator[Record]:
        raise NotImplementedError

    def close(self, ctx: RunContext) -> None:
        """Called once after the last record (flush indexes, write stats). Default: nothing."""


class Filter(Stage):
    """Keep or reject one record at a time."""

    def keep(self, record: Record) -> KeepResult:
        raise NotImplementedError

    def run(self, records: Iterable[Record], ctx: RunContext) -> Iterator[Record]:
        stats = ctx.stage_stats(self.name)
        for record in records:
            stats.seen += 1
            with ctx.timer(self.name):
                result = self.keep(record)
            ok, reason = (result, "") if isinstance(result, bool) else result
            if ok:
                stats.kept += 1
                yield record
            else:
                ctx.reject(record, self.name, reason or "rejected")


class Verifier(Protocol):
    name: str

    def verify(self, record: Record) -> Verdict: ...


class VerifierStage(Stage):
    """Runs a verifier on each record; the verdict is attached whether it passes or not."""

    def __init__(self, verifier: Verifier, stage: str = "verify") -> None:
        self.verifier = verifier
        self.name = f"{stage}:{verifier.name}"
        self.stage = stage

    def run(self, records: Iterable[Record], ctx: RunContext) -> Iterator[Record]:
        stats = ctx.stage_stats(self.name)
        for record in records:
            stats.seen += 1
            with ctx.timer(self.name):
                verdict = self.verifier.verify(record)
            record.add_verdict(verdict)
            if verdict.ok:
                stats.kept += 1
                yield record
            else:
                ctx.reject(record, self.name, verdict.reason or "failed")


def run_stages(records: Iterable[Record], stages: Sequence[Stage], ctx: RunContext) -> Iterator[Record]:
    """Chain stages lazily: records stream through, nothing is held unless a stage holds it."""
    stream: Iterable[Record] = records
    for stage in stages:
        stream = stage.run(stream, ctx)
    yield from stream
    for stage in stages:
        stage.close(ctx)
