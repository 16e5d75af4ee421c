"""What every stage can see while it runs: where rejects go, the counters, the round."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthloop.records import Record


@dataclass
class StageStats:
    seen: int = 0
    kept: int = 0
    rejected: int = 0
    seconds: float = 0.0
    reasons: Counter[str] = field(default_factory=Counter)
    extra: Counter[str] = field(default_factory=Counter)

    def add(self, other: "StageStats") -> None:
        self.seen += other.seen
        self.kept += other.kept
        self.rejected += other.rejected
        self.seconds += other.seconds
        self.reasons.update(other.reasons)
        self.extra.update(other.extra)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "StageStats":
        return cls(int(d.get("seen", 0)), int(d.get("kept", 0)), int(d.get("rejected", 0)), float(d.get("seconds", 0.0)),
                   Counter(d.get("reasons") or {}), Counter(d.get("extra") or {}))

    def to_dict(self) -> dict[str, Any]:
        return {
            "seen": self.seen,
            "kept": self.kept,
            "rejected": self.rejected,
            "seconds": round(self.seconds, 3),
            "reasons": dict(self.reasons),
            "extra": dict(self.extra),
        }


def reason_key(reason: str) -> str:
    """The part of a reason before ':' is its category (`tests_failed: AssertionError ...`)."""
    return reason.split(":", 1)[0].strip() or "unspecified"


@dataclass
class RunContext:
    """Passed to every stage. `on_reject` is where the engine stores a rejected record;
    `run_async` runs a coroutine to completion on the engine's event loop (async stages use it)."""

    round: int = 0
    run_dir: Path | None = None
    on_reject: Callable[[Record], None] | None = None
    stats: dict[str, StageStats] = field(default_factory=dict)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("synthloop"))
    rejected: list[Record] = field(default_factory=list)
    run_async: Callable[[Coroutine[Any, Any, Any]], Any] = asyncio.run

    def stage_stats(self, stage: str) -> StageStats:
        return self.stats.setdefault(stage, StageStats())

    def reject(self, record: Record, stage: str, reason: str) -> None:
        record.reject(stage, reason)
        st = self.stage_stats(stage)
        st.rejected += 1
        st.reasons[reason_key(reason)] += 1
        if self.on_reject is not None:
            self.on_reject(record)
        else:
            self.rejected.append(record)

    def count(self, stage: str, key: str, n: int = 1) -> None:
        """Stage-specific counters (e.g. `pii_email` redactions), shown in the card and report."""
        self.stage_stats(stage).extra[key] += n

    def take_stats(self) -> dict[str, StageStats]:
        """The counters so far, and a fresh set for what follows (one chunk's stats at a time)."""
        taken, self.stats = self.stats, {}
        return taken

    def timer(self, stage: str) -> "_Timer":
        return _Timer(self.stage_stats(stage))


class _Timer:
    def __init__(self, stats: StageStats) -> None:
        self.stats = stats

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.stats.seconds += time.perf_counter() - self.t0
