"""Model backends and the client that holds all policy for talking to them.

`make_client(cfg, cache_path=..., budget=...)` is what an engine calls; a `Backend` has one method
(`generate`), and `Client` does caching, batching, adaptive concurrency, rate limits, retries,
re-asks, accounting and hard budgets once for all of them. The spend of every new answer is
committed with it in the request cache: `RequestCache.spent()` is the total across sessions.
"""

from __future__ import annotations

from pathlib import Path

from synthloop.backends.base import Backend, Request, Response, retry_after, with_retry_after
from synthloop.backends.cache import RequestCache, Spent
from synthloop.backends.client import Budget, Client, Parsed, ParseFailure
from synthloop.backends.fake import FakeBackend, canned_responders
from synthloop.backends.limits import worst_case_tokens
from synthloop.backends.registry import BackendSpec, backend_names, backend_spec, register_backend
from synthloop.recipe import BackendConfig


def make_backend(cfg: BackendConfig) -> Backend:
    """The backend a recipe's `[teacher]` (or `[judge.backend]`) section describes (by its
    registered name: `backends/registry.py`)."""
    return backend_spec(cfg.backend).factory(cfg)


def make_client(
    cfg: BackendConfig,
    *,
    cache_path: Path | None = None,
    budget: Budget | None = None,
    backend: Backend | None = None,
    cache: RequestCache | None = None,
) -> Client:
    """A `Client` with the recipe's policy; answers are cached at `cache_path` (or in `cache`).

    Pass `backend` / `cache` to share them: a teacher and its judge use one loaded model and one
    cache file."""
    if cache is None and cache_path is not None:
        cache = RequestCache(cache_path)
    prices = cfg.prices()
    return Client(
        backend if backend is not None else make_backend(cfg),
        cache=cache,
        concurrency=cfg.concurrency,
        max_retries=cfg.max_retries,
        max_parse_retries=cfg.max_parse_retries,
        requests_per_minute=cfg.requests_per_minute,
        tokens_per_minute=cfg.tokens_per_minute,
        price_prompt_per_1m=prices[0] if prices else None,
        price_completion_per_1m=prices[1] if prices else None,
        budget=budget,
    )


__all__ = [
    "Backend",
    "BackendSpec",
    "Budget",
    "Client",
    "FakeBackend",
    "ParseFailure",
    "Parsed",
    "Request",
    "RequestCache",
    "Response",
    "Spent",
    "backend_names",
    "backend_spec",
    "make_backend",
    "make_client",
    "register_backend",
    "retry_after",
    "canned_responders",
    "with_retry_after",
    "worst_case_tokens",
]
