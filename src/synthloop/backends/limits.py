"""What bounds the client's sending: the budget, the rate limits and the adaptive window.

- `Budget`: a hard cap. Each request's worst case (its prompt tokens, estimated by
  `PromptEstimator` from a byte bound calibrated on the server's usage reports, + its
  `max_tokens`, at the recipe's prices) is reserved before it is sent; the answer
  settles the reservation at what it really cost. A request whose reservation would cross the cap
  is parked until a request in flight settles; when none is left in flight the call stops.
- `Pacer`: even spacing for requests per minute or tokens per minute (no bursts).
- `AdaptiveWindow`: AIMD on requests in flight, driven by 429s and timeouts.
- `Overdue`: when a send is overdue (past the latency answers usually take), as TCP's
  retransmission timer computes it, and when it is stalled (a copy of it is sent).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from dataclasses import dataclass, field

from synthloop.backends.base import Request
from synthloop.errors import BudgetExceeded

#: Chat-template tokens around each message and the reply (OpenAI documents 3-4); a bound, not a guess.
_PER_MESSAGE_TOKENS = 4
_PER_REPLY_TOKENS = 3


def prompt_token_bound(request: Request) -> int:
    """An upper bound on the prompt's tokens: byte-level BPE tokenizers (GPT, Llama 3, Qwen,
    Mistral) never make more tokens than UTF-8 bytes, plus the chat template's few per message."""
    text_bytes = sum(len(role.encode()) + len(content.encode()) for role, content in request.messages)
    return text_bytes + _PER_MESSAGE_TOKENS * len(request.messages) + _PER_REPLY_TOKENS


def worst_case_tokens(request: Request) -> int:
    """The most tokens this request can be billed for: its prompt bound plus `max_tokens`."""
    return prompt_token_bound(request) + request.max_tokens


class PromptEstimator:
    """Prompt tokens to reserve, per model: the byte bound until that model's first answer, then
    `margin` x the most tokens-per-bound-unit any answer reported (capped at the bound).

    The byte bound alone is 3-4x real English token counts: a cap would stop with most of the
    budget unused. The server's own usage calibrates it; the margin covers prompts denser than
    those seen so far (only one over `margin` x the densest seen can be under-reserved)."""

    def __init__(self, margin: float = 1.5) -> None:
        self.margin = margin
        self.density: dict[str, float] = {}

    def tokens(self, model: str, request: Request) -> int:
        bound = prompt_token_bound(request)
        seen = self.density.get(model)
        return bound if seen is None else min(bound, math.ceil(bound * seen * self.margin))

    def observe(self, model: str, request: Request, prompt_tokens: int) -> None:
        density = prompt_tokens / max(1, prompt_token_bound(request))
        self.density[model] = max(density, self.density.get(model, 0.0))


@dataclass(frozen=True)
class Reservation:
    """What one request holds of a budget until its answer settles it."""

    tokens: int
    cost_usd: float


