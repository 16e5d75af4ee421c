"""The generate stage: planned records in, records with content out (or rejected with a reason).

It is async because the client is: every request of a chunk is in flight together, so a batched
local model or a remote server is kept busy. One task's templates are sent as one batch each.
"""

from __future__ import annotations

import asyncio
from typing import Any

from synthloop.backends.client import Client, Parsed
from synthloop.pipeline.context import RunContext
from synthloop.recipe import BackendConfig
from synthloop.records import SYNTHETIC_NOTICE, Record, Usage
from synthloop.tasks import get_task

STAGE = "generate"


async def generate_chunk(records: list[Record], client: Client, cfg: BackendConfig, ctx: RunContext) -> list[Record]:
    """Fill each record via its task; rejected records go to `ctx.reject`. Returns the kept ones."""
    by_task: dict[str, list[Record]] = {}
    for r in records:
        by_task.setdefault(r.task, []).append(r)
    kept_ids: set[str] = set()
    await asyncio.gather(*(_generate_task(name, recs, client, cfg, ctx, kept_ids) for name, recs in by_task.items()))
    stats = ctx.stage_stats(STAGE)
    stats.seen += len(records)
    stats.kept += len(kept_ids)
    return [r for r in records if r.id in kept_ids]


async def _generate_task(
    name: str, records: list[Record], client: Client, cfg: BackendConfig, ctx: RunContext, kept: set[str]
) -> None:
    task = get_task(name)
    per_record = [task.requests(r, cfg, seed=int(r.meta.get("seed", 0))) for r in records]
    parsers = task.parsers()
    results: list[list[Parsed[Any]]] = await asyncio.gather(
        *(client.complete_parsed([reqs[i] for reqs in per_record], parsers[i]) for i in range(len(parsers)))
    )
    for j, record in enumerate(records):
        outcomes = [results[i][j] for i in range(len(parsers))]
        record.teacher = task.teacher(cfg)
        record.usage = usage_of(client, outcomes)
        failed = next((o for o in outcomes if not o.ok), None)
        if failed is not None:
            ctx.reject(record, STAGE, failed.reason or "generation_failed")
            continue
        task.apply(record, [o.value for o in outcomes])
        record.synthetic_notice = SYNTHETIC_NOTICE.format(model=f"{cfg.backend}:{cfg.model}")
        kept.add(record.id)


def usage_of(client: Client, outcomes: list[Parsed[Any]]) -> Usage:
    u = Usage()
    for o in outcomes:
        for resp in o.responses:
            u.prompt_tokens += resp.prompt_tokens
            u.completion_tokens += resp.completion_tokens
            u.cost_usd += client.cost(resp)
            u.requests += 1
            u.cached_requests += int(resp.cached)
    return u
