"""Any OpenAI-compatible `/chat/completions` server (vLLM, llama.cpp server, TGI, OpenAI, ...).

A lean aiohttp client: one shared `aiohttp.ClientSession` per event loop (keep-alive connection
reuse, pool sized to the client's concurrency), JSON in and out, and every failure translated into
the project's error tree right here. aiohttp, not httpx: httpcore 1.0's pool re-scans every
connection for every waiting request, so its CPU cost per request grows with concurrency (9 ms at
64 in flight); aiohttp's stays flat (figures in docs/backends.md, from bench/bench_client.py).

| what happened                                | error                           | retried |
|----------------------------------------------|---------------------------------|---------|
| 429                                          | `RateLimited` (+ Retry-After)   | yes     |
| 5xx, connection refused/reset, broken body   | `BackendUnavailable`            | yes     |
| timeout                                      | `BackendTimeout`                | yes     |
| other 4xx                                    | `BadResponse` (server message)  | no      |
| truncated/malformed JSON, no `choices`       | `BadResponse`, `retryable=True` | yes     |

A 200 with an unusable body is marked retryable: in practice it is a proxy or server cutting the
reply short, which is transient, while a 4xx says the request itself is wrong.

The API key is read once from the environment variable named by `api_key_env`; it lives only in
the session's default headers and never appears in messages, reprs or files.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import time
from typing import Any

import aiohttp

from synthloop.backends.base import Request, Response, with_retry_after
from synthloop.errors import BackendError, BackendTimeout, BackendUnavailable, BadResponse, RateLimited

_MESSAGE_CHARS = 300  # how much of a server's error message we quote


class OpenAICompatBackend:
    """POSTs each request to `{base_url}/chat/completions`; a batch is sent concurrently."""

    name = "openai_compat"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = None,
        timeout_s: float = 120.0,
        batch_size: int = 1,
        max_connections: int = 8,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s
        self.batch_size = batch_size
        self.max_connections = max_connections
        self._url = f"{self.base_url}/chat/completions"
        self._headers = {"content-type": "application/json"}
        if api_key_env:
            self._headers["authorization"] = f"Bearer {_read_key(api_key_env)}"
        self._http: tuple[asyncio.AbstractEventLoop, aiohttp.ClientSession] | None = None

    def _client(self) -> aiohttp.ClientSession:
        """The shared session for the running loop (a new loop gets a new pool)."""
        loop = asyncio.get_running_loop()
        if self._http is None or self._http[0] is not loop:
            # Twice the client's concurrency: the client's window bounds the requests being worked
            # on; a stalled one it stopped counting (limits.Overdue) still holds its connection.
            connector = aiohttp.TCPConnector(limit=2 * self.max_connections, limit_per_host=0, ttl_dns_cache=None)
            timeout = aiohttp.ClientTimeout(total=self.timeout_s)
            session = aiohttp.ClientSession(headers=self._headers, timeout=timeout, connector=connector, skip_auto_headers=("User-Agent",))
            self._http = (loop, session)
        return self._http[1]

    async def generate(self, requests: list[Request]) -> list[Response | BackendError]:
        if len(requests) == 1:
            return [await self._one(requests[0])]
        return list(await asyncio.gather(*(self._one(r) for r in requests)))

    async def _one(self, request: Request) -> Response | BackendError:
        body = json.dumps(self._payload(request)).encode()
        try:
            async with self._client().post(self._url, data=body) as reply:
                content = await reply.read()
                status, retry_hint = reply.status, reply.headers.get("retry-after")
        except TimeoutError:
            return BackendTimeout(f"no answer from {self._url} within {self.timeout_s:g} s (raise teacher.timeout_s or check the server's load)")
        except aiohttp.ClientPayloadError as e:
            return BackendUnavailable(f"the reply from {self._url} was cut off: {type(e).__name__}: {e} (a proxy or the server closed the connection; retried)")
        except aiohttp.ClientError as e:
            return BackendUnavailable(f"cannot reach {self._url}: {type(e).__name__}: {e} (is the server running at base_url?)")
        if status != 200:
            return self._status_error(status, content, retry_hint)
        return self._parse(content)

    def _payload(self, request: Request) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": request.message_dicts(),
            "temperature": request.temperature,
            "top_p": request.top_p,
            "max_tokens": request.max_tokens,
            "seed": request.effective_seed,
        }
        if request.response_format:  # structured output (a task with an output schema)
            payload["response_format"] = json.loads(request.response_format)
        return payload

    def _status_error(self, status: int, content: bytes, retry_hint: str | None) -> BackendError:
        message = self._redact(_server_message(content))
        where = f"{status} from {self._url}: {message}"
        if status == 429:
            return with_retry_after(RateLimited(f"rate limited: {where}"), _parse_retry_after(retry_hint))
        if status >= 500:
            return BackendUnavailable(f"server error {where}")
        hint = f"check the API key in ${self.api_key_env}" if status in (401, 403) else "check teacher.model and the request parameters"
        return BadResponse(f"request refused: {where} ({hint})")

    def _parse(self, content: bytes) -> Response | BackendError:
        try:
            data = json.loads(content)
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
            detail = self._redact(f"{type(e).__name__}: {str(e)[:120]}; body starts {content[:80]!r}")
            err = BadResponse(f"unusable reply from {self._url} ({detail})")
            err.retryable = True  # a cut-short body is transient; see the module docstring
            return err
        usage = data.get("usage") or {}
        return Response(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            finish_reason=str(choice.get("finish_reason") or "stop"),
            raw={"id": data.get("id", ""), "model": data.get("model", "")},
        )

    def _redact(self, text: str) -> str:
        """Servers sometimes echo the key they refused; it must not reach a log line."""
        auth = self._headers.get("authorization", "")
        key = auth.removeprefix("Bearer ")
        return text.replace(key, "***") if key else text

    async def aclose(self) -> None:
        """Close the connection pool; the next `generate` opens a new one."""
        if self._http is not None:
            loop, session = self._http
            self._http = None
            if loop is asyncio.get_running_loop():
                await session.close()

    def __repr__(self) -> str:
        return f"OpenAICompatBackend(base_url={self.base_url!r}, model={self.model!r}, api_key_env={self.api_key_env!r})"


def _read_key(env: str) -> str:
    key = os.environ.get(env, "").strip()
    if not key:
        raise BackendError(f"the API key variable ${env} is not set (export {env}=... in your shell, or set teacher.api_key_env to the variable that holds it)")
    return key


def _server_message(content: bytes) -> str:
    """The server's own error text, shortened: `{"error": {"message": ...}}` or the raw body."""
    try:
        data = json.loads(content)
        err = data.get("error", data) if isinstance(data, dict) else data
        message = err.get("message", err) if isinstance(err, dict) else err
        text = message if isinstance(message, str) else json.dumps(message)
    except ValueError:
        text = content.decode("utf-8", "replace")
    text = " ".join(text.split())
    return text[:_MESSAGE_CHARS] + ("..." if len(text) > _MESSAGE_CHARS else "")


def _parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: either a number or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


__all__ = ["OpenAICompatBackend"]
