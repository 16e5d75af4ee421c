"""What an engine is: it decides *where* a round's chunks run through the stages, never *what*
the stages do or which chunks need running (the rounds loop decides that)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from synthloop.pipeline.context import StageStats
from synthloop.pipeline.stage import Stage
from synthloop.records import Record

T = TypeVar("T")


@dataclass
class Chunk:
    round: int
    index: int
    records: list[Record]


@dataclass
class ChunkResult:
    chunk: Chunk
    accepted: list[Record]
    rejected: list[Record]
    stats: dict[str, StageStats] = field(default_factory=dict)


#: Called with each finished chunk, strictly in chunk order, on the thread that called
#: `run_chunks`: it commits the chunk. Later chunks' heads may already be running (streaming);
#: a chunk is done only once this returns.
Commit = Callable[[ChunkResult], None]


class Engine(Protocol):
    name: str

    def run_async(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the engine's event loop (clients and their pools live there)."""
        ...

    def run_chunks(self, chunks: Sequence[Chunk], stages: Sequence[Stage], commit: Commit) -> None: ...

    def close(self) -> None: ...


__all__ = ["Chunk", "ChunkResult", "Commit", "Engine"]
