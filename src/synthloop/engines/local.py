"""The local engine: runs a recipe's stages in this process, chunk by chunk, and commits each chunk
to the run directory before it starts the next. An engine decides where stages run, never what
they do.

Per chunk: generate -> verify (ground truth) -> judge (rubric) -> curate -> commit shards ->
mark the chunk done in the manifest. Killing the process at any point and running again redoes
at most the chunk in flight, with every answered request served from the cache.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthloop.backends import make_backend, make_client
from synthloop.backends.cache import RequestCache
from synthloop.backends.client import Budget, Client
from synthloop.curation import build_curation_stages
from synthloop.engines.aio import LoopThread
from synthloop.engines.generate import generate_chunk, usage_of
from synthloop.errors import BudgetExceeded
from synthloop.grounding import GoldenSet, GroundingConfig, build_mix, golden_texts, load_golden, write_mix
from synthloop.pipeline import RunContext, Stage, VerifierStage, run_stages
from synthloop.pipeline.plan import plan
from synthloop.recipe import BackendConfig, Recipe
from synthloop.records import Record
from synthloop.storage import RunDir, read_records, write_shard
from synthloop.verifiers.judge import judge_records

log = logging.getLogger("synthloop")

#: Called after each committed chunk with (accepted so far, rejected so far, planned).
ProgressFn = Callable[[int, int, int], None]


@dataclass
class RunResult:
    run_dir: Path
    planned: int
    accepted: int
    rejected: int
    finished: bool
    stopped_reason: str = ""
    requests_sent: int = 0
    requests_reused: int = 0
    stats: dict[str, Any] = field(default_factory=dict)


def run_recipe(
    recipe: Recipe,
    *,
    runs_dir: Path | None = None,
    progress: ProgressFn | None = None,
    backend: Any = None,
) -> RunResult:
    """Run (or resume) a recipe. `backend` overrides the teacher backend (tests, --dry-run)."""
    records = plan(recipe)
    if backend is not None or "fake" in (recipe.teacher.backend, recipe.judge_backend.backend):
        _register_fake_answers()
    rd = RunDir(recipe.run_dir(runs_dir))
    manifest = rd.start(recipe, planned=len(records))
    done_chunks = set(manifest["completed_chunks"])
    chunks = list(_chunks(records, recipe.output.shard_size))

    cache = RequestCache(rd.cache_path)
    spent = manifest.get("spent", {})
    budget = Budget(
        recipe.budget.max_cost_usd,
        recipe.budget.max_tokens,
        spent_cost_usd=float(spent.get("cost_usd", 0.0)),
        spent_tokens=int(spent.get("tokens", 0)),
    )
    teacher_backend = backend or make_backend(recipe.teacher)
    teacher = make_client(recipe.teacher, backend=teacher_backend, cache=cache, budget=budget)
    judge_cfg = recipe.judge_backend
    judge_backend = teacher_backend if recipe.judge.backend is None else make_backend(judge_cfg)
    judge_client = make_client(judge_cfg, backend=judge_backend, cache=cache, budget=budget)

    io = LoopThread()
    ctx = RunContext(round=0, run_dir=rd.path)
    # The collapse check needs a golden set too; without [grounding] it uses the built-in one.
    needs_golden = recipe.grounding is not None or recipe.collapse is not None
    golden = load_golden(recipe.grounding or GroundingConfig()) if needs_golden else None
    stages = _verify_stages(recipe, judge_client, judge_cfg, io, rd.path) + build_curation_stages(
        recipe.curate, golden_texts=golden_texts(golden) if golden is not None else None
    )
    _seed_stages(stages, rd, done_chunks)

    stopped = ""
    try:
        for index, chunk in enumerate(chunks):
            if index in done_chunks:
                continue
            accepted, rejected = _process_chunk(chunk, recipe, teacher, stages, ctx, io)
            _commit(rd, manifest, index, accepted, rejected, budget)
            if progress:
                progress(*_counts(manifest))
        if recipe.grounding is not None and golden is not None:
            _write_mix(rd, recipe, golden, manifest)
        if recipe.collapse is not None and golden is not None:
            _check_collapse(rd, recipe, golden, manifest)
    except BudgetExceeded as e:
        stopped = str(e)
    except KeyboardInterrupt:
        stopped = "interrupted"
        raise
    finally:
        manifest["finished"] = len(manifest["completed_chunks"]) == len(chunks)
        if manifest["finished"]:
            names = {"plan", "generate", *(s.name for s in stages), "publish"}
            manifest["stages_completed"] = sorted(set(manifest["stages_completed"]) | names)
        manifest["stopped_reason"] = stopped
        _record_session(manifest, teacher, judge_client)
        rd.write_manifest(manifest)
        io.run(_close(teacher, judge_client))
        io.close()
        cache.close()
        from synthloop.reports.publish import publish

        publish(rd)

    acc, rej, planned = _counts(manifest)
    return RunResult(
        run_dir=rd.path,
        planned=planned,
        accepted=acc,
        rejected=rej,
        finished=manifest["finished"],
        stopped_reason=stopped,
        requests_sent=manifest["last_session"]["sent"],
        requests_reused=manifest["last_session"]["reused"],
        stats={k: v.to_dict() for k, v in ctx.stats.items()},
    )


def _record_session(manifest: dict[str, Any], *clients: Client) -> None:
    """Requests this invocation sent and reused (shown by the CLI), and the run's running totals."""
    session = {
        "sent": sum(c.usage.requests for c in clients),
        "reused": sum(c.usage.cached_requests for c in clients),
    }
    totals = manifest.setdefault("requests", {"sent": 0, "reused": 0})
    for key, n in session.items():
        totals[key] += n
    manifest["last_session"] = session


