"""The ordered stage list, built in one place from the recipe:

    generate -> verify (the first registered verifier that applies to each record) -> judge
             -> curation (quality, PII, decontamination, memorisation, dedup: curation's registry)

Engines and the rounds loop call `build_stages`; nothing else decides which stages run or in what order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthloop.backends import Backend, Budget, RequestCache, make_backend, make_client
from synthloop.backends.client import Client
from synthloop.pipeline.generate import GenerateStage
from synthloop.pipeline.stage import Stage, VerifierStage
from synthloop.recipe import BackendConfig, Recipe


@dataclass
class StageResources:
    """What stages need from the run: the model clients and the golden texts (for memorisation)."""

    teacher: Client
    judge: Client
    judge_cfg: BackendConfig
    golden_texts: list[str] | None = None
    #: Runs a coroutine on the engine's loop (the judges' calibration talks to a model).
    run_async: Callable[[Coroutine[Any, Any, Any]], Any] | None = None
    #: The run directory (calibration results are cached there); None in a bare pipeline.
    run_dir: Path | None = None


def model_clients(recipe: Recipe, backend: Backend | None, cache: RequestCache, budget: Budget) -> tuple[Client, Client]:
    """The teacher's client and the judge's; the judge shares the teacher's backend (one loaded
    model) unless `[judge.backend]` names its own. The rounds loop and each Ray worker build theirs here."""
    teacher_backend = backend or make_backend(recipe.teacher)
    teacher = make_client(recipe.teacher, backend=teacher_backend, cache=cache, budget=budget)
    judge_cfg = recipe.judge_backend
    judge_backend = teacher_backend if recipe.judge.backend is None else make_backend(judge_cfg)
    return teacher, make_client(judge_cfg, backend=judge_backend, cache=cache, budget=budget)


def build_stages(recipe: Recipe, res: StageResources) -> list[Stage]:
    stages: list[Stage] = [GenerateStage(res.teacher, recipe.teacher, recipe)]
    stages += verify_stages(recipe)
    stages += judge_stages(recipe, res)
    stages += curation_stages(recipe, with_seed_texts(recipe, res.golden_texts))
    return stages


def verify_stages(recipe: Recipe) -> list[Stage]:
    from synthloop.verifiers.registry import build_verifiers

    verifiers = build_verifiers(recipe)
    return [VerifierStage(verifiers, stage="verify")] if verifiers else []


def judge_stages(recipe: Recipe, res: StageResources) -> list[Stage]:
    """One judge per task (its rubric), measured on its calibration set before it may gate:
    `prepare_judges` raises `JudgeNotCalibrated`, or marks a judge advisory (issue 8)."""
    if not recipe.judge.enabled:
        return []
    from synthloop.backends import make_client
    from synthloop.tasks import judge_rubric
    from synthloop.verifiers.calibration import CALIBRATION_FILE, prepare_judges
    from synthloop.verifiers.judge import LLMJudge
    from synthloop.verifiers.stages import JudgeStage

    cfg, jc = res.judge_cfg, recipe.judge
    panel = [(make_client(b, cache=res.judge.cache, budget=res.judge.budget), b.model) for b in jc.panel]
    judges = {
        task: LLMJudge(res.judge, rubric=judge_rubric(task) if jc.rubric == "auto" else jc.rubric, min_score=jc.min_score,
                       model=cfg.model, max_tokens=cfg.max_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
                       samples=jc.samples, panel=panel)
        for task in recipe.plan.tasks
        if jc.rubric != "auto" or judge_rubric(task) != "none"
    }
    cache_path = res.run_dir / CALIBRATION_FILE if res.run_dir is not None else None
    run_async = res.run_async or asyncio.run
    run_async(prepare_judges(judges.values(), jc, cache_path=cache_path))
    return [JudgeStage(judges)]


def with_seed_texts(recipe: Recipe, golden_texts: list[str] | None) -> list[str] | None:
    """The memorisation check's texts: the golden set's and the seed documents' chunks (a record
    written from a chunk must not copy a long span of it)."""
    if recipe.seeds is None:
        return golden_texts
    from synthloop.seeds import seed_texts

    return [*(golden_texts or []), *seed_texts(recipe.seeds)]


def curation_stages(recipe: Recipe, golden_texts: list[str] | None) -> list[Stage]:
    """The built-in curation stages, with registered filters after the per-record filters and
    before dedup (so dedup indexes only records that passed every filter)."""
    from synthloop.curation import build_curation_stages
    from synthloop.pipeline.filters import build_filters

    built = build_curation_stages(recipe.curate, golden_texts=golden_texts)
    cut = next((i for i, s in enumerate(built) if s.name.startswith("dedup")), len(built))
    return [*built[:cut], *build_filters(recipe), *built[cut:]]


__all__ = ["StageResources", "build_stages", "curation_stages", "judge_stages", "model_clients", "verify_stages"]
