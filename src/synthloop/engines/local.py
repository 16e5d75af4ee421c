"""The local engine: runs a round's chunks through the stages in this process, one after another,
and hands each finished chunk to `commit` before the next starts. Stages that talk to a model run
their coroutines on one event loop on a background thread (`aio.LoopThread`), which keeps the
backends' connection pools alive across chunks and rounds."""

from __future__ import annotations

from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from synthloop.engines.aio import LoopThread
from synthloop.engines.base import Chunk, ChunkResult, Commit
from synthloop.pipeline import RunContext, Stage, run_stages
from synthloop.records import Record

T = TypeVar("T")


class LocalEngine:
    name = "local"

    def __init__(self) -> None:
        self.io = LoopThread()

    def run_async(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.io.run(coro)

    def run_chunks(self, chunks: Sequence[Chunk], stages: Sequence[Stage], commit: Commit) -> None:
        for chunk in chunks:
            commit(self.run_chunk(chunk, stages))

    def run_chunk(self, chunk: Chunk, stages: Sequence[Stage]) -> ChunkResult:
        rejected: list[Record] = []
        ctx = RunContext(round=chunk.round, on_reject=rejected.append, run_async=self.run_async)
        accepted = list(run_stages(chunk.records, stages, ctx))
        for r in accepted:
            r.status = "accepted"
        return ChunkResult(chunk, accepted, rejected, ctx.take_stats())

    def close(self) -> None:
        self.io.close()


__all__ = ["LocalEngine"]
