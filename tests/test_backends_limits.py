"""Hard budgets, unknown prices, the spend ledger, AIMD, rate limits and per-request Retry-After."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from synthloop.backends import Budget, Client, FakeBackend, Request, RequestCache, Response, make_client, with_retry_after
from synthloop.backends.limits import AdaptiveWindow, PromptEstimator, prompt_token_bound, worst_case_tokens
from synthloop.backends.openai_compat import OpenAICompatBackend
from synthloop.errors import BackendError, BudgetExceeded, RateLimited, RecipeError
from synthloop.recipe import BackendConfig
from synthloop.testing import OpenAIStub


def req(text: str, **kw: object) -> Request:
    return Request.chat([{"role": "user", "content": text}], model="fake", **kw)  # type: ignore[arg-type]


def run(client: Client, requests: list[Request]) -> list[Response | BackendError]:
    return asyncio.run(client.complete(requests))


class Watched(Budget):
    """A budget that remembers the most it ever had spent (checked after every settle)."""

    peak_spent_usd: float = 0.0

    def settle(self, held: object, tokens: int, cost_usd: float) -> None:
        super().settle(held, tokens, cost_usd)  # type: ignore[arg-type]
        self.peak_spent_usd = max(self.peak_spent_usd, self.spent_cost_usd)


def test_cost_cap_is_never_crossed_at_64_in_flight(tmp_path: Path) -> None:
    """64 senders, a cap with room for ~10 worst cases, answers that cost nearly their worst case."""
    requests = [req(f"question number {i}", max_tokens=40) for i in range(200)]
    fake = FakeBackend(lambda r: " ".join(["word"] * 40), batch_size=1, latency_s=0.005)
    client = Client(fake, concurrency=64, price_prompt_per_1m=1.0, price_completion_per_1m=2.0, cache=RequestCache(tmp_path / "c.sqlite"))
    worst_usd = client.worst_case(requests[0])[1]
    budget = Watched(max_cost_usd=10.5 * worst_usd)
    client.budget = budget
    with pytest.raises(BudgetExceeded, match="max_cost_usd"):
        run(client, requests)
    assert budget.peak_spent_usd <= budget.max_cost_usd  # type: ignore[operator]
    assert fake.batches[:10] == [1] * 10 and fake.peak_in_flight <= 10  # the cap bounded what was in flight, not the 64 senders
    actual_usd = (3 * 1.0 + 40 * 2.0) / 1e6  # 3 prompt words, 40 answer words
    calibrated_usd = client.worst_case(requests[-1])[1]  # after the first answer: the prompt estimate shrinks
    assert actual_usd < calibrated_usd < worst_usd
    # It used all the room it had: the last request sent was the last whose worst case still fit.
    assert len(fake.calls) == int((budget.max_cost_usd - calibrated_usd) // actual_usd) + 1  # type: ignore[operator]
    assert budget.reserved_tokens == 0 and budget.holds == 0  # nothing left held
    spent = client.cache.spent()  # type: ignore[union-attr]
    assert spent.answers == len(fake.calls) == len(client.cache)  # type: ignore[arg-type]
    assert spent.cost_usd == pytest.approx(budget.spent_cost_usd)


def test_prompt_estimate_is_the_byte_bound_until_calibrated() -> None:
    estimator = PromptEstimator(margin=1.5)
    request = req("x" * 96)  # bound: 4 + 96 + 4 + 3 = 107
    assert estimator.tokens("m", request) == 107
    estimator.observe("m", request, prompt_tokens=30)
    assert estimator.tokens("m", request) == math.ceil(107 * (30 / 107) * 1.5)  # 45
    assert estimator.tokens("other-model", request) == 107  # each model calibrates on its own answers


def test_token_cap_counts_the_worst_case_before_sending() -> None:
    request = req("hello there", max_tokens=50)
    assert prompt_token_bound(request) == len("user") + len("hello there") + 4 + 3
    fake = FakeBackend(batch_size=1)
    with pytest.raises(BudgetExceeded, match=r"max_tokens = 60.*could use up to 72"):
        run(Client(fake, budget=Budget(max_tokens=60)), [request])
    assert fake.calls == []  # refused before sending: 72 > 60 even though the answer would be small


def test_budget_is_shared_and_resumes_from_the_ledger(tmp_path: Path) -> None:
    cache_path = tmp_path / "c.sqlite"
    first = Client(FakeBackend(lambda r: "one two"), cache=RequestCache(cache_path), price_prompt_per_1m=1.0, price_completion_per_1m=1.0)
    run(first, [req(f"q {i}") for i in range(3)] + [req("q 0")])  # the duplicate is not paid twice
    first.cache.close()  # type: ignore[union-attr]
    spent = RequestCache(cache_path).spent()
    assert spent.answers == 3 and spent.tokens == 3 * (2 + 2)
    assert spent.cost_usd == pytest.approx(3 * 4 / 1e6)
    resumed = Budget(max_tokens=1000, spent_tokens=spent.tokens, spent_cost_usd=spent.cost_usd or 0.0)
    assert resumed.spent_tokens == 12


def test_unknown_price_is_unknown_never_zero(tmp_path: Path) -> None:
    cfg = BackendConfig(backend="openai_compat", base_url="http://127.0.0.1:9/v1", model="gpt-x")
    assert cfg.prices() is None and BackendConfig(backend="fake").prices() == (0.0, 0.0)
    with pytest.raises(RecipeError, match=r"budget.max_cost_usd needs the price of model 'gpt-x'.*price_prompt_per_1m"):
        make_client(cfg, budget=Budget(max_cost_usd=1.0))
    with pytest.raises(ValueError, match="set both price_prompt_per_1m and price_completion_per_1m"):
        BackendConfig(backend="fake", price_prompt_per_1m=1.0)
    client = make_client(cfg, cache_path=tmp_path / "c.sqlite", backend=FakeBackend(), budget=Budget(max_tokens=10_000))
    [answer] = run(client, [req("a")])
    assert isinstance(answer, Response) and client.price(answer) is None and not client.prices_known
    assert client.cache.spent().cost_usd is None  # type: ignore[union-attr]


def test_answers_of_one_tick_share_one_transaction(tmp_path: Path) -> None:
    client = Client(FakeBackend(batch_size=1), concurrency=16, cache=RequestCache(tmp_path / "c.sqlite"))
    run(client, [req(f"q{i}") for i in range(64)])
    assert len(client.cache) == 64 and client.cache.spent().answers == 64  # type: ignore[union-attr, arg-type]
    assert client._writer is not None and client._writer.commits < 64


def test_adaptive_window_halves_on_congestion_and_climbs_back() -> None:
    window = AdaptiveWindow(16)
    for _ in range(16):
        window.record(congested=True)
    assert window.limit == 8
    for _ in range(8):
        window.record(congested=False)
    assert window.limit == 9
    for _ in range(200):
        window.record(congested=False)
    assert window.limit == 16 and window.low == 8
    for i in range(16):  # scattered 429s (one in eight) do not shrink it
        window.record(congested=i % 8 == 0)
    assert window.limit == 16


def test_a_copy_of_a_stalled_send_waits_for_a_slot_ahead_of_the_others() -> None:
    async def scenario() -> list[str]:
        window, order = AdaptiveWindow(1), []
        await window.acquire()  # the one slot is busy

        async def wait(name: str, first: bool = False) -> None:
            await window.acquire(first=first)
            order.append(name)
            window.release()

        tasks = [asyncio.create_task(wait("new 1")), asyncio.create_task(wait("new 2"))]
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(wait("copy", first=True)))
        await asyncio.sleep(0)
        window.release()
        await asyncio.gather(*tasks)
        return order

    assert asyncio.run(scenario()) == ["copy", "new 1", "new 2"]


def test_client_backs_off_to_a_servers_concurrency_limit() -> None:
    with OpenAIStub(max_in_flight=8, limit_retry_after=0.01, latency_s=0.02) as stub:
        backend = OpenAICompatBackend(stub.base_url, "m", max_connections=64)
        client = Client(backend, concurrency=64, max_retries=20, backoff_base=0.01)
        answers = client.complete_sync([req(f"q{i}") for i in range(300)])
        assert all(isinstance(a, Response) for a in answers)
        assert client.window.low <= 16  # it found the server's limit
        assert stub.limited < 300  # fewer refusals than requests: it stopped hammering


def test_retry_after_holds_back_only_its_own_request() -> None:
    def responder(r: Request) -> str | BackendError:
        return "ok"

    script: list[str | BackendError] = [with_retry_after(RateLimited("429"), 0.3)]
    fake = FakeBackend(responder, script=script, batch_size=1, latency_s=0.01)
    out = run(Client(fake, concurrency=2), [req("first")] + [req(f"other {i}") for i in range(10)])
    assert all(isinstance(o, Response) for o in out)
    sent = [r.messages[0][1] for r in fake.calls]
    assert sent[0] == "first" and sent[-1] == "first"  # everything else went while it waited


def test_tokens_per_minute_spaces_sends(backoff_sleeps: list[float]) -> None:
    requests = [req(f"q{i}", max_tokens=10) for i in range(3)]
    per_request = worst_case_tokens(requests[0])
    client = Client(FakeBackend(batch_size=1), concurrency=1, tokens_per_minute=per_request * 60, adaptive=False)
    run(client, requests)
    assert len(backoff_sleeps) == 2 and all(0 < d <= 1.0 for d in backoff_sleeps)  # ~1 s each, less the refunds


def test_a_tight_budget_never_deadlocks_a_batch_backend_with_retries() -> None:
    """One sender holding a batch, a retry holding its reservation: parked jobs must still go out."""
    script: list[str | BackendError] = [RateLimited("429")]
    fake = FakeBackend(lambda r: "a b c", script=script, batch_size=8)
    requests = [req(f"q{i}", max_tokens=8) for i in range(20)]
    budget = Budget(max_tokens=int(1.5 * worst_case_tokens(requests[0])) + 20)  # room for ~8 real answers of 20
    client = Client(fake, concurrency=8, budget=budget, backoff_base=0.001)

    async def bounded() -> list[Response | BackendError]:
        return await asyncio.wait_for(client.complete(requests), timeout=20)

    with pytest.raises(BudgetExceeded):
        asyncio.run(bounded())
    assert budget.spent_tokens <= budget.max_tokens and budget.holds == 0  # type: ignore[operator]
    assert len(fake.calls) > 2  # the first (uncalibrated) answer made room for more
