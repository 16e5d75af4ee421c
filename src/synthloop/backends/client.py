"""The client: the one place with policy for talking to a model.

A `Backend` only answers batches. Everything else lives here, once: cache lookups (a cached answer
is never asked again), de-duplication of identical requests, batching, a bound on requests in
flight, client-side rate limiting, retries with exponential backoff and full jitter (honouring a
server's Retry-After), re-asks of unparseable output, token and cost accounting, and the budget.

Accounting choice: `usage.prompt_tokens`, `completion_tokens` and `cost_usd` count only *new*
answers (what this process paid for); a cached answer adds 1 to `usage.cached_requests` and nothing
else. `usage.requests` counts every request sent to the backend, retries included.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, TypeVar, cast

from synthloop.backends.base import Backend, Request, Response, retry_after
from synthloop.backends.cache import RequestCache
from synthloop.errors import BackendError, BadResponse, BudgetExceeded
from synthloop.records import Usage

T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger("synthloop.backends")

#: The sleep used between retries and for rate limiting (a seam for tests that record delays).
_sleep = asyncio.sleep


class ParseFailure(Exception):
    """Raised by a `parse` callable when a response is unusable; the request is asked again."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Parsed(Generic[T]):
    """The outcome for one request of `Client.complete_parsed`.

    `responses` holds every response used (all parse attempts, cached or not) so a caller can
    account tokens per record; `error` is set when the backend itself failed (after retries).
    """

    value: T | None
    ok: bool
    reason: str = ""
    responses: list[Response] = field(default_factory=list)
    error: BackendError | None = None

    @property
    def response(self) -> Response | None:
        """The last response: the one that parsed, when `ok`."""
        return self.responses[-1] if self.responses else None


@dataclass
class Budget:
    """A cap on new spending, shareable between clients (teacher and judge draw on one budget).

    `spent_*` start at zero; a resumed run can pass what earlier sessions spent."""

    max_cost_usd: float | None = None
    max_tokens: int | None = None
    spent_cost_usd: float = 0.0
    spent_tokens: int = 0

    def spend(self, tokens: int, cost_usd: float) -> None:
        self.spent_tokens += tokens
        self.spent_cost_usd += cost_usd

    def check(self) -> None:
        """Raise `BudgetExceeded` if a cap is already reached (called before each new send)."""
        if self.max_cost_usd is not None and self.spent_cost_usd >= self.max_cost_usd:
            raise BudgetExceeded(
                f"budget reached: spent ${self.spent_cost_usd:.4f} of budget.max_cost_usd = ${self.max_cost_usd:g}; "
                "everything answered so far is kept: raise [budget] max_cost_usd in the recipe (or remove it) "
                "and run the same command again to continue"
            )
        if self.max_tokens is not None and self.spent_tokens >= self.max_tokens:
            raise BudgetExceeded(
                f"budget reached: used {self.spent_tokens} tokens of budget.max_tokens = {self.max_tokens}; "
                "everything answered so far is kept: raise [budget] max_tokens in the recipe (or remove it) "
                "and run the same command again to continue"
            )


class _RateLimiter:
    """Spaces sends evenly: at most `per_minute` requests per minute, no bursts."""

    def __init__(self, per_minute: float) -> None:
        self.interval = 60.0 / per_minute
        self.next_at = 0.0

    async def wait(self, n: int) -> None:
        now = time.monotonic()
        start = max(now, self.next_at)
        self.next_at = start + n * self.interval
        if start > now:
            await _sleep(start - now)


