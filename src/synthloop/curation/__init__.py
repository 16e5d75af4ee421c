"""Curation: quality filters, PII scrubbing, decontamination, memorisation check and dedup.

`build_curation_stages(cfg)` turns the recipe's `[curate]` section into the ordered stage list
that `synthloop run` and `synthloop curate` both use. Dedup stages keep their index across calls
of `run` (the engine feeds chunk after chunk) and offer `seed(records)` for a resumed run.
"""

from __future__ import annotations

from synthloop.curation.config import CurateConfig
from synthloop.curation.decontam import Decontaminate, MemorizationCheck, OverlapIndex
from synthloop.curation.exact import ExactDedup, text_key
from synthloop.curation.minhash import NearDedup, near_duplicate_clusters, signatures
from synthloop.curation.pii import PIIScrubber, PIIStage
from synthloop.curation.quality import QualityFilter
from synthloop.curation.semantic import SemanticDedup, load_embedder
from synthloop.curation.text import normalize
from synthloop.pipeline import Stage


def build_curation_stages(cfg: CurateConfig, *, golden_texts: list[str] | None = None,
                          memorization_sources: tuple[str, ...] = ("synthetic",)) -> list[Stage]:
    """The stages `cfg` switches on, in run order: per-record filters first (quality, PII,
    decontamination, memorisation), dedup last, so the dedup indexes only hold records that
    passed everything else. Eval sets are read here: a missing file fails before any work."""
    stages: list[Stage] = []
    if cfg.quality_filters:
        stages.append(QualityFilter(cfg.quality))
    if cfg.pii:
        stages.append(PIIStage(cfg.pii_detect))
    if cfg.decontam.eval_sets:
        stages.append(Decontaminate.from_config(cfg.decontam))
    if cfg.memorization and golden_texts:
        stages.append(MemorizationCheck(golden_texts, cfg.memorize, sources=memorization_sources))
    if cfg.exact_dedup:
        stages.append(ExactDedup())
    if cfg.near_dedup:
        stages.append(NearDedup(cfg.near))
    if cfg.semantic_dedup:
        stages.append(SemanticDedup(cfg.semantic))
    return stages


__all__ = [
    "CurateConfig",
    "Decontaminate",
    "ExactDedup",
    "MemorizationCheck",
    "NearDedup",
    "OverlapIndex",
    "PIIScrubber",
    "PIIStage",
    "QualityFilter",
    "SemanticDedup",
    "build_curation_stages",
    "load_embedder",
    "near_duplicate_clusters",
    "normalize",
    "signatures",
    "text_key",
]
