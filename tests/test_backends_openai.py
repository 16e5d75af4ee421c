"""OpenAICompatBackend over real HTTP against the public stub server (127.0.0.1, ephemeral port)."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import httpx
import pytest

from synthloop.backends import Client, Request, RequestCache, Response
from synthloop.backends.base import retry_after
from synthloop.backends.openai_compat import OpenAICompatBackend
from synthloop.errors import BackendError, BackendTimeout, BackendUnavailable, BadResponse, RateLimited
from synthloop.testing import Fault, OpenAIStub

SECRET = "sk-test-0123456789-secret"


def req(text: str = "hello", **kw: object) -> Request:
    return Request.chat([{"role": "user", "content": text}], model="m", **kw)  # type: ignore[arg-type]


def one(backend: OpenAICompatBackend, request: Request | None = None) -> Response | BackendError:
    async def go() -> Response | BackendError:
        try:
            return (await backend.generate([request or req()]))[0]
        finally:
            await backend.aclose()

    return asyncio.run(go())


def test_success_sends_sampling_params_and_reads_usage() -> None:
    with OpenAIStub() as stub:
        answer = one(OpenAICompatBackend(stub.base_url, "stub-model"), req("two words", seed=5, max_tokens=17, temperature=0.3))
        body = stub.requests[0]
    assert isinstance(answer, Response) and answer.text == "stub reply to: two words"
    assert (answer.prompt_tokens, answer.completion_tokens, answer.finish_reason) == (2, 5, "stop")
    assert body["model"] == "stub-model" and body["seed"] == 5 and body["max_tokens"] == 17 and body["temperature"] == 0.3
    assert body["messages"] == [{"role": "user", "content": "two words"}]


@pytest.mark.parametrize(
    ("fault", "error", "retryable"),
    [
        (Fault("rate_limit", retry_after=3), RateLimited, True),
        (Fault("server_error"), BackendUnavailable, True),
        (Fault("server_error", status=400, message="unknown model 'x'"), BadResponse, False),
        (Fault("truncated"), BadResponse, True),
        (Fault("malformed"), BadResponse, True),
        (Fault("no_choices"), BadResponse, True),
        (Fault("disconnect"), BackendUnavailable, True),
    ],
)
def test_faults_are_translated(fault: Fault, error: type[BackendError], retryable: bool) -> None:
    with OpenAIStub(faults=[fault]) as stub:
        answer = one(OpenAICompatBackend(stub.base_url, "m"))
    assert type(answer) is error and answer.retryable is retryable
    if fault.kind == "rate_limit":
        assert retry_after(answer) == 3.0
    if fault.status == 400:
        assert "unknown model 'x'" in str(answer)


def test_timeout() -> None:
    with OpenAIStub(faults=[Fault("slow", delay_s=1.0)]) as stub:
        answer = one(OpenAICompatBackend(stub.base_url, "m", timeout_s=0.2))
    assert isinstance(answer, BackendTimeout) and answer.retryable


def test_connection_refused() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    answer = one(OpenAICompatBackend(f"http://127.0.0.1:{port}/v1", "m"))
    assert isinstance(answer, BackendUnavailable) and "is the server running" in str(answer)


def test_client_retries_every_transient_fault_over_http(backoff_sleeps: list[float]) -> None:
    faults = [Fault("rate_limit", retry_after=0.05), "server_error", "truncated", "malformed", Fault("slow", delay_s=1.0)]
    with OpenAIStub(faults=list(faults)) as stub:
        client = Client(OpenAICompatBackend(stub.base_url, "m", timeout_s=0.3), max_retries=5, backoff_base=0.001)
        [answer] = client.complete_sync([req()])
        assert isinstance(answer, Response) and stub.count == 6
    assert backoff_sleeps[0] == 0.05  # Retry-After honoured
    assert client.usage.requests == 6


def test_client_does_not_retry_a_client_error(backoff_sleeps: list[float]) -> None:
    with OpenAIStub(faults=[Fault("server_error", status=422, message="max_tokens too large")]) as stub:
        [answer] = Client(OpenAICompatBackend(stub.base_url, "m")).complete_sync([req()])
        assert isinstance(answer, BadResponse) and stub.count == 1


def test_cache_means_a_rerun_sends_nothing(tmp_path: Path) -> None:
    requests = [req(f"q{i}") for i in range(4)]
    with OpenAIStub() as stub:
        for _ in range(2):
            client = Client(OpenAICompatBackend(stub.base_url, "m"), cache=RequestCache(tmp_path / "c.sqlite"))
            answers = client.complete_sync(requests)
            client.cache.close()  # type: ignore[union-attr]
        assert stub.count == 4
    assert all(isinstance(a, Response) and a.cached for a in answers)


def test_connections_are_reused() -> None:
    """Many requests through one backend use its small pool, not a connection each."""
    with OpenAIStub(responder=lambda body: "ok") as stub:
        client = Client(OpenAICompatBackend(stub.base_url, "m", max_connections=2), concurrency=2)
        client.complete_sync([req(f"q{i}") for i in range(12)])
        assert stub.count == 12 and 1 <= stub.connections <= 2


def test_stub_counts_each_connections_turnaround() -> None:
    """Reply written -> the next request read on that connection: one per reuse, in `stats()`."""
    with OpenAIStub(responder=lambda body: "ok") as stub:
        client = Client(OpenAICompatBackend(stub.base_url, "m", max_connections=1), concurrency=1)
        client.complete_sync([req(f"q{i}") for i in range(4)])
        assert stub.connections == 1 and len(stub.turnarounds) == 3 and all(t >= 0 for t in stub.turnarounds)
        stats = stub.stats()
    assert 0 < stats["turnaround_ms_p50"] <= stats["turnaround_ms_p90"] < 1000


def test_models_endpoint() -> None:
    with OpenAIStub(model="tiny") as stub:
        data = httpx.get(f"{stub.base_url}/models").json()
    assert data["data"][0]["id"] == "tiny"


def test_api_key_is_sent_but_never_shown(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, backoff_sleeps: list[float]) -> None:
    monkeypatch.setenv("SYNTH_TEST_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    faults = [Fault("rate_limit", message=f"key {SECRET} is over quota"), Fault("server_error", status=401, message=f"Incorrect API key provided: {SECRET}")]
    with OpenAIStub(faults=faults) as stub:
        backend = OpenAICompatBackend(stub.base_url, "m", api_key_env="SYNTH_TEST_KEY")
        client = Client(backend, backoff_base=0.001)
        [answer] = client.complete_sync([req()])
        assert stub.headers[0]["authorization"] == f"Bearer {SECRET}"
    assert isinstance(answer, BadResponse) and "$SYNTH_TEST_KEY" in str(answer)
    for shown in (repr(backend), repr(client), str(answer), repr(answer), caplog.text):
        assert SECRET not in shown
    assert "***" in str(answer)


def test_missing_key_variable_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYNTH_NO_SUCH_KEY", raising=False)
    with pytest.raises(BackendError, match=r"\$SYNTH_NO_SUCH_KEY is not set.*export SYNTH_NO_SUCH_KEY="):
        OpenAICompatBackend("http://127.0.0.1:1/v1", "m", api_key_env="SYNTH_NO_SUCH_KEY")


def test_stub_slots_queue_first_come_first_served_on_the_servers_own_clock() -> None:
    from synthloop.testing.openai_stub import Slots

    slots = Slots(2, latency=1.0)
    # two free slots, then two queued behind them, then one arriving after they are due to free
    assert [slots.book(0.0), slots.book(0.0), slots.book(0.1), slots.book(0.2), slots.book(5.0)] == [1.0, 1.0, 2.0, 2.0, 6.0]
    # a request booked late (the loop woke up 0.3 s after the slot freed) starts when it arrived,
    # and one queued behind it starts when that slot was due, not when the loop got to it
    late = Slots(1, latency=1.0)
    assert (late.book(0.0), late.book(0.5), late.book(2.3)) == (1.0, 2.0, 3.3)


def test_stub_with_slots_holds_each_request_for_its_latency_and_queues_the_rest() -> None:
    async def main(url: str) -> list[float]:
        backend = OpenAICompatBackend(url, "stub", max_connections=6)
        loop = asyncio.get_running_loop()
        t0 = loop.time()

        async def one(i: int) -> float:
            answer = await backend.generate([Request.chat([{"role": "user", "content": f"q{i}"}], model="stub")])
            assert isinstance(answer[0], Response)
            return loop.time() - t0

        try:
            return sorted(await asyncio.gather(*(one(i) for i in range(6))))
        finally:
            await backend.aclose()

    with OpenAIStub(slots=2, latency_s=0.1) as stub:
        done = asyncio.run(main(stub.base_url))
        assert stub.stats()["worked"] == 6 and stub.peak_in_flight == 6
    # three waves of two: none answered before its wave's latency has passed
    assert all(t >= 0.1 * (1 + i // 2) for i, t in enumerate(done)), done
