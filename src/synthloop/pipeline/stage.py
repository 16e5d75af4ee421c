"""The stage contract, and base classes that own the loop so a subclass writes one decision.

- `Stage.run(records, ctx)` yields records; this is all an engine needs.
- `Filter.keep(record)` returns True or (False, reason); the base counts, times and rejects.
- `VerifierStage` runs the first of its verifiers that applies to a record and attaches the verdict.
- `BatchStage.decide_batch(records, ctx)` (async) decides a whole chunk at once: stages that talk to
  a model (generate, judge) send the chunk's requests together so the backend stays busy.

Every base counts seen / kept / rejected-by-reason in `ctx.stats[name]` the same way (`_settle`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol, runtime_checkable

from synthloop.pipeline.context import RunContext, StageStats
from synthloop.records import Record, Verdict

KeepResult = bool | tuple[bool, str]


class Stage:
    """A step of the pipeline. Subclasses override `run` (or use a base below)."""

    name: str = "stage"
    #: True for a stage whose decision depends on the records it saw before (dedup): it must see
    #: chunks in commit order, in one place. Stages before the first ordered one are independent
    #: per record, so an engine may run them on any worker and chunks in any order
    #: (`split_stages`).
    ordered: bool = False

    def run(self, records: Iterable[Record], ctx: RunContext) -> Iterator[Record]:
        raise NotImplementedError

    def requests_in_flight(self) -> int:
        """How many model requests this stage can keep in flight (its client's concurrency); 0 for
        a stage that sends none. A streaming engine runs enough chunks at once to fill it."""
        return 0

    def close(self, ctx: RunContext) -> None:
        """Called once after the last record of a chunk (flush indexes). Default: nothing."""

    def seed(self, records: Iterable[Record]) -> None:
        """Re-learn state from records accepted earlier (a resumed run, a later round). Default: none."""


def _settle(stats: StageStats, record: Record, result: KeepResult | Verdict, stage: str, ctx: RunContext) -> bool:
    """Count one decision; reject the record (kept, with the reason) when it failed."""
    if isinstance(result, Verdict):
        record.add_verdict(result)
        ok, reason = result.ok, result.reason or "failed"
    else:
        ok, reason = (result, "rejected") if isinstance(result, bool) else (result[0], result[1] or "rejected")
    stats.seen += 1
    if ok:
        stats.kept += 1
    else:
        ctx.reject(record, stage, reason)
    return ok


class Filter(Stage):
    """Keep or reject one record at a time."""

    def keep(self, record: Record) -> KeepResult:
        raise NotImplementedError

    def run(self, records: Iterable[Record], ctx: RunContext) -> Iterator[Record]:
        stats = ctx.stage_stats(self.name)
        for record in records:
            with ctx.timer(self.name):
                result = self.keep(record)
            if _settle(stats, record, result, self.name, ctx):
                yield record


@runtime_checkable
class Verifier(Protocol):
    name: str

    def verify(self, record: Record) -> Verdict: ...


def applies(verifier: Verifier, record: Record) -> bool:
    """A verifier may say which records it checks (`applies(record)`); by default, all."""
    check = getattr(verifier, "applies", None)
    return bool(check(record)) if callable(check) else True


def parallel_safe(verifier: Verifier) -> bool:
    """A verifier whose `verify` may run on several threads at once says `parallel = True` (the
    sandboxed ones: each check is its own subprocess). Others run one record at a time."""
    return bool(getattr(verifier, "parallel", False))


class VerifierStage(Stage):
    """Each record is checked by the first verifier that applies to it; the verdict is attached
    whether it passes or not. Stats and rejections are named `<stage>:<verifier name>`.

    Checks of parallel-safe verifiers run on `workers` threads (default: one per core), shared by
    every chunk the engine runs at once; verdicts are settled in record order, so the outcome is
    the serial one. A stage's `seconds` is the sum of its checks' times."""

    def __init__(self, verifiers: Verifier | Sequence[Verifier], stage: str = "verify", workers: int | None = None) -> None:
        self.verifiers = [verifiers] if isinstance(verifiers, Verifier) else list(verifiers)
        self.stage = stage
        self.name = stage if len(self.verifiers) != 1 else f"{stage}:{self.verifiers[0].name}"
        self.workers = workers or os.cpu_count() or 1
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def run(self, records: Iterable[Record], ctx: RunContext) -> Iterator[Record]:
        batch = [(record, next((v for v in self.verifiers if applies(v, record)), None)) for record in records]
        checks = [self._start(record, v) if v is not None else None for record, v in batch]
        for (record, verifier), check in zip(batch, checks, strict=True):
            if verifier is None or check is None:
                yield record
                continue
            verdict, seconds = check.result() if isinstance(check, Future) else _timed_verify(verifier, record)
            name = f"{self.stage}:{verifier.name}"
            ctx.stage_stats(name).seconds += seconds
            if _settle(ctx.stage_stats(name), record, verdict, name, ctx):
                yield record

    def _start(self, record: Record, verifier: Verifier) -> "Future[tuple[Verdict, float]] | bool":
        """A parallel-safe check goes to the pool now (a future); any other runs in its turn (True)."""
        if not parallel_safe(verifier) or self.workers <= 1:
            return True
        return self.pool().submit(_timed_verify, verifier, record)

    def __getstate__(self) -> dict[str, object]:
        """Picklable (an engine may ship stages to other processes): the pool is made again there."""
        state = dict(self.__dict__)
        state["_pool"], state["_lock"] = None, None
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="synthloop-verify")
            return self._pool


def _timed_verify(verifier: Verifier, record: Record) -> tuple[Verdict, float]:
    t0 = time.perf_counter()
    verdict = verifier.verify(record)
    return verdict, time.perf_counter() - t0


class BatchStage(Stage):
    """Decides a chunk at once with an async `decide_batch`, run on the engine's event loop.
    A batch stage that talks to a model keeps it in `self.client` (its concurrency is what the
    engine keeps busy: `requests_in_flight`)."""

    def requests_in_flight(self) -> int:
        return int(getattr(getattr(self, "client", None), "concurrency", 0))

    async def decide_batch(self, records: list[Record], ctx: RunContext) -> list[KeepResult | Verdict]:
        raise NotImplementedError

    def run(self, records: Iterable[Record], ctx: RunContext) -> Iterator[Record]:
        batch = list(records)
        if not batch:
            return
        stats = ctx.stage_stats(self.name)
        with ctx.timer(self.name):
            results = ctx.run_async(self.decide_batch(batch, ctx))
        for record, result in zip(batch, results, strict=True):
            if _settle(stats, record, result, self.name, ctx):
                yield record


def split_stages(stages: Sequence[Stage]) -> tuple[list[Stage], list[Stage]]:
    """(independent head, ordered tail): the head runs anywhere, chunks in any order and at once;
    the tail (from the first `ordered` stage on) runs where chunks commit, one chunk at a time, in
    chunk order, so the accepted set does not depend on which chunk finished first."""
    for i, stage in enumerate(stages):
        if stage.ordered:
            return list(stages[:i]), list(stages[i:])
    return list(stages), []


def run_stages(records: Iterable[Record], stages: Sequence[Stage], ctx: RunContext) -> Iterator[Record]:
    """Chain stages lazily: records stream through, nothing is held unless a stage holds it."""
    stream: Iterable[Record] = records
    for stage in stages:
        stream = stage.run(stream, ctx)
    yield from stream
    for stage in stages:
        stage.close(ctx)


__all__ = ["BatchStage", "Filter", "KeepResult", "Stage", "Verifier", "VerifierStage", "applies", "parallel_safe", "run_stages", "split_stages"]
