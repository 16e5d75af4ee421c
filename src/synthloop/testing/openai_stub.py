"""An OpenAI-compatible stub server for tests, benches and manual tries: real HTTP on 127.0.0.1.

    with OpenAIStub(faults=["rate_limit", "server_error"]) as stub:
        backend = OpenAICompatBackend(stub.base_url, "stub")   # http://127.0.0.1:PORT/v1

It serves `POST /v1/chat/completions`, `GET /v1/models` and `GET /v1/stats` over HTTP/1.1
keep-alive, on one asyncio loop (in a daemon thread), so it can answer thousands of requests a
second and model a real server's capacity:

- `slots`: how many requests it works on at once (None: unlimited); the others queue.
- `latency_s`: how long each request holds its slot (the model's "generation time").
- `max_in_flight`: a provider's concurrency limit: a request arriving while that many are being
  handled gets a 429 with `Retry-After: <limit_retry_after>`.

Replies come from `responder(body) -> str` (default: an echo of the last message). Faults are
served first, in order, one per chat request (a `Fault` or its kind as a string), or chosen per
request by `fault_fn(body) -> Fault | None`. Kinds:

- `rate_limit`: 429 with `Retry-After: <retry_after>` (when set), at once: it holds no slot
- `server_error`: 500 (`status` overrides the code, e.g. 503 or 400 for a client error; `message`
  sets the error text)
- `slow`: wait `delay_s` (without holding a slot: a stalled network), then answer normally
- `truncated`: a 200 whose JSON body is cut in half (with a matching Content-Length)
- `disconnect`: headers promise a body, then the connection is closed mid-body
- `malformed`: a 200 whose body is not JSON
- `no_choices`: a 200 with valid JSON but no `choices`

`GET /v1/stats` returns what a separate-process bench needs: requests received, peak in flight,
and how many prompts were answered successfully more than once (duplicates after success).
Run `python -m synthloop.testing.openai_stub --port 8000 [--slots 64 --latency-ms 200
--fault-rate 0.2 --fault-seed 0]` to try a client against it by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

Body = dict[str, Any]
KINDS = ("rate_limit", "server_error", "slow", "truncated", "disconnect", "malformed", "no_choices")
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests"}


@dataclass(frozen=True)
class Fault:
    kind: str
    retry_after: float | None = None
    delay_s: float = 0.0
    status: int = 500
    message: str = "the stub was told to fail"  # the error text of rate_limit / server_error

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {', '.join(KINDS)}")


def echo(body: Body) -> str:
    """Default reply: echoes the last message, so tests can see what was asked."""
    messages = body.get("messages") or [{"content": ""}]
    return f"stub reply to: {messages[-1].get('content', '')}"


def mixed_faults(rate: float, *, seed: int = 0, retry_after: float = 1.0, hang_s: float = 30.0) -> Callable[[Body], Fault | None]:
    """A `fault_fn` that fails `rate` of requests, evenly over: 429 with Retry-After, 500, a hang
    of `hang_s`, a malformed body and a truncated body (the bench's "20% mixed faults")."""
    rng = random.Random(seed)
    kinds = [Fault("rate_limit", retry_after=retry_after), Fault("server_error"), Fault("slow", delay_s=hang_s), Fault("malformed"), Fault("truncated")]
    return lambda body: rng.choice(kinds) if rng.random() < rate else None


class Slots:
    """A server's capacity: `n` slots, each request holding one for `latency` seconds, first come
    first served. The schedule is kept on the server's own clock: a queued request starts when its
    slot is due to free, not when the event loop gets round to waking up, so the loop's timer
    lateness (up to a millisecond a sleep, more on a busy machine) never lowers the capacity below
    n / latency, as it did when a slot was a semaphore released after each sleep."""

    def __init__(self, n: int, latency: float) -> None:
        self.latency = latency
        self._free = [0.0] * n  # when each slot is next free (a heap)

    def book(self, now: float) -> float:
        """The time the request arriving `now` is done: its slot's next free time (or now), plus the latency."""
        end = max(now, heapq.heappop(self._free)) + self.latency
        heapq.heappush(self._free, end)
        return end


class OpenAIStub:
    """The server, run on its own loop in a daemon thread; a context manager that starts and stops it."""

    def __init__(
        self,
        responder: Callable[[Body], str] = echo,
        faults: list[Fault | str] | None = None,
        fault_fn: Callable[[Body], Fault | None] | None = None,
        model: str = "stub-model",
        port: int = 0,
        *,
        slots: int | None = None,
        latency_s: float = 0.0,
        max_in_flight: int | None = None,
        limit_retry_after: float = 0.1,
    ) -> None:
        self.responder = responder
        self.faults = [f if isinstance(f, Fault) else Fault(f) for f in faults or []]
        self.fault_fn = fault_fn
        self.model = model
        self.slots, self.latency_s = slots, latency_s
        self.max_in_flight, self.limit_retry_after = max_in_flight, limit_retry_after
        self.requests: list[Body] = []  # every chat request body received, in order
        self.headers: list[dict[str, str]] = []
        self.peers: list[tuple[str, int]] = []  # client address of each request: reuse shows here
        self.in_flight = 0
        self.peak_in_flight = 0
        self.limited = 0  # 429s sent because of max_in_flight
        self.worked = 0  # requests that held a slot: the server's real work
        self.answered: Counter[str] = Counter()  # successful answers per last-message content
        # seconds from a reply written to the next request's head read on that connection: the
        # client's turnaround, a slot left idle when the client sends as many requests as there are slots
        self.turnarounds: list[float] = []
        self._lock = threading.Lock()
        self._sock = socket.create_server(("127.0.0.1", port), backlog=1024)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._slots: Slots | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def count(self) -> int:
        """Chat requests received so far (faulted ones included)."""
        with self._lock:
            return len(self.requests)

    @property
    def connections(self) -> int:
        """Distinct client connections that sent chat requests (1 = perfect keep-alive reuse)."""
        with self._lock:
            return len(set(self.peers))

    def stats(self) -> dict[str, float]:
        """Counts a bench in another process reads through `GET /v1/stats` (turnarounds in ms)."""
        with self._lock:
            turn = sorted(self.turnarounds)
            return {
                "turnaround_ms_p50": round(1000 * turn[len(turn) // 2], 2) if turn else 0.0,
                "turnaround_ms_p90": round(1000 * turn[9 * len(turn) // 10], 2) if turn else 0.0,
                "requests": len(self.requests),
                "peak_in_flight": self.peak_in_flight,
                "limited": self.limited,
                "worked": self.worked,
                "answered_prompts": len(self.answered),
                "duplicates_after_success": sum(n - 1 for n in self.answered.values()),
            }

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> "OpenAIStub":
        ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self.serve(ready)), name="openai-stub", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    async def serve(self, ready: threading.Event | None = None) -> None:
        """Serve until `stop()` (or forever, from the command line)."""
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        self._slots = Slots(self.slots, self.latency_s) if self.slots else None
        server = await asyncio.start_server(self._connection, sock=self._sock, backlog=1024)
        if ready is not None:
            ready.set()
        async with server:
            await self._stopping.wait()

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._sock.close()

    def __enter__(self) -> "OpenAIStub":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # -- HTTP -------------------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One keep-alive connection: requests one after another until the client closes it."""
        writer.transport.set_write_buffer_limits(high=1 << 20)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = writer.get_extra_info("peername")[:2]
        replied: list[float] = []  # when this connection's last reply was written
        try:
            while await self._one_request(reader, writer, peer, replied):
                replied[:] = [asyncio.get_running_loop().time()]
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away (e.g. it timed out): nothing to do
        finally:
            writer.close()

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: tuple[str, int],
                           replied: list[float]) -> bool:
        """Read and answer one request; False when the connection should close."""
        head = await reader.readuntil(b"\r\n\r\n")
        if replied:
            with self._lock:
                self.turnarounds.append(asyncio.get_running_loop().time() - replied[0])
        lines = head.decode("latin-1").split("\r\n")
        method, path = (lines[0].split(" ") + ["", ""])[:2]
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        raw = await reader.readexactly(int(headers.get("content-length") or 0))
        path = path.rstrip("/")
        if method == "GET":
            return self._get(writer, path)
        if path != "/v1/chat/completions":
            return _send(writer, 404, b'{"error": {"message": "not found"}}')
        try:
            body = json.loads(raw)
        except ValueError:
            return _send(writer, 400, b'{"error": {"message": "request body is not JSON"}}')
        fault = self._record(body, headers, peer)
        return await self._chat(writer, body, fault)

    def _get(self, writer: asyncio.StreamWriter, path: str) -> bool:
        if path == "/v1/models":
            return _send(writer, 200, json.dumps({"object": "list", "data": [{"id": self.model, "object": "model"}]}).encode())
        if path == "/v1/stats":
            return _send(writer, 200, json.dumps(self.stats()).encode())
        return _send(writer, 404, b'{"error": {"message": "not found"}}')

    def _record(self, body: Body, headers: dict[str, str], peer: tuple[str, int]) -> Fault | None:
        """Count the request and pick its fault (queue first, then `fault_fn`)."""
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            self.peers.append(peer)
            if self.faults:
                return self.faults.pop(0)
        return self.fault_fn(body) if self.fault_fn is not None else None

    async def _chat(self, writer: asyncio.StreamWriter, body: Body, fault: Fault | None) -> bool:
        if self.max_in_flight is not None and self.in_flight >= self.max_in_flight:
            self.limited += 1
            return _send(writer, 429, _error_body("too many requests in flight"), {"retry-after": f"{self.limit_retry_after:g}"})
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if fault is not None and fault.kind == "slow":
                await asyncio.sleep(fault.delay_s)
            if fault is None or fault.kind != "rate_limit":  # a rate limiter refuses before the model runs
                await self._work()
            return await self._reply(writer, body, fault)
        finally:
            self.in_flight -= 1

    async def _work(self) -> None:
        """Hold one of the server's slots for `latency_s`, queueing when all are busy (`Slots`)."""
        with self._lock:
            self.worked += 1
        if self._slots is None:
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            return
        now = asyncio.get_running_loop().time()
        await asyncio.sleep(self._slots.book(now) - now)

    async def _reply(self, writer: asyncio.StreamWriter, body: Body, fault: Fault | None) -> bool:
        kind = fault.kind if fault else ""
        if fault and kind == "rate_limit":
            extra = {"retry-after": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            return _send(writer, 429, _error_body(fault.message), extra)
        if fault and kind == "server_error":
            return _send(writer, fault.status, _error_body(fault.message))
        if kind == "malformed":
            return _send(writer, 200, b"<html>upstream proxy error</html>")
        if kind == "no_choices":
            return _send(writer, 200, json.dumps({"id": "x", "object": "chat.completion", "choices": []}).encode())
        payload = json.dumps(self.completion(body)).encode()
        if kind == "truncated":
            return _send(writer, 200, payload[: len(payload) // 2])
        if kind == "disconnect":
            _send(writer, 200, payload[: len(payload) // 2], {"content-length": str(len(payload))})
            await writer.drain()
            return False
        self._count_answer(body)
        return _send(writer, 200, payload)

    def _count_answer(self, body: Body) -> None:
        messages = body.get("messages") or [{}]
        with self._lock:
            self.answered[str(messages[-1].get("content", ""))] += 1

    def completion(self, body: Body) -> Body:
        text = self.responder(body)
        prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
        completion = len(text.split())
        return {
            "id": f"stub-{self.count}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", self.model),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }


def _send(writer: asyncio.StreamWriter, status: int, payload: bytes, extra: dict[str, str] | None = None) -> bool:
    """Write one response (head and body in one write: no Nagle stalls); True: keep the connection."""
    headers = {"content-type": "application/json", "content-length": str(len(payload)), **(extra or {})}
    head = f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    writer.write(head.encode("latin-1") + payload)
    return True


def _error_body(message: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": "stub_error"}}).encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the synthloop OpenAI-compatible stub server.")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model", default="stub-model")
    parser.add_argument("--slots", type=int, default=None, help="requests worked on at once (default: unlimited)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="time each request holds its slot")
    parser.add_argument("--max-in-flight", type=int, default=None, help="answer 429 beyond this many requests in flight")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="share of requests that fail (mixed kinds)")
    parser.add_argument("--hang-s", type=float, default=30.0, help="how long a 'hang' fault stalls")
    parser.add_argument("--retry-after", type=float, default=1.0, help="Retry-After of a 429 fault")
    parser.add_argument("--fault-seed", type=int, default=0, help="seed of the fault draws (the same seed, the same sequence)")
    args = parser.parse_args(argv)
    fault_fn = mixed_faults(args.fault_rate, seed=args.fault_seed, retry_after=args.retry_after, hang_s=args.hang_s) if args.fault_rate else None
    stub = OpenAIStub(model=args.model, port=args.port, fault_fn=fault_fn, slots=args.slots, latency_s=args.latency_ms / 1000, max_in_flight=args.max_in_flight)
    print(f"serving {stub.base_url} (Ctrl-C to stop)", flush=True)
    try:
        asyncio.run(stub.serve())
    except KeyboardInterrupt:
        pass
    finally:
        stub._sock.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
