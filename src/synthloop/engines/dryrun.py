"""`synthloop run --dry-run`: the plan, how many requests it will send, an upper-bound token and
cost estimate (teacher and judge, each at its own prices), and a rehearsal of the whole pipeline
on the fake backend in a throw-away directory. No model is called, unless `--preview N`: then N
planned records are generated (and judged) for real, and the measured output lengths give a
typical (median), high (90th percentile) and worst-case (max_tokens) cost."""

from __future__ import annotations

import asyncio
import math
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthloop.pipeline.plan import cells, plan, round_size
from synthloop.recipe import BackendConfig, Recipe
from synthloop.records import Record, Usage
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


def dry_run(recipe: Recipe, preview_n: int = 0, runs_dir: Path | None = None) -> str:
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
    if preview_n > 0:
        lines += preview_lines(recipe, preview_n, runs_dir)
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


# -- `--dry-run --preview N`: measured output lengths ------------------------------------------

@dataclass
class Measured:
    """Tokens per record of one side (teacher or judge), from real answers."""

    prompt: list[int]
    completion: list[int]
    requests: int = 0
    cached: int = 0

    def at(self, q: float) -> tuple[int, int]:
        """(prompt, completion) tokens per record at quantile `q` (0.5: the median)."""
        return _quantile(self.prompt, q), _quantile(self.completion, q)


def _quantile(values: list[int], q: float) -> int:
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def preview_records(recipe: Recipe, n: int) -> list[Record]:
    """N planned records spread evenly over the plan (every task and cell has its chance)."""
    records = plan(recipe)
    step = max(1, len(records) // max(1, n))
    return records[::step][:n]


def preview(recipe: Recipe, n: int, runs_dir: Path | None = None) -> tuple[Measured, Measured]:
    """Send N planned records' requests for real (teacher, then judge) through the run's client:
    the answers go to the run directory's cache (the real run reuses them) and count against the
    budget (its ledger is that cache's)."""
    from synthloop.backends import Budget, RequestCache, make_backend, make_client
    from synthloop.storage import RunDir

    cache = RequestCache(RunDir(recipe.run_dir(runs_dir)).cache_path)
    spent = cache.spent()
    budget = Budget(recipe.budget.max_cost_usd, recipe.budget.max_tokens, spent_cost_usd=spent.cost_usd or 0.0, spent_tokens=spent.tokens)
    teacher_backend = make_backend(recipe.teacher)
    teacher = make_client(recipe.teacher, backend=teacher_backend, cache=cache, budget=budget)
    judge_backend = teacher_backend if recipe.judge.backend is None else make_backend(recipe.judge_backend)
    judge = make_client(recipe.judge_backend, backend=judge_backend, cache=cache, budget=budget)
    try:
        return asyncio.run(_preview(recipe, preview_records(recipe, n), teacher, judge))
    finally:
        cache.close()


async def _preview(recipe: Recipe, records: list[Record], teacher: Any, judge: Any) -> tuple[Measured, Measured]:
    from synthloop.pipeline.context import RunContext
    from synthloop.pipeline.generate import GenerateStage

    try:
        ctx = RunContext()
        results = await GenerateStage(teacher, recipe.teacher, recipe).decide_batch(records, ctx)
        gen = _measured([r.usage for r in records])
        written = [r for r, ok in zip(records, results) if ok is True]
        judged = await _judge_usage(recipe, written, judge) if recipe.judge.enabled else []
        return gen, _measured(judged)
    finally:
        await teacher.backend.aclose()
        await judge.backend.aclose()


async def _judge_usage(recipe: Recipe, records: list[Record], client: Any) -> list[Usage]:
    """What judging each record costs: the recipe's judge (its rubric per task, samples and
    panel), not calibrated here (calibration is a one-off cost the dry run does not estimate)."""
    from synthloop.backends import make_client
    from synthloop.pipeline.generate import usage_of
    from synthloop.tasks import judge_rubric
    from synthloop.verifiers.judge import LLMJudge, judge_records

    jc, cfg = recipe.judge, recipe.judge_backend
    panel = [(make_client(b, cache=client.cache, budget=client.budget), b.model) for b in jc.panel]
    pairs = []
    for r in records:
        rubric = judge_rubric(r.task) if jc.rubric == "auto" else jc.rubric
        if rubric != "none":
            pairs.append((LLMJudge(client, rubric=rubric, min_score=jc.min_score, model=cfg.model, max_tokens=cfg.max_tokens,
                                   temperature=cfg.temperature, top_p=cfg.top_p, samples=jc.samples, panel=panel), r))
    try:
        return [usage_of(s.judge.client, s.outcomes) for s in await judge_records(pairs)] if pairs else []
    finally:
        for c, _ in panel:
            await c.backend.aclose()


def _measured(usages: list[Usage]) -> Measured:
    return Measured([u.prompt_tokens for u in usages], [u.completion_tokens for u in usages],
                    sum(u.requests for u in usages), sum(u.cached_requests for u in usages))


def preview_lines(recipe: Recipe, n: int, runs_dir: Path | None = None) -> list[str]:
    """The measured estimate: typical (median), high (90th percentile) and worst case
    (every request at max_tokens, the upper bound above), teacher and judge at their prices."""
    gen, judge = preview(recipe, n, runs_dir)
    upper_gen, upper_judge = estimate(recipe)
    records = len(plan(recipe))
    per_record = recipe.judge.samples * (1 + len(recipe.judge.panel))
    judged = upper_judge.requests // per_record if judge.completion else 0  # records the judge reads
    rounds = recipe.rounds.count
    lines = [f"preview: {len(gen.completion)} records sent for real ({gen.requests + judge.requests} requests, "
             f"{gen.cached + judge.cached} of them from the cache); their answers are cached for the run and counted in its budget"]
    for label, q in (("typical (median)", 0.5), ("high (90th percentile)", 0.9)):
        (gp, gc), (jp, jcomp) = gen.at(q), judge.at(q)
        g = Estimate(upper_gen.requests, gp * records, gc * records)
        j = Estimate(upper_judge.requests, jp * judged, jcomp * judged)
        lines.append(f"  {label}: {_usd(_total(recipe, g, j), rounds)} (teacher {gc} completion tokens a record, "
                     f"judge {jcomp}; {_usd(g.cost(recipe.teacher), rounds)} + {_usd(j.cost(recipe.judge_backend) if judged else 0.0, rounds)})")
    lines.append(f"  worst case (every request at max_tokens): {_usd(_total(recipe, upper_gen, upper_judge), rounds)}")
    return lines


def _total(recipe: Recipe, gen: Estimate, judge: Estimate) -> float | None:
    """Teacher + judge in USD; None (unknown) when either price is unknown and it is used."""
    g = gen.cost(recipe.teacher)
    j = judge.cost(recipe.judge_backend) if judge.requests and judge.completion_tokens + judge.prompt_tokens else 0.0
    return None if g is None or j is None else g + j
