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
    stages += curation_stages(recipe, res.golden_texts)
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

    cfg = res.judge_cfg
    judges = {
        task: LLMJudge(res.judge, rubric=task if recipe.judge.rubric == "auto" else recipe.judge.rubric,
                       min_score=recipe.judge.min_score, model=cfg.model)
        for task in recipe.plan.tasks
    }
    return [JudgeStage(judges)]


def curation_stages(recipe: Recipe, golden_texts: list[str] | None) -> list[Stage]:
    """The built-in curation stages, with registered filters after the per-record filters and
    before dedup (so dedup indexes only records that passed every filter)."""
    from synthloop.curation import build_curation_stages
    from synthloop.pipeline.filters import build_filters

    built = build_curation_stages(recipe.curate, golden_texts=golden_texts)
    cut = next((i for i, s in enumerate(built) if s.name.startswith("dedup")), len(built))
    return [*built[:cut], *build_filters(recipe), *built[cut:]]


__all__ = ["StageResources", "build_stages", "curation_stages", "judge_stages", "verify_stages"]
