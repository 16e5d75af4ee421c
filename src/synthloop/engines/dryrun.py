"""`synthloop run --dry-run`: the plan, how many requests it will send, an upper-bound token and
cost estimate (teacher and judge, each at its own prices), and a rehearsal of the whole pipeline
on the fake backend in a throw-away directory. No model is called."""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from synthloop.pipeline.plan import cells, plan, round_size
from synthloop.recipe import BackendConfig, Recipe
from synthloop.tasks import get_task

#: Rough characters per token for English prose and code (used only for estimates).
CHARS_PER_TOKEN = 4.0
#: A judge prompt holds the rubric, its worked examples and the record: measured on the built-in
#: rubrics, about this many tokens besides the record itself.
JUDGE_OVERHEAD_TOKENS = 400


@dataclass
class Estimate:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def cost(self, cfg: BackendConfig) -> float | None:
        """USD at the config's prices; None when the model's price is unknown (never $0)."""
        prices = cfg.prices()
        if prices is None:
            return None
        return (self.prompt_tokens * prices[0] + self.completion_tokens * prices[1]) / 1e6


def _usd(cost: float | None, rounds: int) -> str:
    return "unknown" if cost is None else f"${cost * rounds:.4f}"


def _price(cfg: BackendConfig) -> str:
    prices = cfg.prices()
    return "unknown prices (set price_prompt_per_1m and price_completion_per_1m)" if prices is None else \
        f"${prices[0]}/${prices[1]} per 1M"


def estimate(recipe: Recipe) -> tuple[Estimate, Estimate]:
    """Upper bounds for one round of the teacher's and the judge's requests (no parse retries)."""
    records = plan(recipe)
    gen, judge = Estimate(), Estimate()
    for r in records:
        task = get_task(r.task, recipe)
        for req in task.requests(r, recipe.teacher, seed=0):
            gen.requests += 1
            gen.prompt_tokens += int(sum(len(c) for _, c in req.messages) / CHARS_PER_TOKEN)
            gen.completion_tokens += req.max_tokens
    if recipe.judge.enabled:
        from synthloop.tasks import judge_rubric

        j = recipe.judge_backend
        auto = recipe.judge.rubric == "auto"
        judge.requests = sum(1 for r in records if not auto or judge_rubric(r.task) != "none") * recipe.judge.samples * (1 + len(recipe.judge.panel))
        # the judge reads what the teacher wrote: at most every completion token of the record
        judge.prompt_tokens = judge.requests * JUDGE_OVERHEAD_TOKENS + (gen.completion_tokens if judge.requests else 0)
        judge.completion_tokens = judge.requests * j.max_tokens
    return gen, judge


def dry_run(recipe: Recipe) -> str:
    records = plan(recipe)
    gen, judge = estimate(recipe)
    t, j = recipe.teacher, recipe.judge_backend
    rounds = recipe.rounds.count
    worst = gen.requests * (1 + t.max_parse_retries) + judge.requests * (1 + j.max_parse_retries)
    gen_cost, judge_cost = gen.cost(t), judge.cost(j) if judge.requests else 0.0
    total = None if gen_cost is None or judge_cost is None else gen_cost + judge_cost
    per_task = Counter(r.task for r in records)
    lines = [
        f"recipe {recipe.name}: {len(cells(recipe))} cells -> {len(records)} records planned ({dict(per_task)})"
        + (f" per round x {rounds} rounds = {round_size(recipe) * rounds}" if rounds > 1 else ""),
        f"teacher {t.backend}:{t.model}; judge {'off' if not recipe.judge.enabled else j.backend + ':' + j.model}",
        f"requests: {gen.requests} generation + {judge.requests} judge = {gen.requests + judge.requests} "
        f"{'per round ' if rounds > 1 else ''}(at most {worst} with every parse retry)",
        f"tokens per round (upper bound): teacher ~{gen.prompt_tokens} prompt + {gen.completion_tokens} completion; "
        f"judge ~{judge.prompt_tokens} prompt + {judge.completion_tokens} completion",
        f"estimated cost (upper bound, all rounds): {_usd(total, rounds)} (teacher {_usd(gen_cost, rounds)} at "
        f"{_price(t)}; judge {_usd(judge_cost, rounds)} at {_price(j)})",
        _rehearse(recipe),
    ]
    return "\n".join(lines)


def _rehearse(recipe: Recipe) -> str:
    """One chunk of one round through every stage on the fake backend, in a throw-away directory.
    Stop rules that only make sense on real data (the collapse check's stop, the budget) are off:
    canned answers are near-identical and would always 'collapse'."""
    from synthloop.backends.fake import FakeBackend, canned_responders
    from synthloop.rounds import run

    # `update` does not re-validate (assigning a top-level section would, without the recipe's folder)
    small = recipe.model_copy(deep=True, update={"student": None})
    small.plan.max_records = min(len(plan(recipe)), recipe.output.shard_size)
    small.rounds.count = 1
    small.rounds.records_per_round = None
    small.budget.max_cost_usd = None
    small.budget.max_tokens = None
    small.judge.backend = None
    small.engine.address = None
    small.engine.name = "local"  # Ray workers would build the recipe's real backends, not the fake one
    if small.collapse is not None:
        small.collapse.stop_on_fail = False
        small.collapse.embedder = "hash"  # the rehearsal proves the wiring; MiniLM would take a minute here
    with tempfile.TemporaryDirectory(prefix="synthloop-dry-") as tmp:
        result = run(small, runs_dir=Path(tmp), backend=FakeBackend(responders=canned_responders()))
    return (
        f"rehearsal on the fake backend: {result.planned} records through every stage -> "
        f"{result.accepted} accepted, {result.rejected} rejected (the stages are wired; no model was called)"
    )
