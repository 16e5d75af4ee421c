"""The local engine: streams a round's chunks through the stages in this process, with no barrier
between chunks.

The stages split in two (`split_stages`): the head (generate, verify, judge, per-record filters)
is independent per record, so the heads of several chunks run at once on worker threads, enough
of them that the teacher's client always has requests waiting (`chunks_in_flight`); the tail
(dedup, from the first ordered stage on) and `commit` run on the calling thread strictly in chunk
order. A chunk is done only once committed: a crash loses at most the uncommitted chunks, which a
re-run redoes from the request cache. Coroutines run on one event loop on a background thread
(`aio.LoopThread`), which keeps the backends' connection pools alive across chunks and rounds."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Coroutine, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from synthloop.engines.aio import LoopThread
from synthloop.engines.base import Chunk, ChunkResult, Commit
from synthloop.engines.stream import BudgetGate, Partial, budget_of, chunks_in_flight
from synthloop.pipeline import RunContext, Stage, run_stages
from synthloop.pipeline.stage import split_stages

T = TypeVar("T")


class LocalEngine:
    name = "local"

    def __init__(self, chunks_in_flight: int | None = None) -> None:
        self.io = LoopThread()
        #: Heads run at once; None sizes it from the stages' clients (`chunks_in_flight`).
        self.width = chunks_in_flight

    def run_async(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.io.run(coro)

    def run_chunks(self, chunks: Sequence[Chunk], stages: Sequence[Stage], commit: Commit) -> None:
        head, tail = split_stages(stages)
        width = self.width or chunks_in_flight(head, chunks)
        stop, gate = threading.Event(), BudgetGate(budget_of(stages))
        with ThreadPoolExecutor(width, thread_name_prefix="synthloop-chunk") as pool:
            try:
                for part in self._heads(pool, chunks, head, stop, gate, ahead=2 * width):
                    result = self._tail(part, tail)
                    commit(result)
                    gate.learn(result)
            except BaseException:
                stop.set()  # heads still running get CancelledError from the loop at once
                self.io.cancel_all()
                pool.shutdown(wait=True, cancel_futures=True)
                raise

    def _heads(self, pool: ThreadPoolExecutor, chunks: Sequence[Chunk], head: Sequence[Stage],
               stop: threading.Event, gate: BudgetGate, ahead: int) -> Iterator[Partial]:
        """Finished heads in chunk order. At most `ahead` chunks are submitted and not yet handed
        out (the pool runs `width` at a time, the rest wait their turn), fewer near a budget cap;
        the queue is refilled before each commit, so the pool stays busy through it."""
        todo, queue = list(reversed(chunks)), deque[Future[Partial]]()
        ready: Partial | None = None  # finished, handed out next (still in flight until committed)
        while True:
            while todo and len(queue) < ahead and gate.allows(len(queue) + (ready is not None)):
                queue.append(pool.submit(self._head, todo.pop(), head, stop))
            if ready is not None:
                yield ready
                ready = None
            elif not queue:
                return
            else:
                ready = queue.popleft().result()

    def _head(self, chunk: Chunk, head: Sequence[Stage], stop: threading.Event) -> Partial:
        part = Partial(chunk, RunContext(round=chunk.round))
        part.ctx.on_reject = part.rejected.append
        part.ctx.run_async = lambda coro: self.io.run(coro, stop)
        part.kept = list(run_stages(chunk.records, head, part.ctx))
        return part

    def _tail(self, part: Partial, tail: Sequence[Stage]) -> ChunkResult:
        accepted = list(run_stages(part.kept, tail, part.ctx))
        for r in accepted:
            r.status = "accepted"
        return ChunkResult(part.chunk, accepted, part.rejected, part.ctx.take_stats())

    def close(self) -> None:
        self.io.close()


__all__ = ["LocalEngine"]
