"""A stalled request: once past its usual latency it holds no window slot (others go on), and once
stalled a copy of it is sent (a hedge); the first answer wins, the other send is cancelled, and
nothing is stored or counted twice. Plus the adaptive limits' pieces not covered in
test_backends_limits.py: a Retry-After given as an HTTP date, and the tokens-per-minute pacer
giving back an over-estimate."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections import Counter
from pathlib import Path

import pytest

from synthloop.backends import Budget, Client, Request, RequestCache, Response, with_retry_after
from synthloop.backends.limits import Overdue, Pacer
from synthloop.backends.openai_compat import _parse_retry_after
from synthloop.errors import BackendError, RateLimited


def req(text: str, **kw: object) -> Request:
    return Request.chat([{"role": "user", "content": text}], model="m", **kw)  # type: ignore[arg-type]


class Hangs:
    """Answers in 10 ms, except the prompts in `hang`: their first `times` attempts take `hang_s`."""

    name, model, batch_size, timeout_s = "hangs", "m", 1, 30.0

    def __init__(self, hang: set[str], hang_s: float, times: int = 1) -> None:
        self.hang, self.hang_s, self.times = hang, hang_s, times
        self.sent: Counter[str] = Counter()

    async def generate(self, requests: list[Request]) -> list[Response | BackendError]:
        prompt = requests[0].messages[-1][1]
        self.sent[prompt] += 1
        slow = prompt in self.hang and self.sent[prompt] <= self.times
        await asyncio.sleep(self.hang_s if slow else 0.01)
        return [Response(text=f"answer {prompt}", completion_tokens=2)]

    async def aclose(self) -> None:
        pass


def test_a_hung_request_gets_a_copy_without_holding_up_the_others() -> None:
    backend = Hangs({"q30"}, hang_s=600.0)  # were it waited out, this test would take 10 minutes
    client = Client(backend, concurrency=2)
    answers = asyncio.run(client.complete([req(f"q{i}") for i in range(60)]))
    assert all(isinstance(a, Response) for a in answers)
    assert backend.sent["q30"] == 2 and sum(backend.sent.values()) == 61  # only the hung one twice
    assert client.hedged_sends == 1 and client.hedge_wins == 1 and client.overdue_sends >= 1
    assert client.usage.requests == 61


def test_a_request_that_is_only_slow_keeps_its_own_answer() -> None:
    backend = Hangs({"q20"}, hang_s=0.5, times=5)  # every attempt is slow: the copy too
    client = Client(backend, concurrency=2)
    answers = asyncio.run(client.complete([req(f"q{i}") for i in range(30)]))
    assert all(isinstance(a, Response) for a in answers)
    assert backend.sent["q20"] == 2 and client.hedged_sends == 1  # one copy (at most 2 // 8 -> 1 out at once)
    assert client.hedge_wins == 0  # the original, started first, answered first: the copy was cancelled


def test_a_backend_whose_sends_cannot_stall_gets_no_copies() -> None:
    class Local(Hangs):
        can_stall = False  # as LocalBackend: a late batch is long, not stalled

    backend = Local({"q20"}, hang_s=0.3)
    client = Client(backend, concurrency=2)
    answers = asyncio.run(client.complete([req(f"q{i}") for i in range(30)]))
    assert all(isinstance(a, Response) for a in answers)
    assert backend.sent["q20"] == 1 and client.stalled_sends == client.hedged_sends == client.overdue_sends == 0


class Twins(Hangs):
    """`q20`'s first send waits until its copy arrives; then both answer in the same tick."""

    def __init__(self) -> None:
        super().__init__(set(), 0.0)
        self.both = asyncio.Event()

    async def generate(self, requests: list[Request]) -> list[Response | BackendError]:
        prompt = requests[0].messages[-1][1]
        self.sent[prompt] += 1
        if prompt != "q20":
            await asyncio.sleep(0.01)
            return [Response(text=f"answer {prompt}", prompt_tokens=3, completion_tokens=2)]
        send = self.sent[prompt]
        if send == 2:
            self.both.set()
        await self.both.wait()
        return [Response(text=f"answer {prompt} from send {send}", prompt_tokens=3, completion_tokens=2)]


