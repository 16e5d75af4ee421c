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
        # one call per client: a shared backend batches judgements of every rubric together
        scored = await judge_records([(self.judges[r.task], r) for r in records])
        verdicts: list[KeepResult | Verdict] = []
        for record, s in zip(records, scored):
            record.usage.add(usage_of(s.judge.client, s.outcomes))
            verdicts.append(s.judge.verdict_of(s))
        return verdicts


__all__ = ["JudgeStage"]
