"""The ordered stage list, built in one place from the recipe:

    generate -> verify (the first registered verifier that applies to each record) -> judge
             -> curation (quality, PII, decontamination, memorisation, dedup: curation's registry)

Engines and the rounds loop call `build_stages`; nothing else decides which stages run or in what order."""

from __future__ import annotations

from dataclasses import dataclass

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
    if not recipe.judge.enabled:
        return []
    from synthloop.verifiers.judge import LLMJudge
    from synthloop.verifiers.stages import JudgeStage

    from synthloop.tasks import judge_rubric

    cfg = res.judge_cfg
    judges = {
        task: LLMJudge(res.judge, rubric=judge_rubric(task) if recipe.judge.rubric == "auto" else recipe.judge.rubric,
                       min_score=recipe.judge.min_score, model=cfg.model)
        for task in recipe.plan.tasks
    }
    return [JudgeStage(judges)]


def with_seed_texts(recipe: Recipe, golden_texts: list[str] | None) -> list[str] | None:
    """The memorisation check's texts: the golden set's and the seed documents' chunks (a record
    written from a chunk must not copy a long span of it)."""
    if recipe.seeds is None:
        return golden_texts
    from synthloop.seeds import seed_texts

    return [*(golden_texts or []), *seed_texts(recipe.seeds)]


def curation_stages(recipe: Recipe, golden_texts: list[str] | None) -> list[Stage]:
    from synthloop.curation import build_curation_stages

    return build_curation_stages(recipe.curate, golden_texts=golden_texts)


__all__ = ["StageResources", "build_stages", "curation_stages", "judge_stages", "verify_stages"]
