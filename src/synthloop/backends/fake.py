"""A deterministic backend: public API for tests, examples and `--dry-run`.

What it answers, in order of precedence: the next item of `script` (a `str` or a `BackendError`
instance, one per request, consumed in order), else `responder(request)`, else the responder in
`responders` for the longest prefix of the request's tag (`canned_responders()` gives every task's
and the judge's well-formed canned answers; `make_backend` passes them), else a deterministic text
derived from the request hash. Responders belong to the instance: nothing leaks between tests.
Every request received is appended to `.calls`, so tests can assert nothing was re-sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from synthloop.backends.base import Request, Response
from synthloop.errors import BackendError

Responder = Callable[[Request], "str | BackendError"]

def responder_for(responders: dict[str, Responder], tag: str) -> Responder | None:
    """The responder for the longest prefix of `tag`, if any."""
    matches = [p for p in responders if tag.startswith(p)]
    return responders[max(matches, key=len)] if matches else None


def canned_responders() -> dict[str, Responder]:
    """Well-formed canned answers for every registered task's templates and for the judge."""
    from synthloop.tasks import task_fake_answers
    from synthloop.verifiers.judge import fake_judgement

    return {**task_fake_answers(), "judge:": fake_judgement}


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
        responders: dict[str, Responder] | None = None,
        script: Iterable[str | BackendError] | None = None,
        model: str = "fake",
        batch_size: int = 8,
        latency_s: float = 0.0,
    ) -> None:
        self.responder = responder
        self.responders = dict(responders or {})
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
        canned = responder_for(self.responders, request.tag)
        return canned(request) if canned is not None else default_text(request)

    async def aclose(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"FakeBackend(model={self.model!r}, batch_size={self.batch_size})"


__all__ = ["FakeBackend", "Responder", "canned_responders", "default_text", "responder_for"]
