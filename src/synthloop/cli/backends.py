"""`synthloop backends`: which backends exist and whether they work here.

    synthloop backends                      list backends and whether each is available
    synthloop backends test [RECIPE] [...]  send one short request through the client
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import time
from typing import Any

from pydantic import ValidationError

from synthloop.backends import Client, Request, Response, make_client
from synthloop.backends.registry import backend_names, backend_specs
from synthloop.errors import BackendError, RecipeError
from synthloop.recipe import BackendConfig, describe_validation_error, load_recipe

PROMPT = "Say hello in one short sentence."

def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("backends", help="list model backends, or test one with a single request")
    p.set_defaults(func=list_backends)
    sub = p.add_subparsers(dest="backends_command", metavar="SUBCOMMAND")
    t = sub.add_parser("test", help="send one short request and print model, latency, tokens and the reply")
    t.add_argument("recipe", nargs="?", help="recipe whose [teacher] section to test (default: the embedded local model)")
    t.add_argument("--backend", choices=sorted(backend_names()), help="override teacher.backend")
    t.add_argument("--model", help="override teacher.model")
    t.add_argument("--base-url", help="override teacher.base_url")
    t.add_argument("--api-key-env", help="name of the env var holding the API key (never the key itself)")
    t.set_defaults(func=test_backend)


def list_backends(args: argparse.Namespace) -> int:
    for spec in backend_specs():
        name, what, packages, install = spec.name, spec.description, spec.packages, spec.install
        missing = [pkg for pkg in packages if importlib.util.find_spec(pkg) is None]
        status = "available" if not missing else f"missing {', '.join(missing)} ({install})"
        print(f"{name:<14} {status:<10}  {what}")
    return 0


def backend_config(args: argparse.Namespace) -> BackendConfig:
    """The recipe's teacher section (or the default), with the command-line overrides applied."""
    base = load_recipe(args.recipe).teacher if args.recipe else BackendConfig()
    flags = {"backend": args.backend, "model": args.model, "base_url": args.base_url, "api_key_env": args.api_key_env}
    try:
        return BackendConfig.model_validate({**base.model_dump(), **{k: v for k, v in flags.items() if v is not None}})
    except ValidationError as e:
        raise RecipeError(f"teacher: {describe_validation_error(e)}") from None


def test_backend(args: argparse.Namespace) -> int:
    cfg = backend_config(args)
    # One retry at most: a test should report a dead server in seconds, not after the full backoff.
    client = make_client(cfg.model_copy(update={"max_retries": min(cfg.max_retries, 1)}), cache_path=None, budget=None)
    request = Request.chat([{"role": "user", "content": PROMPT}], model=cfg.model, temperature=cfg.temperature,
                           top_p=cfg.top_p, max_tokens=min(cfg.max_tokens, 48), tag="backends.test")
    started = time.perf_counter()
    answer = asyncio.run(_ask_once(client, request))
    latency = time.perf_counter() - started
    if isinstance(answer, BackendError):
        raise answer
    first_line = next((line for line in answer.text.splitlines() if line.strip()), "")
    print(f"backend   {cfg.backend}")
    print(f"model     {cfg.model}")
    print(f"latency   {latency:.2f} s")
    print(f"tokens    {answer.prompt_tokens} prompt + {answer.completion_tokens} completion")
    print(f"reply     {first_line}")
    return 0


async def _ask_once(client: Client, request: Request) -> Response | BackendError:
    async with client:
        return (await client.complete([request]))[0]