@dataclass
class Budget:
    """A hard cap on new spending, shareable between clients (teacher and judge draw on one budget).

    `spent_*` start at zero; a resumed run passes what earlier sessions spent (the request cache's
    ledger: `RequestCache.spent()`). `reserved_*` is what requests in flight may still cost."""

    max_cost_usd: float | None = None
    max_tokens: int | None = None
    spent_cost_usd: float = 0.0
    spent_tokens: int = 0
    reserved_cost_usd: float = 0.0
    reserved_tokens: int = 0
    holds: int = 0  # reservations outstanding
    #: Shared by every client on this budget (teacher and judge), so each model calibrates once.
    prompts: PromptEstimator = field(default_factory=PromptEstimator, repr=False, compare=False)
    _waiters: list[asyncio.Future[None]] = field(default_factory=list, repr=False, compare=False)

    def spend(self, tokens: int, cost_usd: float) -> None:
        self.spent_tokens += tokens
        self.spent_cost_usd += cost_usd

    def check(self) -> None:
        """Raise `BudgetExceeded` if a cap is already reached."""
        self._refuse(Reservation(0, 0.0), strict=False)

    def reserve(self, tokens: int, cost_usd: float) -> Reservation:
        """Hold a request's worst case before it is sent; `BudgetExceeded` if it would cross a cap."""
        want = Reservation(tokens, cost_usd)
        self._refuse(want, strict=True)
        self.reserved_tokens += tokens
        self.reserved_cost_usd += cost_usd
        self.holds += 1
        return want

    def settle(self, held: Reservation, tokens: int, cost_usd: float) -> None:
        """The answer arrived: what it really cost replaces what was held."""
        self.spend(tokens, cost_usd)
        self.release(held)

    def release(self, held: Reservation) -> None:
        """The request ended without an answer (or was settled): give its reservation back."""
        self.reserved_tokens -= held.tokens
        self.reserved_cost_usd = max(0.0, self.reserved_cost_usd - held.cost_usd)
        self.holds -= 1
        self.wake()

    def changed(self) -> asyncio.Future[None]:
        """A future that resolves when some reservation is settled or released (room may have
        appeared). Registered at once, so a settle right after this call is never missed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        return future

    def wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)

    def _refuse(self, want: Reservation, *, strict: bool) -> None:
        """Raise when `want` does not fit (strict) or a cap is already reached."""
        if self.max_cost_usd is not None:
            total = self.spent_cost_usd + self.reserved_cost_usd + want.cost_usd
            if self.spent_cost_usd >= self.max_cost_usd or (strict and total > self.max_cost_usd):
                raise BudgetExceeded(
                    f"budget reached: spent ${self.spent_cost_usd:.4f} of budget.max_cost_usd = ${self.max_cost_usd:g} "
                    f"(the next request could cost up to ${want.cost_usd:.4f}); everything answered so far is kept: "
                    "raise [budget] max_cost_usd in the recipe (or remove it) and run the same command again to continue"
                )
        if self.max_tokens is not None:
            total_tokens = self.spent_tokens + self.reserved_tokens + want.tokens
            if self.spent_tokens >= self.max_tokens or (strict and total_tokens > self.max_tokens):
                raise BudgetExceeded(
                    f"budget reached: used {self.spent_tokens} tokens of budget.max_tokens = {self.max_tokens} "
                    f"(the next request could use up to {want.tokens}); everything answered so far is kept: "
                    "raise [budget] max_tokens in the recipe (or remove it) and run the same command again to continue"
                )


class Pacer:
    """Spaces sends evenly: at most `per_minute` units (requests or tokens) per minute, no bursts.
    `refund` gives back what was taken but not used (a token estimate above the real count)."""

    def __init__(self, per_minute: float) -> None:
        self.interval = 60.0 / per_minute
        self.next_at = 0.0

    def delay(self, n: float) -> float:
        """Book `n` units; the seconds to wait before sending them."""
        now = time.monotonic()
        start = max(now, self.next_at)
        self.next_at = start + n * self.interval
        return start - now

    def refund(self, n: float) -> None:
        now = time.monotonic()
        if self.next_at > now:
            self.next_at = max(now, self.next_at - n * self.interval)


class AdaptiveWindow:
    """How many sends may be in flight: AIMD between 1 and `ceiling`.

    Starts at the ceiling. Every window's worth of answers it looks at the share that were 429s
    or timeouts: over `threshold` halves the window, otherwise it grows by one. Judging a whole
    window (not each signal) keeps a few scattered 429s from collapsing it; a server that is
    really full (a share of 429s well above a quarter) still halves it once per round trip."""

    def __init__(self, ceiling: int, *, per_send: int = 1, threshold: float = 0.25) -> None:
        self.ceiling = ceiling
        self.limit = ceiling
        self.per_send = per_send  # answers per send (a batch backend answers several at once)
        self.threshold = threshold
        self.in_flight = 0
        self.low = ceiling  # the smallest limit reached: tests and the bench read it
        self._seen = 0
        self._congested = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self, *, first: bool = False) -> None:
        """Wait for room; `first`: ahead of those already waiting (a copy of a stalled send)."""
        while self.in_flight >= self.limit:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            if first:
                self._waiters.appendleft(future)
            else:
                self._waiters.append(future)
            try:
                await future
            except asyncio.CancelledError:
                self._wake()  # pass a wake-up we may have taken on to the next waiter
                raise
        self.in_flight += 1

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def record(self, congested: bool) -> None:
        """One answer (or failure); adjusts the limit once a window's worth has been seen."""
        self._seen += 1
        self._congested += congested
        if self._seen < max(4, self.limit * self.per_send):
            return
        if self._congested > self.threshold * self._seen:
            self.limit = max(1, self.limit // 2)
            self.low = min(self.low, self.limit)
        elif self.limit < self.ceiling:
            self.limit += 1
            self._wake()
        self._seen = self._congested = 0

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.limit:
            future = self._waiters.popleft()
            if not future.done():
                future.set_result(None)
                return


class Overdue:
    """When a send is late, from the latency of answers so far (RFC 6298's smoothed estimate and
    mean deviation), None until `warmup` answers were seen:

    - `overdue()`: max(1.5 x smoothed, smoothed + 4 x deviation): the send no longer counts
      against the window (it waits on, holding no slot), so a hung request does not keep a
      healthy one from being sent. Nothing is lost or sent twice by this.
    - `late()`: from then on a send that has also been overtaken (a send started after it was
      answered) is stalled, and the client sends a copy of it (`client._Slot`).
    - `stalled(timeout)`: max(3 x smoothed, smoothed + 8 x deviation), when well under the
      timeout: stalled whether overtaken or not (the last send out has nothing to overtake it).

    A stalled send is not cut off: a copy races it and the first answer wins, so a request that is
    only slow loses nothing (its copy is cancelled when it answers).
    """

    def __init__(self, warmup: int = 16) -> None:
        self.warmup = warmup
        self.seen = 0
        self.srtt = 0.0
        self.rttvar = 0.0

    def observe(self, seconds: float) -> None:
        if self.seen == 0:
            self.srtt, self.rttvar = seconds, seconds / 2
        else:
            self.rttvar += 0.25 * (abs(self.srtt - seconds) - self.rttvar)
            self.srtt += 0.125 * (seconds - self.srtt)
        self.seen += 1

    def overdue(self) -> float | None:
        return None if self.seen < self.warmup else max(1.5 * self.srtt, self.srtt + 4 * self.rttvar)

    def late(self) -> float | None:
        return self.overdue()

    def stalled(self, timeout: float | None) -> float | None:
        if self.seen < self.warmup:
            return None
        after = max(3 * self.srtt, self.srtt + 8 * self.rttvar)
        return after if timeout is None or after < 0.8 * timeout else None


__all__ = ["AdaptiveWindow", "Overdue", "Budget", "Pacer", "PromptEstimator", "Reservation", "prompt_token_bound", "worst_case_tokens"]