def _write_mix(rd: RunDir, recipe: Recipe, golden: GoldenSet, manifest: dict[str, Any]) -> None:
    """The training mix: every golden training row plus accepted synthetic rows, by the policy."""
    assert recipe.grounding is not None
    synthetic = list(read_records(rd.accepted_dir))
    mix = build_mix(golden, {0: synthetic}, recipe.grounding, round=0, seed=recipe.seed)
    write_mix(mix, rd.mix_dir)
    manifest["mix"] = mix.stats.to_dict()
    manifest["stages_completed"] = sorted(set(manifest["stages_completed"]) | {"mix"})


def _check_collapse(rd: RunDir, recipe: Recipe, golden: GoldenSet, manifest: dict[str, Any]) -> None:
    """Collapse indicators of the accepted data against the golden set; written before enforced,
    so a failing run still leaves its report (and the card says why it stopped)."""
    from synthloop.collapse import CollapseMonitor, write_report

    assert recipe.collapse is not None
    monitor = CollapseMonitor.for_run(recipe.collapse, rd.path)
    texts = [r.main_text() for r in read_records(rd.accepted_dir)]
    if not texts:
        manifest["collapse"] = {"status": "skipped", "reasons": ["no accepted records to measure"]}
        return
    report = monitor.check(texts, golden_texts(golden, split="train"), golden_texts(golden, split="heldout"), round=0)
    write_report(report, rd.path / recipe.collapse.report)
    manifest["collapse"] = {"status": report.status, "reasons": report.reasons}
    monitor.enforce(report)


def _register_fake_answers() -> None:
    from synthloop.tasks import register_fake_answers
    from synthloop.verifiers.judge import register_fake_judge

    register_fake_answers()
    register_fake_judge()


def _verify_stages(recipe: Recipe, judge_client: Client, judge_cfg: BackendConfig, io: LoopThread, run_dir: Path) -> list[Stage]:
    from synthloop.verifiers import LLMJudge, PythonCodeVerifier, PythonSnippetVerifier
    from synthloop.verifiers.calibration import CALIBRATION_FILE, prepare_judges

    stages: list[Stage] = []
    if recipe.verify.code:
        limits = {"timeout_s": recipe.verify.timeout_s, "memory_mb": recipe.verify.memory_mb}
        stages.append(CodeVerifyStage(PythonCodeVerifier(**limits), PythonSnippetVerifier(**limits)))
    if recipe.judge.enabled:
        rubrics = {t: (t if recipe.judge.rubric == "auto" else recipe.judge.rubric) for t in recipe.plan.tasks}
        panel = [(make_client(b, cache=judge_client.cache, budget=judge_client.budget), b.model) for b in recipe.judge.panel]
        judges = {
            task: LLMJudge(judge_client, rubric=rubric, min_score=recipe.judge.min_score, model=judge_cfg.model,
                           samples=recipe.judge.samples, panel=panel)
            for task, rubric in rubrics.items()
        }
        # Measured before it may gate: raises JudgeNotCalibrated, or marks advisory judges (issue 8).
        io.run(prepare_judges(judges.values(), recipe.judge, cache_path=run_dir / CALIBRATION_FILE))
        stages.append(JudgeStage(judges, io))
    return stages


