"""The client: the one place with policy for talking to a model.

A `Backend` only answers batches. Everything else lives here, once: cache lookups (one query per
call, a cached answer is never asked again), de-duplication of identical requests, batching, an
adaptive (AIMD) bound on requests in flight, requests- and tokens-per-minute limits, retries (a
refusal backs off with full jitter and waits out its own Retry-After while the others go on; an
unusable body or a timeout is sent again at once),
re-asks of unparseable output, copies of stalled sends (a hedge: the first answer wins, the other
send is cancelled), token and cost accounting, and a hard budget (each request's worst case is
reserved before it is sent, and again for each copy: see `limits.py`).

Durability: a new answer and its spend are committed to the cache in one transaction *before*
they are counted; answers that arrive in the same event-loop tick share one transaction.

Accounting choice: `usage.prompt_tokens`, `completion_tokens` and `cost_usd` count only *new*
answers (what this process paid for); a cached answer adds 1 to `usage.cached_requests` and nothing
else. `usage.requests` counts every request sent to the backend, retries and copies included. When
a stalled send and its copy both answer, one answer is kept (cached, returned) and the other is
still counted once as spend (usage, budget and the ledger), since it was paid for.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import math
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, TypeVar, cast

from synthloop.backends.base import Backend, Request, Response, retry_after
from synthloop.backends.cache import Entry, RequestCache
from synthloop.backends.limits import AdaptiveWindow, Budget, Overdue, Pacer, PromptEstimator, Reservation
from synthloop.errors import BackendError, BackendTimeout, BadResponse, BudgetExceeded, RateLimited, RecipeError
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


@dataclass(eq=False)
class _Job:
    """One unique request on its way: where its answer goes, its attempts, its budget hold."""

    request: Request
    index: int
    attempt: int = 0
    refusals: int = 0  # failures that said "too busy" (429, 5xx, refused): they alone grow the backoff
    held: Reservation | None = None
    booked_tokens: int = 0  # taken from the tokens-per-minute pacer, refunded down to the real count


class _Run:
    """The shared state of one `complete` call: the ready queue, results and the stop reasons."""

    def __init__(self, requests: list[Request]) -> None:
        # (0 = a retry, 1 = a first attempt; then arrival order): a retry goes out before requests
        # never sent yet, so one that failed early is not left to fail again at the very end.
        self.ready: asyncio.PriorityQueue[tuple[int, int, _Job]] = asyncio.PriorityQueue()
        self._seq = itertools.count()
        self.nonempty = asyncio.Event()
        self.results: list[Response | BackendError | None] = [None] * len(requests)
        self.remaining = len(requests)
        self.done = asyncio.Event()
        self.stopped: BudgetExceeded | None = None
        self.error: BaseException | None = None
        self.timers: set[asyncio.Task[None]] = set()
        self.parked: list[_Job] = []
        self.jobs = [_Job(request, i) for i, request in enumerate(requests)]
        for job in self.jobs:
            self.put(job)
        if not requests:
            self.done.set()

    def put(self, job: _Job) -> None:
        self.ready.put_nowait((0 if job.attempt else 1, next(self._seq), job))
        self.nonempty.set()

    async def wait_ready(self) -> None:
        """Until some job is ready, without taking it: an idle sender holds no window slot (a copy
        of a stalled send may need one)."""
        while self.ready.empty():
            self.nonempty.clear()
            await self.nonempty.wait()

    def take(self, n: int) -> list[_Job]:
        """Up to `n` jobs ready now, the most urgent first (none: another sender was quicker)."""
        jobs: list[_Job] = []
        while len(jobs) < n and not self.ready.empty():
            jobs.append(self.ready.get_nowait()[2])
        return jobs

    def finish(self, job: _Job, answer: Response | BackendError | None) -> None:
        self.results[job.index] = answer
        self.remaining -= 1
        if self.remaining == 0:
            self.done.set()

    def park(self, job: _Job, budget: Budget) -> None:
        """Hold back a job whose worst case does not fit yet; it is queued again as soon as some
        reservation settles (senders never block on the budget, so nothing can deadlock)."""
        self.parked.append(job)
        if len(self.parked) == 1:
            budget.changed().add_done_callback(lambda _: self._unpark())

    def _unpark(self) -> None:
        jobs, self.parked = self.parked, []
        for job in jobs:
            if self.stopped is not None:
                self.finish(job, None)
            else:
                self.put(job)

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.done.set()


class _GroupWriter:
    """Commits the answers that arrive in one event-loop tick in one cache transaction; each
    caller's future resolves only once its answer is durable (it is counted after that)."""

    def __init__(self, cache: RequestCache) -> None:
        self.cache = cache
        self.pending: list[tuple[Entry, asyncio.Future[None]]] = []
        self.commits = 0

    def put(self, entry: Entry) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if not self.pending:
            loop.call_soon(self._flush)
        self.pending.append((entry, future))
        return future

    def _flush(self) -> None:
        batch, self.pending = self.pending, []
        try:
            self.cache.put_many([entry for entry, _ in batch])
        except Exception as e:  # noqa: BLE001 - handed to every waiting caller
            for _, future in batch:
                future.set_exception(e)
            return
        self.commits += 1
        for _, future in batch:
            future.set_result(None)


