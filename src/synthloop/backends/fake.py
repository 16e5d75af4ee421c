"""A deterministic backend: public API for tests, examples and `--dry-run`.

What it answers, in order of precedence: the next item of `script` (a `str` or a `BackendError`
instance, one per request, consumed in order), else `responder(request)`, else a responder
registered for the request's tag prefix with `register_responder` (task modules register canned,
well-formed answers for their templates), else a deterministic text derived from the request hash.
Every request received is appended to `.calls`, so tests can assert nothing was re-sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from synthloop.backends.base import Request, Response
from synthloop.errors import BackendError

Responder = Callable[[Request], "str | BackendError"]

_REGISTRY: dict[str, Responder] = {}


def register_responder(tag_prefix: str, fn: Responder) -> None:
    """Answer requests whose `tag` starts with `tag_prefix` with `fn` (longest prefix wins)."""
    _REGISTRY[tag_prefix] = fn


def unregister_responder(tag_prefix: str) -> None:
    _REGISTRY.pop(tag_prefix, None)


def registered_responder(tag: str) -> Responder | None:
    """The responder registered for the longest prefix of `tag`, if any."""
    matches = [p for p in _REGISTRY if tag.startswith(p)]
    return _REGISTRY[max(matches, key=len)] if matches else None


def default_text(request: Request) -> str:
    """Deterministic filler: the same request always gets the same text."""
    last = request.messages[-1][1] if request.messages else ""
    return f"Fake answer {request.cache_key()[:12]} to: {' '.join(last.split()[:12])}"


def word_count(text: str) -> int:
    return len(text.split())


class FakeBackend:
    """Deterministic, instant (unless `latency_s`), and it records what it was asked."""

    name = "fake"

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        script: Iterable[str | BackendError] | None = None,
        model: str = "fake",
        batch_size: int = 8,
        latency_s: float = 0.0,
    ) -> None:
        self.responder = responder
        self.script = list(script or [])
        self.model = model
        self.batch_size = batch_size
        self.latency_s = latency_s
        self.calls: list[Request] = []
        self.batches: list[int] = []  # size of each generate() call
        self.in_flight = 0
        self.peak_in_flight = 0

    async def generate(self, requests: list[Request]) -> list[Response | BackendError]:
        self.calls.extend(requests)
        self.batches.append(len(requests))
        self.in_flight += len(requests)
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            return [self._answer(r) for r in requests]
        finally:
            self.in_flight -= len(requests)

    def _answer(self, request: Request) -> Response | BackendError:
        out = self._text(request)
        if isinstance(out, BackendError):
            return out
        prompt_tokens = sum(word_count(content) for _, content in request.messages)
        completion_tokens = word_count(out)
        finish = "length" if completion_tokens >= request.max_tokens else "stop"
        return Response(text=out, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, finish_reason=finish)

    def _text(self, request: Request) -> str | BackendError:
        if self.script:
            return self.script.pop(0)
        if self.responder is not None:
            return self.responder(request)
        registered = registered_responder(request.tag)
        return registered(request) if registered is not None else default_text(request)

    async def aclose(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"FakeBackend(model={self.model!r}, batch_size={self.batch_size})"


__all__ = ["FakeBackend", "Responder", "default_text", "register_responder", "registered_responder", "unregister_responder"]
