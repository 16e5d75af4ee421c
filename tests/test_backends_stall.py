"""A stalled request: once past its usual latency it holds no window slot (others go on), and once
stalled it is cut off and sent again at once, at most once per request. Plus the adaptive limits'
pieces not covered in test_backends_limits.py: a Retry-After given as an HTTP date, and the
tokens-per-minute pacer giving back an over-estimate."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections import Counter

from synthloop.backends import Client, Request, Response
from synthloop.backends.limits import Overdue, Pacer
from synthloop.backends.openai_compat import _parse_retry_after
from synthloop.errors import BackendError


def req(text: str) -> Request:
    return Request.chat([{"role": "user", "content": text}], model="m")


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


def test_a_hung_request_is_cut_off_and_sent_again_without_holding_up_the_others() -> None:
    backend = Hangs({"q30"}, hang_s=600.0)  # were it waited out, this test would take 10 minutes
    client = Client(backend, concurrency=2)
    answers = asyncio.run(client.complete([req(f"q{i}") for i in range(60)]))
    assert all(isinstance(a, Response) for a in answers)
    assert backend.sent["q30"] == 2 and sum(backend.sent.values()) == 61  # only the hung one twice
    assert client.stalled_sends == 1 and client.overdue_sends >= 1


def test_a_request_that_is_only_slow_is_cut_at_most_once() -> None:
    backend = Hangs({"q20"}, hang_s=0.5, times=5)  # every attempt is slow
    client = Client(backend, concurrency=2)
    answers = asyncio.run(client.complete([req(f"q{i}") for i in range(30)]))
    assert all(isinstance(a, Response) for a in answers)
    assert backend.sent["q20"] == 2 and client.stalled_sends == 1  # the second attempt waited it out


def test_overdue_waits_for_enough_answers_and_never_cuts_near_the_timeout() -> None:
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