class Client:
    """Policy around one backend. See the module docstring for what is counted where."""

    def __init__(
        self,
        backend: Backend,
        *,
        cache: RequestCache | None = None,
        concurrency: int = 8,
        max_retries: int = 4,
        max_parse_retries: int = 2,
        requests_per_minute: float | None = None,
        price_prompt_per_1m: float = 0.0,
        price_completion_per_1m: float = 0.0,
        budget: Budget | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.backend = backend
        self.cache = cache
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.max_parse_retries = max_parse_retries
        self.price_prompt_per_1m = price_prompt_per_1m
        self.price_completion_per_1m = price_completion_per_1m
        self.budget = budget
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.usage = Usage()
        # A chunk is one `generate` call; chunks x chunk size never exceeds `concurrency`.
        self._chunk = max(1, min(backend.batch_size, concurrency))
        self._slots = max(1, concurrency // self._chunk)
        self._limiter = _RateLimiter(requests_per_minute) if requests_per_minute else None
        self._rng = random.Random()
        self._sem: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    # -- accounting -------------------------------------------------------------------------
    def cost(self, response: Response) -> float:
        """New money this response cost, in USD (0 for a cached answer)."""
        if response.cached:
            return 0.0
        return (response.prompt_tokens * self.price_prompt_per_1m + response.completion_tokens * self.price_completion_per_1m) / 1e6

    def _account(self, request: Request, response: Response) -> None:
        cost = self.cost(response)
        self.usage.prompt_tokens += response.prompt_tokens
        self.usage.completion_tokens += response.completion_tokens
        self.usage.cost_usd += cost
        if self.budget is not None:
            self.budget.spend(response.prompt_tokens + response.completion_tokens, cost)
        if self.cache is not None:
            self.cache.put(request.cache_key(), response)

    # -- complete ---------------------------------------------------------------------------
    async def complete(self, requests: list[Request]) -> list[Response | BackendError]:
        """One answer (or the `BackendError` that ended its retries) per request, in order.

        Raises `BudgetExceeded` only when new requests would have to be sent past the budget;
        everything answered before that is already in the cache."""
        results: list[Response | BackendError | None] = [None] * len(requests)
        misses: dict[str, list[int]] = {}
        for i, request in enumerate(requests):
            key = request.cache_key()
            hit = self.cache.get(key) if self.cache is not None else None
            if hit is not None:
                results[i] = hit
                self.usage.cached_requests += 1
            else:
                misses.setdefault(key, []).append(i)
        if misses:
            unique = [idx[0] for idx in misses.values()]
            answers = await self._send_all([requests[i] for i in unique])
            for idx, answer in zip(misses.values(), answers):
                self._fill(results, idx, answer)
        return cast(list[Response | BackendError], results)  # every slot is filled above

    def _fill(self, results: list[Response | BackendError | None], idx: list[int], answer: Response | BackendError) -> None:
        """The first slot gets the answer; identical requests in the same call reuse it."""
        results[idx[0]] = answer
        for j in idx[1:]:
            if isinstance(answer, Response):
                results[j] = dataclasses.replace(answer, cached=True)
                self.usage.cached_requests += 1
            else:
                results[j] = answer

    async def _send_all(self, requests: list[Request]) -> list[Response | BackendError]:
        sem = self._semaphore()
        stopped: list[BudgetExceeded] = []

        async def run(chunk: list[Request]) -> list[Response | BackendError] | None:
            async with sem:
                return await self._send_chunk(chunk, stopped)

        chunks = [requests[i : i + self._chunk] for i in range(0, len(requests), self._chunk)]
        parts = await asyncio.gather(*(run(c) for c in chunks))
        if stopped:
            raise stopped[0]
        return [answer for part in parts if part is not None for answer in part]

    async def _send_chunk(self, chunk: list[Request], stopped: list[BudgetExceeded]) -> list[Response | BackendError] | None:
        """Send one chunk, re-sending only its retryable failures. None: stopped by the budget."""
        results: list[Response | BackendError] = [BadResponse("not sent")] * len(chunk)
        pending = list(range(len(chunk)))
        for attempt in range(self.max_retries + 1):
            if stopped or not self._within_budget(stopped):
                return None
            if self._limiter is not None:
                await self._limiter.wait(len(pending))
            answers = await self._generate([chunk[i] for i in pending])
            self.usage.requests += len(pending)
            retry: list[int] = []
            for i, answer in zip(pending, answers):
                results[i] = answer
                if isinstance(answer, Response):
                    self._account(chunk[i], answer)
                elif answer.retryable and attempt < self.max_retries:
                    retry.append(i)
            if not retry:
                break
            await self._backoff(attempt, [results[i] for i in retry])
            pending = retry
        return results

    def _within_budget(self, stopped: list[BudgetExceeded]) -> bool:
        if self.budget is None:
            return True
        try:
            self.budget.check()
        except BudgetExceeded as e:
            stopped.append(e)
            return False
        return True

    async def _generate(self, requests: list[Request]) -> list[Response | BackendError]:
        """`backend.generate`, with a whole-batch failure spread over its slots."""
        try:
            answers = await self.backend.generate(requests)
        except BackendError as e:
            return [e] * len(requests)
        if len(answers) != len(requests):
            err = BadResponse(f"backend {self.backend.name} returned {len(answers)} answers for {len(requests)} requests (a backend bug: report it)")
            return [err] * len(requests)
        return answers

    async def _backoff(self, attempt: int, errors: list[Response | BackendError]) -> None:
        """Full jitter: uniform(0, min(max, base * 2^attempt)), but never less than a Retry-After."""
        delay = self._rng.uniform(0.0, min(self.backoff_max, self.backoff_base * 2**attempt))
        hints = [h for e in errors if isinstance(e, BackendError) and (h := retry_after(e)) is not None]
        if hints:
            delay = max(delay, max(hints))
        first = errors[0]
        log.info("%d request(s) failed (%s: %s); retry %d/%d in %.2f s", len(errors), type(first).__name__, first, attempt + 1, self.max_retries, delay)
        await _sleep(delay)

    def _semaphore(self) -> asyncio.Semaphore:
        """One semaphore per event loop (the sync helpers run a fresh loop per call)."""
        loop = asyncio.get_running_loop()
        if self._sem is None or self._sem[0] is not loop:
            self._sem = (loop, asyncio.Semaphore(self._slots))
        return self._sem[1]

    # -- complete_parsed --------------------------------------------------------------------
    async def complete_parsed(
        self, requests: list[Request], parse: Callable[[Response], T], *, reask: Callable[[Request], Request] | None = None
    ) -> list[Parsed[T]]:
        """Complete and parse. A `ParseFailure` re-asks the request with `attempt + 1` (its own
        cache key and seed) up to `max_parse_retries` times; re-asks of one round go out together.
        `reask`, if given, rewrites each re-ask (already at `attempt + 1`) before it is sent: a judge
        uses it to put its worked examples in another order."""
        outcomes: list[Parsed[T]] = [Parsed(value=None, ok=False) for _ in requests]
        pending = list(enumerate(requests))
        for round_no in range(self.max_parse_retries + 1):
            answers = await self.complete([req for _, req in pending])
            retry: list[tuple[int, Request]] = []
            for (i, req), answer in zip(pending, answers):
                if self._settle(outcomes[i], answer, parse, round_no):
                    continue
                again = dataclasses.replace(req, attempt=req.attempt + 1)
                retry.append((i, reask(again) if reask is not None else again))
            if not retry:
                break
            pending = retry
        return outcomes

    def _settle(self, out: Parsed[T], answer: Response | BackendError, parse: Callable[[Response], T], round_no: int) -> bool:
        """Record one answer into `out`; False when it should be asked again."""
        if isinstance(answer, BackendError):
            out.error, out.reason = answer, f"backend_error: {type(answer).__name__}: {answer}"
            return True
        out.responses.append(answer)
        try:
            out.value, out.ok, out.reason = parse(answer), True, ""
            return True
        except ParseFailure as e:
            out.reason = f"unparseable: {e.reason} after {round_no + 1} attempts"
            return round_no >= self.max_parse_retries

    # -- sync helpers and lifecycle ---------------------------------------------------------
    def complete_sync(self, requests: list[Request]) -> list[Response | BackendError]:
        """`complete` from synchronous code (not from inside a running event loop)."""
        return self._run_sync(self.complete(requests))

    def complete_parsed_sync(self, requests: list[Request], parse: Callable[[Response], T]) -> list[Parsed[T]]:
        """`complete_parsed` from synchronous code (not from inside a running event loop)."""
        return self._run_sync(self.complete_parsed(requests, parse))

    def _run_sync(self, coro: Coroutine[Any, Any, R]) -> R:
        async def run_then_release() -> R:
            try:
                return await coro
            finally:
                await self.backend.aclose()  # loop-bound resources die with this loop; reopened lazily

        return asyncio.run(run_then_release())

    async def aclose(self) -> None:
        await self.backend.aclose()
        if self.cache is not None:
            self.cache.close()

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"Client(backend={self.backend!r}, concurrency={self.concurrency}, cache={self.cache!r})"


__all__ = ["Budget", "Client", "ParseFailure", "Parsed"]