def _outcome(task: "asyncio.Future[Any]") -> Any:
    """A finished task's result, or what it raised (as `gather(return_exceptions=True)` gives it)."""
    if task.cancelled():
        return asyncio.CancelledError()
    return task.exception() or task.result()


def _resolve(future: "asyncio.Future[None]") -> None:
    if not future.done():
        future.set_result(None)


@dataclass
class _Copy:
    """A paid answer that lost the race to its request's other send: its spend is counted (it was
    paid for, under the reservation its send held), its text is not kept."""

    job: _Job
    response: Response
    held: Reservation | None


class _Slot:
    """One send's place in the adaptive window, and its watch (`limits.Overdue`).

    Once the send is overdue it holds no slot (another send may start). Once it is stalled (see
    `_watch`) a copy of it is sent (a hedge, ahead of sends waiting for a slot) instead of waiting
    out the whole timeout, and a copy that stalls gets a copy of its own, up to `max_copies`. No
    send is cut off for being late, so one that is only slow loses nothing. The first send to
    answer wins and the others are cancelled; when the newest send fails first, its failure
    decides (the older ones are presumed lost). Given back when the send ends."""

    max_copies = 2

    def __init__(self, client: "Client") -> None:
        self.client = client
        self.held = True
        self.timers: list[asyncio.TimerHandle] = []
        self.released_early = False
        self.copies_held: list[list[Reservation | None]] = []  # each copy's budget holds, one per job

    @classmethod
    async def acquire(cls, client: "Client") -> "_Slot":
        await client.window.acquire()
        return cls(client)

    async def run(self, jobs: list[_Job]) -> tuple[list[Response | BackendError], list[_Copy]]:
        """The answers of one send of `jobs` (hedged when it stalls), and the losing copies' answers."""
        client, loop = self.client, asyncio.get_running_loop()
        stalled: asyncio.Future[None] = loop.create_future()
        sends = [asyncio.ensure_future(self._timed(jobs, stalled))]
        if client.watched and (overdue := client.overdue.overdue()) is not None:
            self.timers.append(loop.call_later(overdue, self._overdue))
        try:
            while True:
                waiting: list[asyncio.Future[Any]] = [*(s for s in sends if not s.done()), stalled]
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if sends[-1].done() or any(s.done() and all(isinstance(a, Response) for a in s.result()) for s in sends):
                    break  # an answer for every request, or the newest send's failure decides
                if stalled.done():  # the newest send stalled
                    stalled = loop.create_future()
                    if len(sends) <= self.max_copies and self._may_hedge(jobs):
                        sends.append(asyncio.ensure_future(self._hedge(jobs, stalled)))
            for send in sends:
                send.cancel()
            if all(send.done() for send in sends):  # the usual case: no loop turn spent on a gather
                return self._merge(jobs, [_outcome(send) for send in sends])
            return self._merge(jobs, await asyncio.gather(*sends, return_exceptions=True))
        finally:
            for send in sends:
                send.cancel()
            client.hedges_now -= len(self.copies_held)
            for held in self.copies_held:
                for hold in held:
                    client._release(hold)
            self.copies_held = []

    def _watch(self, stalled: "asyncio.Future[None]") -> list[asyncio.TimerHandle]:
        """Resolve `stalled` when the send starting now is stalled: once it is late and a send
        started a quarter of a latency after it has been answered (it was overtaken: the server is
        not just slow for everyone, as in a pause, a queue or a starved client, which delay later
        sends too), or once it is far past the usual latency (`Overdue.stalled`). Never past the
        backend's timeout: that ends the send anyway. The estimate is read afresh at each look (a
        latency that falls as a server queue drains shortens the wait of sends already out)."""
        loop, timers = asyncio.get_running_loop(), list[asyncio.TimerHandle]()
        t0, client = loop.time(), self.client
        if not client.watched:
            pass
        elif client.overdue.late() is not None:
            self._look(t0, stalled, timers)
        else:  # watched from the moment the estimate is ready (sends of the first window too)
            client.unwatched.append(lambda: self._look(t0, stalled, timers))
        return timers

    def _look(self, t0: float, stalled: "asyncio.Future[None]", timers: list[asyncio.TimerHandle]) -> None:
        client, loop = self.client, asyncio.get_running_loop()
        if stalled.done():
            return
        watch, timeout, elapsed = client.overdue, client.backend_timeout, loop.time() - t0
        late, far = cast(float, watch.late()), watch.stalled(timeout)
        overtaken = client.answered_start >= t0 + watch.srtt / 4
        if far is not None and elapsed >= far or elapsed >= late and overtaken:
            client.overtaken_sends += far is None or elapsed < far
            _resolve(stalled)
            return
        # look again at the next threshold, or in an eighth of a latency to see it overtaken, and
        # at least once a latency (the estimate moves)
        wait = min(late - elapsed if elapsed < late else watch.srtt / 8, far - elapsed if far is not None else math.inf, watch.srtt)
        wait = max(0.001, wait)
        if timeout is None or elapsed + wait < timeout:
            timers.append(loop.call_later(wait, self._look, t0, stalled, timers))

    async def _timed(self, jobs: list[_Job], stalled: "asyncio.Future[None]") -> list[Response | BackendError]:
        """One `generate` call, watched; its latency teaches the estimate when it brought answers
        (failures do not: a 429 comes back at once, a hang not at all)."""
        client, loop = self.client, asyncio.get_running_loop()
        t0, timers = loop.time(), self._watch(stalled)
        try:
            answers = await client._generate([job.request for job in jobs])
        finally:
            for timer in timers:
                timer.cancel()
        if any(isinstance(a, Response) for a in answers):
            client.overdue.observe(loop.time() - t0)
            client.answered_start = max(client.answered_start, t0)
            if client.unwatched and client.overdue.late() is not None:
                waiting, client.unwatched = client.unwatched, []
                for look in waiting:
                    look()
        return answers

    def _may_hedge(self, jobs: list[_Job]) -> bool:
        """A copy is sent unless many are out at once (a quarter of the window: then the server is
        slow, a queue, and copies would only lengthen it) or the budget has no room for a second
        worst case per request. (At an eighth, some hung sends of the fault bench at 64 in flight
        found it full and waited out their timeout.)"""
        client = self.client
        client.stalled_sends += 1
        if client.hedges_now >= max(1, client.window.limit // 4):
            return False
        held = client._reserve_copies(jobs)
        if held is None:
            return False
        self.copies_held.append(held)
        client.hedges_now += 1
        return True

    async def _hedge(self, jobs: list[_Job], stalled: "asyncio.Future[None]") -> list[Response | BackendError]:
        client = self.client
        if not self.held:  # the original gave its slot back when overdue: the copy takes one first
            await client.window.acquire(first=True)
            self.held = True
        await client._pace(jobs, book=False)
        client.hedged_sends += 1
        client.usage.requests += len(jobs)
        return await self._timed(jobs, stalled)

    def _merge(self, jobs: list[_Job], outcomes: list[object]) -> tuple[list[Response | BackendError], list[_Copy]]:
        """Per request: the oldest send's answer; with none, the newest failure (the fresher: its
        Retry-After, say). Each further answer is a `_Copy` (paid for, not kept)."""
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, asyncio.CancelledError):
                raise outcome
        ended = [cast(list[Response | BackendError], o) for o in outcomes if isinstance(o, list)]
        original = ended[0] if isinstance(outcomes[0], list) else None
        answers: list[Response | BackendError] = []
        losers: list[_Copy] = []
        for i, job in enumerate(jobs):
            mine = [each[i] for each in ended]
            found = [a for a in mine if isinstance(a, Response)]
            answers.append(found[0] if found else mine[-1])
            self.client.hedge_wins += bool(found) and (original is None or not isinstance(original[i], Response))
            losers += [_Copy(job, extra, self._hold_of(i)) for extra in found[1:]]
        return answers, losers

    def _hold_of(self, i: int) -> Reservation | None:
        """A copy's budget hold for job `i` (they are alike), handed to a second answer to settle."""
        for held in self.copies_held:
            if held[i] is not None:
                hold, held[i] = held[i], None
                return hold
        return None

    def _overdue(self) -> None:
        """Give the slot back, unless many sends are overdue at once: then the server is slow
        (a queue), not one connection stalled, and more sends would only lengthen its queue."""
        client = self.client
        if client.overdue_now >= max(1, client.window.limit // 8):
            return
        client.overdue_sends += 1
        client.overdue_now += 1
        self.released_early = True
        self._give_back()

    def release(self) -> None:
        """The send ended: stop its watch and give its slot back (if not already)."""
        for timer in self.timers:
            timer.cancel()
        self.timers = []
        if self.released_early:
            self.released_early = False
            self.client.overdue_now -= 1
        self._give_back()

    def _give_back(self) -> None:
        if self.held:
            self.held = False
            self.client.window.release()


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
        tokens_per_minute: float | None = None,
        price_prompt_per_1m: float | None = 0.0,
        price_completion_per_1m: float | None = 0.0,
        budget: Budget | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        adaptive: bool = True,
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
        self._check_prices_for(budget)
        # A send is one `generate` call of up to `_chunk` requests; sends x chunk <= concurrency.
        self._chunk = max(1, min(backend.batch_size, concurrency))
        self._senders = max(1, concurrency // self._chunk)
        self.window = AdaptiveWindow(self._senders, per_send=self._chunk, threshold=0.25 if adaptive else 1.0)
        self._rpm = Pacer(requests_per_minute) if requests_per_minute else None
        self._tpm = Pacer(tokens_per_minute) if tokens_per_minute else None
        self._rng = random.Random()
        self._writer = _GroupWriter(cache) if cache is not None else None
        self._own_prompts = PromptEstimator()
        # A whole window of answers before the watch trusts its estimate: the first answers of a
        # full window came before the server queue filled, and would make every later send look late.
        self.overdue = Overdue(warmup=max(16, concurrency))
        self.overdue_sends = 0  # sends whose slot was given back early (the bench reads these)
        self.overdue_now = 0  # of those, still waiting (at most window.limit // 8 at once)
        self.stalled_sends = 0  # sends found stalled (a copy is sent unless too many are out)
        self.hedged_sends = 0  # copies sent of stalled sends
        self.hedge_wins = 0  # requests answered by a copy
        self.hedges_now = 0  # copies on their way (at most window.limit // 4)
        self.overtaken_sends = 0  # of the stalled sends, those found so by being overtaken
        self.answered_start = 0.0  # when the latest-started send that brought an answer started
        self.unwatched: list[Callable[[], None]] = []  # watches of sends started before the estimate was ready
        # A backend whose sends cannot stall (a local model: computed here, in a thread that cannot
        # be cancelled) is not watched: a late batch is long, and a copy would only run after it.
        self.watched = bool(getattr(backend, "can_stall", True))

    def _check_prices_for(self, budget: Budget | None) -> None:
        if budget is not None and budget.max_cost_usd is not None and not self.prices_known:
            raise RecipeError(
                f"budget.max_cost_usd needs the price of model {self.backend.model!r}, which is unknown: set price_prompt_per_1m "
                "and price_completion_per_1m in its [teacher] / [judge.backend] section, or cap budget.max_tokens instead"
            )

    @property
    def backend_timeout(self) -> float | None:
        """The backend's own timeout per request, when it has one (a stall is cut well before it)."""
        timeout = getattr(self.backend, "timeout_s", None)
        return float(timeout) if timeout is not None else None

    # -- accounting -------------------------------------------------------------------------
    @property
    def _prompts(self) -> PromptEstimator:
        """The budget's estimator when there is a budget (shared with the judge), else our own."""
        return self.budget.prompts if self.budget is not None else self._own_prompts

    @property
    def prices_known(self) -> bool:
        return self.price_prompt_per_1m is not None and self.price_completion_per_1m is not None

    def cost(self, response: Response) -> float:
        """New money this response cost, in USD (0 for a cached answer, and 0 when the prices are
        unknown: check `prices_known`, or `price` which says None)."""
        price = self.price(response)
        return 0.0 if price is None else price

    def price(self, response: Response) -> float | None:
        """New money this response cost, in USD; None when the model's price is unknown."""
        if response.cached:
            return 0.0
        return self._cost_of(response.prompt_tokens, response.completion_tokens)

    def _cost_of(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        if self.price_prompt_per_1m is None or self.price_completion_per_1m is None:
            return None
        return (prompt_tokens * self.price_prompt_per_1m + completion_tokens * self.price_completion_per_1m) / 1e6

    def worst_case(self, request: Request) -> tuple[int, float]:
        """(tokens, USD) this request can cost at most: what the budget reserves before sending it."""
        prompt = self._prompts.tokens(self.backend.model, request)
        return prompt + request.max_tokens, self._cost_of(prompt, request.max_tokens) or 0.0

    async def _account(self, job: _Job, response: Response) -> None:
        """Make the answer durable (answer and spend in one transaction), then count it."""
        cost = self.price(response)
        if self._writer is not None:
            await self._writer.put(Entry(job.request.cache_key(), response, cost))
        tokens = response.prompt_tokens + response.completion_tokens
        self._prompts.observe(self.backend.model, job.request, response.prompt_tokens)
        self.usage.prompt_tokens += response.prompt_tokens
        self.usage.completion_tokens += response.completion_tokens
        self.usage.cost_usd += cost or 0.0
        if self.budget is not None and job.held is not None:
            self.budget.settle(job.held, tokens, cost or 0.0)
            job.held = None
        if self._tpm is not None:
            self._tpm.refund(max(0, job.booked_tokens - tokens))

    async def _account_copy(self, copy: _Copy) -> None:
        """A second answer to a request already answered (a hedge and its original both came back):
        paid for, so its spend is counted and written to the ledger; its text is not kept."""
        response = copy.response
        cost = self.price(response)
        if self._writer is not None:
            await self._writer.put(Entry(copy.job.request.cache_key(), response, cost, store=False))
        tokens = response.prompt_tokens + response.completion_tokens
        self.usage.prompt_tokens += response.prompt_tokens
        self.usage.completion_tokens += response.completion_tokens
        self.usage.cost_usd += cost or 0.0
        if self.budget is not None and copy.held is not None:
            self.budget.settle(copy.held, tokens, cost or 0.0)
        if self._tpm is not None:  # the copy booked its worst case with the pacer (`_hedge`): down to the real count
            self._tpm.refund(max(0, self.worst_case(copy.job.request)[0] - tokens))

    def _reserve_copies(self, jobs: list[_Job]) -> list[Reservation | None] | None:
        """A second worst case per job, for a copy of their send; None when the budget has no room."""
        if self.budget is None:
            return [None] * len(jobs)
        held: list[Reservation | None] = []
        try:
            for job in jobs:
                held.append(self.budget.reserve(*self.worst_case(job.request)))
        except BudgetExceeded:
            for h in held:
                self._release(h)
            return None
        return held

    def _release(self, held: Reservation | None) -> None:
        if held is not None and self.budget is not None:
            self.budget.release(held)

    # -- complete ---------------------------------------------------------------------------
    async def complete(self, requests: list[Request]) -> list[Response | BackendError]:
        """One answer (or the `BackendError` that ended its retries) per request, in order.

        Raises `BudgetExceeded` only when new requests would have to be sent past the budget;
        everything answered before that is already in the cache."""
        results: list[Response | BackendError | None] = [None] * len(requests)
        keys = [request.cache_key() for request in requests]
        hits = self.cache.get_many(keys) if self.cache is not None else {}
        misses: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            if key in hits:
                results[i] = hits[key]
                self.usage.cached_requests += 1
            else:
                misses.setdefault(key, []).append(i)
        if misses:
            answers = await self._send_all([requests[idx[0]] for idx in misses.values()])
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
        """A fixed pool of senders drains one queue: as many tasks as sends in flight, not one
        per request; a retry waits on its own timer, holding no slot, so nothing else pauses."""
        run = _Run(requests)
        # Twice the window's sends: a sender waiting out a stalled request holds no window slot,
        # and another sender takes its place (`_Slot`).
        senders = [asyncio.create_task(self._sender(run)) for _ in range(min(2 * self._senders, len(requests)))]
        try:
            await run.done.wait()
        finally:
            for task in [*senders, *run.timers]:
                task.cancel()
            await asyncio.gather(*senders, *run.timers, return_exceptions=True)
            self._release_all(run)
        if run.error is not None:
            raise run.error
        if run.stopped is not None:
            raise run.stopped
        return cast(list[Response | BackendError], run.results)

    def _release_all(self, run: _Run) -> None:
        """A call that ends early (an error, a cancel) gives back what its unanswered jobs held."""
        for job in run.jobs:
            if job.held is not None and self.budget is not None:
                self.budget.release(job.held)
                job.held = None

    async def _sender(self, run: _Run) -> None:
        """Once a job is ready, takes a slot in the window, then the most urgent ready jobs
        (retries first)."""
        try:
            while True:
                await run.wait_ready()
                slot = await _Slot.acquire(self)
                try:
                    jobs = [job for job in run.take(self._chunk) if self._admit(run, job)]
                except BaseException:
                    slot.release()
                    raise
                if jobs:
                    await self._send(run, jobs, slot)
                else:
                    slot.release()
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # noqa: BLE001 - ends the whole call with it, never hangs it
            run.fail(e)

    def _admit(self, run: _Run, job: _Job) -> bool:
        """Reserve the job's worst case (once: retries keep it). When it does not fit, park it
        until requests in flight settle; with none left holding anything, stop at the cap."""
        if job.held is not None or self.budget is None:
            return True
        if run.stopped is not None:
            run.finish(job, None)
            return False
        tokens, cost = self.worst_case(job.request)
        try:
            job.held = self.budget.reserve(tokens, cost)
            return True
        except BudgetExceeded as e:
            if self.budget.holds > 0:
                run.park(job, self.budget)
                return False
            run.stopped = e
            self.budget.wake()  # parked jobs of this and other calls see the stop
            run.finish(job, None)
            return False

    async def _send(self, run: _Run, jobs: list[_Job], slot: "_Slot") -> None:
        """One `generate` call inside the adaptive window, then each answer handled on its own."""
        try:
            await self._pace(jobs)
            answers, copies = await slot.run(jobs)
        finally:
            slot.release()
        self.usage.requests += len(jobs)
        for copy in copies:
            await self._account_copy(copy)
        for job, answer in zip(jobs, answers):
            self.window.record(isinstance(answer, (RateLimited, BackendTimeout)))
            if isinstance(answer, Response):
                await self._account(job, answer)
                run.finish(job, answer)
            elif answer.retryable and job.attempt < self.max_retries:
                self._retry_later(run, job, answer)
            else:
                self._give_up(run, job, answer)

    async def _pace(self, jobs: list[_Job], *, book: bool = True) -> None:
        """Client-side requests-per-minute and tokens-per-minute limits (`book`: remember each
        job's booked tokens, refunded down to the real count by its answer)."""
        delay = self._rpm.delay(len(jobs)) if self._rpm is not None else 0.0
        if self._tpm is not None:
            booked = [self.worst_case(job.request)[0] for job in jobs]
            if book:
                for job, tokens in zip(jobs, booked):
                    job.booked_tokens = tokens
            delay = max(delay, self._tpm.delay(sum(booked)))
        if delay > 0:
            await _sleep(delay)

    def _give_up(self, run: _Run, job: _Job, error: BackendError) -> None:
        if self.budget is not None and job.held is not None:
            self.budget.release(job.held)
            job.held = None
        if self._tpm is not None:
            self._tpm.refund(job.booked_tokens)
        run.finish(job, error)

    def _retry_later(self, run: _Run, job: _Job, error: BackendError) -> None:
        """Back off this request alone (its Retry-After, or jitter), then queue it again; a failure
        that says nothing about load goes back in the queue at once."""
        delay = self._backoff_delay(job, error)
        log.info("request failed (%s: %s); retry %d/%d in %.2f s", type(error).__name__, error, job.attempt + 1, self.max_retries, delay)
        job.attempt += 1
        if delay <= 0:
            run.put(job)
            return

        async def later() -> None:
            await _sleep(delay)
            run.put(job)

        timer = asyncio.create_task(later())
        run.timers.add(timer)
        timer.add_done_callback(run.timers.discard)

    def _backoff_delay(self, job: _Job, error: BackendError) -> float:
        """How long this request waits before it is sent again, by what the failure says:

        - a refusal (429, 5xx, connection refused: the server is busy or down): full jitter,
          uniform(0, min(max, base * 2^n)) with n = the refusals this request had before, and
          never less than a Retry-After (a floor, honoured exactly when it is the larger);
        - an unusable body (malformed, truncated, no choices) or a timeout: none. The server did not refuse it; a timeout has already waited longer
          than any backoff. Overload is the adaptive window's business (it counts timeouts)."""
        if isinstance(error, (BackendTimeout, BadResponse)) and retry_after(error) is None:
            return 0.0
        delay = self._rng.uniform(0.0, min(self.backoff_max, self.backoff_base * 2**job.refusals))
        job.refusals += 1
        hint = retry_after(error)
        return max(delay, hint) if hint is not None else delay

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