class CodeVerifyStage(Stage):
    """Ground truth by execution: a record with a reference solution and tests runs its tests;
    any other record runs the Python examples it shows (an instruction answer's snippets)."""

    name = "verify"

    def __init__(self, tests: Any, snippets: Any) -> None:
        self.tests = VerifierStage(tests, stage="verify")
        self.snippets = VerifierStage(snippets, stage="verify")

    def run(self, records: Any, ctx: RunContext) -> Iterator[Record]:
        for r in records:
            inner = self.tests if (r.answer and r.tests) else self.snippets
            yield from inner.run([r], ctx)


class JudgeStage(Stage):
    """Scores a chunk in one batch (the judge is a model: batching keeps it busy), each record
    with its task's judge (rubric). The judge's tokens and cost are added to each record's usage,
    so a record knows everything it cost."""

    name = "judge"

    def __init__(self, judges: dict[str, Any], io: LoopThread) -> None:
        self.judges = judges
        self.io = io

    def run(self, records: Any, ctx: RunContext) -> Iterator[Record]:
        batch = list(records)
        if not batch:
            return
        stats = ctx.stage_stats(self.name)
        with ctx.timer(self.name):
            parsed = self.io.run(self._judge_all(batch))
        for record, scored in zip(batch, parsed):
            stats.seen += 1
            verdict = scored.judge.verdict_of(scored)
            record.add_verdict(verdict)
            record.usage.add(usage_of(scored.judge.client, scored.outcomes))
            if verdict.ok:
                stats.kept += 1
                yield record
            else:
                ctx.reject(record, self.name, verdict.reason or "judge_rejected")

    async def _judge_all(self, batch: list[Record]) -> list[Any]:
        # one client call: a shared backend batches judgements of every rubric together
        return await judge_records([(self.judges[r.task], r) for r in batch])


def _process_chunk(
    chunk: list[Record], recipe: Recipe, teacher: Client, stages: list[Stage], ctx: RunContext, io: LoopThread
) -> tuple[list[Record], list[Record]]:
    rejected: list[Record] = []
    ctx.on_reject = rejected.append
    fresh = [Record.from_dict(r.to_dict()) for r in chunk]  # a redone chunk starts from the plan
    generated = io.run(generate_chunk(fresh, teacher, recipe.teacher, ctx))
    accepted = list(run_stages(generated, stages, ctx))
    for r in accepted:
        r.status = "accepted"
    return accepted, rejected


def _commit(rd: RunDir, manifest: dict[str, Any], index: int, accepted: list[Record], rejected: list[Record], budget: Budget) -> None:
    """Shards first, then the manifest: a chunk is done only once its data is on disk."""
    name = rd.shard_name(index)
    for folder, rows in ((rd.accepted_dir, accepted), (rd.rejected_dir, rejected)):
        path = folder / name
        if rows:
            write_shard(rows, path)
        else:
            path.unlink(missing_ok=True)
    counts = manifest.setdefault("chunk_counts", {})
    counts[str(index)] = [len(accepted), len(rejected)]
    manifest["completed_chunks"] = sorted(set(manifest["completed_chunks"]) | {index})
    manifest["spent"] = {"cost_usd": budget.spent_cost_usd, "tokens": budget.spent_tokens}
    rd.write_manifest(manifest)


def _counts(manifest: dict[str, Any]) -> tuple[int, int, int]:
    counts = manifest.get("chunk_counts", {}).values()
    return sum(a for a, _ in counts), sum(r for _, r in counts), int(manifest["planned"])


def _seed_stages(stages: list[Stage], rd: RunDir, done: set[int]) -> None:
    """On resume, stateful stages (dedup) re-learn what the committed chunks accepted."""
    seeders = [s for s in stages if hasattr(s, "seed")]
    if not seeders or not done:
        return
    previous = list(read_records(rd.accepted_dir))
    for s in seeders:
        s.seed(previous)  # type: ignore[attr-defined]


def _chunks(records: list[Record], size: int) -> Iterator[list[Record]]:
    for i in range(0, len(records), size):
        yield records[i : i + size]


async def _close(*clients: Client) -> None:
    seen: set[int] = set()
    for c in clients:
        if id(c.backend) not in seen:
            seen.add(id(c.backend))
            await c.aclose()
