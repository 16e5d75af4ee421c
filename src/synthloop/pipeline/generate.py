"""The generate stage: planned records in, records with content out (or rejected with a reason).

A `BatchStage`: every request of a chunk is in flight together, so a batched local model or a
remote server is kept busy. One task's templates are sent as one batch each."""

from __future__ import annotations

import asyncio
from typing import Any

from synthloop.backends.client import Client, Parsed
from synthloop.pipeline.context import RunContext
from synthloop.pipeline.stage import BatchStage, KeepResult
from synthloop.recipe import BackendConfig, Recipe
from synthloop.records import SYNTHETIC_NOTICE, Record, Usage, Verdict
from synthloop.tasks import Task, get_task


class GenerateStage(BatchStage):
    name = "generate"

    def __init__(self, client: Client, cfg: BackendConfig, recipe: Recipe) -> None:
        self.client = client
        self.cfg = cfg
        self.recipe = recipe
        self._tasks: dict[str, Task] = {}

    def task(self, name: str) -> Task:
        if name not in self._tasks:
            self._tasks[name] = get_task(name, self.recipe)
        return self._tasks[name]

    async def decide_batch(self, records: list[Record], ctx: RunContext) -> list[KeepResult | Verdict]:
        by_task: dict[str, list[int]] = {}
        for i, r in enumerate(records):
            by_task.setdefault(r.task, []).append(i)
        results: list[KeepResult | Verdict] = [False] * len(records)
        groups = [(name, [records[i] for i in idx]) for name, idx in by_task.items()]
        outcomes = await asyncio.gather(*(self._generate(self.task(name), recs) for name, recs in groups))
        for (_, idx), decided in zip(by_task.items(), outcomes):
            for i, result in zip(idx, decided):
                results[i] = result
        return results

    async def _generate(self, task: Task, records: list[Record]) -> list[KeepResult]:
        per_record = [task.requests(r, self.cfg, seed=int(r.meta.get("seed", 0))) for r in records]
        parsers = task.parsers()
        results: list[list[Parsed[Any]]] = await asyncio.gather(
            *(self.client.complete_parsed([reqs[i] for reqs in per_record], parsers[i]) for i in range(len(parsers)))
        )
        return [self._fill(task, record, [results[i][j] for i in range(len(parsers))]) for j, record in enumerate(records)]

    def _fill(self, task: Task, record: Record, outcomes: list[Parsed[Any]]) -> KeepResult:
        record.teacher = task.teacher(self.cfg)
        record.usage = usage_of(self.client, outcomes)
        failed = next((o for o in outcomes if not o.ok), None)
        if failed is not None:
            return False, failed.reason or "generation_failed"
        task.apply(record, [o.value for o in outcomes])
        record.synthetic_notice = SYNTHETIC_NOTICE.format(model=f"{self.cfg.backend}:{self.cfg.model}")
        return True


def usage_of(client: Client, outcomes: list[Parsed[Any]]) -> Usage:
    """Tokens, cost and requests behind these outcomes (every parse attempt counts)."""
    u = Usage()
    for o in outcomes:
        for resp in o.responses:
            u.prompt_tokens += resp.prompt_tokens
            u.completion_tokens += resp.completion_tokens
            u.cost_usd += client.cost(resp)
            u.requests += 1
            u.cached_requests += int(resp.cached)
    return u


__all__ = ["GenerateStage", "usage_of"]
