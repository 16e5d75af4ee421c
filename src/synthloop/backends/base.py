"""The backend contract: one method. Everything else about talking to a model (concurrency,
retries, rate limits, caching, token and cost accounting, budgets) lives once, in `client.py`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import xxhash

from synthloop.errors import BackendError
from synthloop.records import canonical_json


@dataclass(frozen=True)
class Request:
    """One chat completion request. `attempt` > 0 marks a re-ask after unusable output, so the
    re-ask gets its own cache entry (and its own seed) instead of the cached bad answer."""

    messages: tuple[tuple[str, str], ...]  # ((role, content), ...): hashable and canonical
    model: str
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 512
    seed: int = 0
    attempt: int = 0
    tag: str = ""  # prompt template id: lets the fake and logs know what is being asked
    #: OpenAI `response_format` as canonical JSON ("" = none): structured output. openai_compat
    #: sends it; the fake and local backends ignore it (the task's parser extracts JSON from text).
    response_format: str = ""

    @classmethod
    def chat(cls, messages: list[dict[str, str]], **kw: Any) -> "Request":
        return cls(messages=tuple((m["role"], m["content"]) for m in messages), **kw)

    def message_dicts(self) -> list[dict[str, str]]:
        return [{"role": r, "content": c} for r, c in self.messages]

    @property
    def effective_seed(self) -> int:
        return self.seed + 7919 * self.attempt

    def cache_key(self) -> str:
        """Hash of model + messages + sampling params + seed (+ attempt) (+ response_format, when
        set: keys of requests without one are unchanged). Not the tag."""
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": self.messages,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "seed": self.effective_seed,
        }
        if self.response_format:
            payload["response_format"] = self.response_format
        return xxhash.xxh3_128_hexdigest(canonical_json(payload).encode("utf-8"))  # xxhash 3.x takes bytes only


@dataclass
class Response:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"
    cached: bool = False
    raw: dict[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    """A model endpoint. `generate` answers a batch; a failed item is a `BackendError` in its
    place (so one bad request does not sink its batch). The client decides what to retry."""

    name: str
    model: str
    batch_size: int  # how many requests one `generate` call should carry

    async def generate(self, requests: list[Request]) -> list[Response | BackendError]: ...

    async def aclose(self) -> None: ...


def with_retry_after(error: BackendError, seconds: float | None) -> BackendError:
    """Attach the server's Retry-After (seconds) to an error; the client waits at least that long
    before re-sending. Returns the same error so a backend can `return with_retry_after(...)`."""
    error.retry_after = seconds  # type: ignore[attr-defined]
    return error


def retry_after(error: BackendError) -> float | None:
    """The Retry-After a backend attached with `with_retry_after`, if any."""
    value = getattr(error, "retry_after", None)
    return float(value) if value is not None else None


__all__ = ["Backend", "Request", "Response", "retry_after", "with_retry_after"]