def test_a_hedged_request_is_stored_once_and_each_paid_answer_counted_once(tmp_path: Path) -> None:
    cache = RequestCache(tmp_path / "c.sqlite")
    budget = Budget(max_tokens=10_000)
    backend = Twins()
    client = Client(backend, concurrency=2, cache=cache, budget=budget, price_prompt_per_1m=1.0, price_completion_per_1m=2.0)
    answers = asyncio.run(client.complete([req(f"q{i}") for i in range(30)]))
    assert all(isinstance(a, Response) for a in answers) and backend.sent["q20"] == 2
    assert answers[20].text == "answer q20 from send 1"  # both answered at once: the original's is kept
    assert len(cache) == 30 and cache.get(req("q20").cache_key()).text == answers[20].text  # type: ignore[union-attr]
    # Both sends of q20 answered, so both were paid: 31 answers in the ledger, usage and budget alike
    assert cache.spent().answers == 31 and cache.spent().tokens == 31 * 5
    assert client.usage.prompt_tokens + client.usage.completion_tokens == 31 * 5 == budget.spent_tokens
    assert client.usage.cost_usd == pytest.approx(31 * (3 * 1.0 + 2 * 2.0) / 1e6)
    assert budget.holds == 0 and budget.reserved_tokens == 0


def test_both_paid_answers_of_a_hedged_request_leave_their_real_tokens_booked_with_the_pacer(backoff_sleeps: list[float]) -> None:
    """Tokens per minute: each send books its worst case, and each answer gives back what it did not
    use, the copy's answer too, so the pacer is left holding the 31 answers' real tokens."""
    client = Client(Twins(), concurrency=2, tokens_per_minute=60)  # a token a second: bookings run ahead of now
    pacer = client._tpm
    assert pacer is not None
    start = time.monotonic()
    asyncio.run(client.complete([req(f"q{i}") for i in range(30)]))
    assert client.hedged_sends == 1
    assert sum(backoff_sleeps) > 0  # the pacer spaced the sends (recorded, not slept)
    booked_s = pacer.next_at - start
    assert 31 * 5 - 1 <= booked_s <= 31 * 5 + (time.monotonic() - start) + 1, booked_s


def test_a_copy_that_is_refused_waits_its_retry_after(backoff_sleeps: list[float]) -> None:
    class RefusedCopy(Hangs):
        async def generate(self, requests: list[Request]) -> list[Response | BackendError]:
            prompt = requests[0].messages[-1][1]
            if prompt == "q20" and self.sent[prompt] == 1:  # the copy of the hung first send
                self.sent[prompt] += 1
                return [with_retry_after(RateLimited("429"), 0.7)]
            return await super().generate(requests)

    backend = RefusedCopy({"q20"}, hang_s=600.0)
    client = Client(backend, concurrency=2)
    answers = asyncio.run(client.complete([req(f"q{i}") for i in range(30)]))
    assert all(isinstance(a, Response) for a in answers)
    assert backend.sent["q20"] == 3  # the hung send, its refused copy, then the retry
    assert backoff_sleeps == [0.7]  # the copy's refusal decided (the hung send was cancelled): its Retry-After was waited


def test_no_copy_without_room_in_the_budget() -> None:
    requests = [req(f"q{i}", max_tokens=10) for i in range(30)]
    backend = Hangs({"q29"}, hang_s=0.3)
    # room for every answer (2 tokens each) and for the worst case (10) of two in flight, not for a third
    budget = Budget(max_tokens=30 * 2 + 10 + 5)
    client = Client(backend, concurrency=2, budget=budget)
    answers = asyncio.run(client.complete(requests))
    assert all(isinstance(a, Response) for a in answers)
    assert client.stalled_sends >= 1 and client.hedged_sends == 0 and backend.sent["q29"] == 1  # it waited for the original
    assert budget.spent_tokens == 60 and budget.holds == 0


def test_overdue_waits_for_enough_answers_and_never_calls_a_send_stalled_near_the_timeout() -> None:
    watch = Overdue(warmup=4)
    assert watch.overdue() is None and watch.stalled(10.0) is None
    for _ in range(8):
        watch.observe(0.2)
    assert 0.2 < watch.overdue() < watch.stalled(10.0) < 1.0  # type: ignore[operator]
    assert watch.stalled(0.5) is None  # 3 x 0.2 s is not well under a 0.5 s timeout: the timeout decides


def test_retry_after_as_an_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (_parse_retry_after(when) or 0) <= 31
    assert _parse_retry_after("2.5") == 2.5 and _parse_retry_after("soon") is None


def test_tokens_per_minute_pacer_gives_back_an_over_estimate() -> None:
    pacer = Pacer(per_minute=60)  # one unit a second
    assert pacer.delay(10) == 0.0  # the first send goes at once and books 10 s
    pacer.refund(10)  # it used nothing of what it booked
    assert pacer.delay(1) < 0.05
    assert 0.9 < pacer.delay(1) <= 1.0  # the booking after that waits its share
