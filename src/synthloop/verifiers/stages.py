"""Verification stages: the code verifiers (ground truth by execution) and the judge (rubric).

The judge is a `BatchStage`: a chunk's judgements go out in one client call, so a shared backend
batches judgements of every rubric together. Each record is judged with its task's judge, and the
judge's tokens and cost are added to the record's usage, so a record knows everything it cost."""

from __future__ import annotations

from collections.abc import Mapping

from synthloop.pipeline.context import RunContext
from synthloop.pipeline.generate import usage_of
from synthloop.pipeline.stage import BatchStage, KeepResult
from synthloop.records import Record, Verdict
from synthloop.verifiers.judge import LLMJudge, judge_records


class JudgeStage(BatchStage):
    name = "judge"

    def __init__(self, judges: Mapping[str, LLMJudge]) -> None:
        self.judges = dict(judges)

    async def decide_batch(self, records: list[Record], ctx: RunContext) -> list[KeepResult | Verdict]:
        """Judge every record whose task has a judge (one call per client: a shared backend
        batches judgements of every rubric together); a task without a rubric is not judged,
        and its verdict says so."""
        judged = [i for i, r in enumerate(records) if r.task in self.judges]
        scored = await judge_records([(self.judges[records[i].task], records[i]) for i in judged]) if judged else []
        verdicts: list[KeepResult | Verdict] = [UNJUDGED] * len(records)
        for i, s in zip(judged, scored):
            records[i].usage.add(usage_of(s.judge.client, s.outcomes))
            verdicts[i] = s.judge.verdict_of(s)
        return verdicts


#: The verdict of a record whose task has no rubric: never called judged.
UNJUDGED = Verdict(stage="judge", name="judge", ok=True, score=None,
                   reason="unjudged: the task has no judge rubric (its truth comes from its own checks)")


__all__ = ["JudgeStage"]
