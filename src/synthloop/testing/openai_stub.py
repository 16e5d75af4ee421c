"""An OpenAI-compatible stub server for tests and manual tries: real HTTP on 127.0.0.1.

    with OpenAIStub(faults=["rate_limit", "server_error"]) as stub:
        backend = OpenAICompatBackend(stub.base_url, "stub")   # http://127.0.0.1:PORT/v1

It serves `POST /v1/chat/completions` and `GET /v1/models` over HTTP/1.1 keep-alive. Replies come
from `responder(body) -> str` (default: an echo of the last message). Faults are served first, in
order, one per chat request (a `Fault` or its kind as a string), or chosen per request by
`fault_fn(body) -> Fault | None`. Kinds:

- `rate_limit`: 429 with `Retry-After: <retry_after>` (when set)
- `server_error`: 500 (`status` overrides the code, e.g. 503 or 400 for a client error; `message`
  sets the error text)
- `slow`: sleep `delay_s`, then answer normally
- `truncated`: a 200 whose JSON body is cut in half (with a matching Content-Length)
- `disconnect`: headers promise a body, then the connection is closed mid-body
- `malformed`: a 200 whose body is not JSON
- `no_choices`: a 200 with valid JSON but no `choices`

Run `python -m synthloop.testing.openai_stub --port 8000` to try a client against it by hand.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

Body = dict[str, Any]
KINDS = ("rate_limit", "server_error", "slow", "truncated", "disconnect", "malformed", "no_choices")


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


class OpenAIStub:
    """The server, run in a daemon thread; a context manager that starts and stops it."""

    def __init__(
        self,
        responder: Callable[[Body], str] = echo,
        faults: list[Fault | str] | None = None,
        fault_fn: Callable[[Body], Fault | None] | None = None,
        model: str = "stub-model",
        port: int = 0,
    ) -> None:
        self.responder = responder
        self.faults = [f if isinstance(f, Fault) else Fault(f) for f in faults or []]
        self.fault_fn = fault_fn
        self.model = model
        self.requests: list[Body] = []  # every chat request body received, in order
        self.headers: list[dict[str, str]] = []
        self.peers: list[tuple[str, int]] = []  # client address of each request: reuse shows here
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def count(self) -> int:
        """Chat requests received so far (faulted ones included)."""
        with self._lock:
            return len(self.requests)

    def start(self) -> "OpenAIStub":
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), name="openai-stub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "OpenAIStub":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    @property
    def connections(self) -> int:
        """Distinct client connections that sent chat requests (1 = perfect keep-alive reuse)."""
        with self._lock:
            return len(set(self.peers))

    def _record(self, body: Body, headers: dict[str, str], peer: tuple[str, int]) -> Fault | None:
        """Count the request and pick its fault (queue first, then `fault_fn`)."""
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            self.peers.append(peer)
            if self.faults:
                return self.faults.pop(0)
        return self.fault_fn(body) if self.fault_fn is not None else None

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


def _handler_for(stub: OpenAIStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, so clients can reuse connections
        disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms stalls

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            """Quiet: tests read `stub.requests`, not stderr."""

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, json.dumps({"object": "list", "data": [{"id": stub.model, "object": "model"}]}).encode())
            else:
                self._send(404, b'{"error": {"message": "not found"}}')

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, b'{"error": {"message": "not found"}}')
                return
            try:
                body = json.loads(raw)
            except ValueError:
                self._send(400, b'{"error": {"message": "request body is not JSON"}}')
                return
            fault = stub._record(body, {k.lower(): v for k, v in self.headers.items()}, self.client_address[:2])
            self._reply(body, fault)

        def _reply(self, body: Body, fault: Fault | None) -> None:
            kind = fault.kind if fault else ""
            if fault and kind == "slow":
                time.sleep(fault.delay_s)
            if kind == "rate_limit":
                extra = {"retry-after": f"{fault.retry_after:g}"} if fault and fault.retry_after is not None else {}
                self._send(429, _error_body(fault.message if fault else ""), extra)
            elif kind == "server_error" and fault:
                self._send(fault.status, _error_body(fault.message))
            elif kind == "malformed":
                self._send(200, b"<html>upstream proxy error</html>")
            elif kind == "no_choices":
                self._send(200, json.dumps({"id": "x", "object": "chat.completion", "choices": []}).encode())
            else:
                payload = json.dumps(stub.completion(body)).encode()
                if kind == "truncated":
                    self._send(200, payload[: len(payload) // 2])
                elif kind == "disconnect":
                    self._send(200, payload[: len(payload) // 2], {"content-length": str(len(payload))})
                    self.close_connection = True
                else:
                    self._send(200, payload)

        def _send(self, status: int, payload: bytes, extra: dict[str, str] | None = None) -> None:
            headers = {"content-type": "application/json", "content-length": str(len(payload)), **(extra or {})}
            try:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (e.g. timed out): nothing to do

    return Handler


def _error_body(message: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": "stub_error"}}).encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the synthloop OpenAI-compatible stub server.")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model", default="stub-model")
    args = parser.parse_args(argv)
    stub = OpenAIStub(model=args.model, port=args.port)
    print(f"serving {stub.base_url} (Ctrl-C to stop)", flush=True)
    try:
        stub._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stub._server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
