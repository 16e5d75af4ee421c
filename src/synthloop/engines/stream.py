"""What a streaming engine decides besides where stages run: how many chunks it has in flight.

- `chunks_in_flight`: enough chunks at once that their requests fill twice the busiest client's
  concurrency, so one chunk's verification and commit never leave the client idle.
- `BudgetGate`: near a budget cap, later chunks must not spend what the oldest one needs to
  finish (a chunk half-generated when the cap is hit is lost until a resume). With a cap, the
  first chunk runs alone and measures what a chunk costs; after that a new chunk starts only while
  the budget left covers every chunk in flight and it. The cap itself is enforced by the client
  (`Budget`): the gate only keeps the money spent where it can be committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from synthloop.engines.base import Chunk, ChunkResult
from synthloop.pipeline import RunContext, Stage
from synthloop.records import Record

#: More chunks at once than this gains nothing (each is a thread waiting on the event loop).
MAX_CHUNKS_IN_FLIGHT = 64


@dataclass
class Partial:
    """A chunk whose head has run: what it kept, what it rejected, its counters so far."""

    chunk: Chunk
    ctx: RunContext
    kept: list[Record] = field(default_factory=list)
    rejected: list[Record] = field(default_factory=list)


def chunks_in_flight(head: Sequence[Stage], chunks: Sequence[Chunk]) -> int:
    """Chunks whose heads run at once: their records x chunk size >= 2 x the busiest head
    stage's client concurrency (`Stage.requests_in_flight`); at least 2, at most 64."""
    size = max((len(c.records) for c in chunks), default=1) or 1
    wanted = max((s.requests_in_flight() for s in head), default=0)
    return max(2, min(MAX_CHUNKS_IN_FLIGHT, len(chunks), -(-2 * wanted // size)))


def budget_of(stages: Sequence[Stage]) -> Any:
    """The budget the stages' clients draw on (teacher and judge share one), or None."""
    for stage in stages:
        budget = getattr(getattr(stage, "client", None), "budget", None)
        if budget is not None:
            return budget
    return None


class BudgetGate:
    """Whether another chunk may start, given the budget left (see the module docstring)."""

    def __init__(self, budget: Any) -> None:
        capped = budget is not None and (budget.max_tokens is not None or budget.max_cost_usd is not None)
        self.budget = budget if capped else None
        self.tokens = 0  # the most a committed chunk's records used (cached answers included)
        self.cost = 0.0
        self.measured = False

    def learn(self, result: ChunkResult) -> None:
        records = [*result.accepted, *result.rejected]
        tokens = sum(r.usage.prompt_tokens + r.usage.completion_tokens for r in records)
        self.tokens = max(self.tokens, tokens)
        self.cost = max(self.cost, sum(r.usage.cost_usd for r in records))
        self.measured = True

    def allows(self, running: int) -> bool:
        """May a chunk start while `running` chunks are in flight? (One always may, if none is.)"""
        if self.budget is None or running == 0:
            return True
        if not self.measured:
            return False
        b, n = self.budget, running + 1
        tokens_ok = b.max_tokens is None or b.max_tokens - b.spent_tokens >= n * self.tokens
        cost_ok = b.max_cost_usd is None or b.max_cost_usd - b.spent_cost_usd >= n * self.cost
        return bool(tokens_ok and cost_ok)


__all__ = ["BudgetGate", "MAX_CHUNKS_IN_FLIGHT", "Partial", "budget_of", "chunks_in_flight"]
