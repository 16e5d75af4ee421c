"""`synthloop run --dry-run`: the plan, how many requests it will send, an upper-bound token and
cost estimate, and a rehearsal of the whole pipeline on the fake backend. No model is called."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

from synthloop.pipeline.plan import cells, plan
from synthloop.recipe import Recipe
from synthloop.tasks import get_task, register_fake_answers

#: Rough characters per token for English prose and code (used only for estimates).
CHARS_PER_TOKEN = 4.0


def dry_run(recipe: Recipe) -> str:
    records = plan(recipe)
    gen_requests = 0
    prompt_tokens = 0
    for r in records:
        for req in get_task(r.task).requests(r, recipe.teacher, seed=0):
            gen_requests += 1
            prompt_tokens += int(sum(len(c) for _, c in req.messages) / CHARS_PER_TOKEN)
    judge_requests = len(records) if recipe.judge.enabled else 0
    t, j = recipe.teacher, recipe.judge_backend
    completion_tokens = gen_requests * t.max_tokens + judge_requests * j.max_tokens
    prompt_tokens += judge_requests * 400  # rubric + record, roughly
    # Parse retries can add up to max_parse_retries re-asks per request: report the ceiling too.
    worst = gen_requests * (1 + t.max_parse_retries)
    prices = t.prices()  # None: unknown, shown as unknown (never $0)
    cost = (prompt_tokens * prices[0] + completion_tokens * prices[1]) / 1e6 if prices else None
    per_task = Counter(r.task for r in records)
    lines = [
        f"recipe {recipe.name}: {len(cells(recipe))} cells -> {len(records)} records planned ({dict(per_task)})",
        f"teacher {t.backend}:{t.model}; judge {'off' if not recipe.judge.enabled else j.backend + ':' + j.model}",
        f"requests: {gen_requests} generation + {judge_requests} judge = {gen_requests + judge_requests} "
        f"(at most {worst + judge_requests} with every parse retry)",
        f"tokens (upper bound): ~{prompt_tokens} prompt + {completion_tokens} completion",
        f"estimated cost: ${cost:.4f} at ${prices[0]}/1M prompt, ${prices[1]}/1M completion"
        if prices and cost is not None
        else "estimated cost: unknown (set teacher.price_prompt_per_1m and price_completion_per_1m)",
        _rehearse(recipe),
    ]
    return "\n".join(lines)


def _rehearse(recipe: Recipe) -> str:
    """Run one chunk through every stage with the fake backend, in a throw-away directory."""
    from synthloop.backends.fake import FakeBackend
    from synthloop.engines.local import run_recipe
    from synthloop.verifiers.judge import register_fake_judge

    register_fake_answers()
    register_fake_judge()
    small = recipe.model_copy(deep=True)
    small.plan.max_records = min(len(plan(recipe)), recipe.output.shard_size)
    small.budget.max_cost_usd = None
    small.judge.backend = None
    with tempfile.TemporaryDirectory(prefix="synthloop-dry-") as tmp:
        result = run_recipe(small, runs_dir=Path(tmp), backend=FakeBackend())
    return (
        f"rehearsal on the fake backend: {result.planned} records through every stage -> "
        f"{result.accepted} accepted, {result.rejected} rejected (the stages are wired; no model was called)"
    )
