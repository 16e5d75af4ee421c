"""Stages and the run context. A stage takes an iterator of records and yields the ones it keeps;
the ones it rejects go to `ctx.reject`, with the stage's name and a reason, and are counted."""

from synthloop.pipeline.context import RunContext, StageStats
from synthloop.pipeline.stage import (
    BatchStage,
    Filter,
    KeepResult,
    Stage,
    Verifier,
    VerifierStage,
    applies,
    run_stages,
    split_stages,
)

__all__ = ["BatchStage", "Filter", "KeepResult", "RunContext", "Stage", "StageStats", "Verifier", "VerifierStage", "applies", "run_stages", "split_stages"]
