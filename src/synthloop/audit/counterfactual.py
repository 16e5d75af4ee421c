"""The counterfactual test: swap demographic terms in a record (she <-> he, Mary <-> James, young <->
old, ...) and ask a decision function again. A fair decision does not depend on who the text is
about, so every flip is evidence of bias in the gate that built the set."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import TYPE_CHECKING, Any

from synthloop.audit.lexicon import swap_table
from synthloop.records import Record

if TYPE_CHECKING:
    from synthloop.verifiers.judge import LLMJudge

Decision = Callable[[Record], bool]
#: Decides many records at once (a judge batches its requests).
BatchDecision = Callable[[list[Record]], list[bool]]

_TABLE = swap_table()
_PATTERN = re.compile(r"(?<![\w-])(" + "|".join(sorted(map(re.escape, _TABLE), key=len, reverse=True)) + r")(?![\w-])",
                      re.I)


def swap_text(text: str) -> str:
    """`text` with every lexicon term replaced by its counterpart, keeping its capitalisation."""
    return _PATTERN.sub(_swap_match, text)


def _swap_match(m: re.Match[str]) -> str:
    word = m.group(0)
    other = _TABLE[word.lower()]
    if word.isupper() and len(word) > 1:
        return other.upper()
    return other.capitalize() if word[0].isupper() else other


def swap_record(r: Record) -> Record:
    """A copy of `r` with its text fields swapped (the original is untouched)."""
    return replace(r, text=swap_text(r.text), explanation=swap_text(r.explanation), problem=swap_text(r.problem),
                   reasoning=swap_text(r.reasoning), answer=swap_text(r.answer),
                   messages=[{**m, "content": swap_text(m.get("content", ""))} for m in r.messages],
                   verdicts=[])


def quality_decision() -> Decision:
    """The default decision: the curation quality filter's keep()."""
    from synthloop.curation.quality import QualityFilter

    flt = QualityFilter()
    return lambda r: flt.keep(r) is True


def judge_decision(judge: "LLMJudge") -> BatchDecision:
    """A judge's accept decision (median score >= its min_score; unparseable = reject), batched so
    the originals and their swapped copies go to the judge's client together."""
    import asyncio

    from synthloop.verifiers.judge import judge_records

    def decide(records: list[Record]) -> list[bool]:
        scored = asyncio.run(judge_records([(judge, r) for r in records]))
        return [s.score is not None and s.score >= judge.min_score for s in scored]

    return decide


def batched(decide: Decision) -> BatchDecision:
    return lambda records: [decide(r) for r in records]


@dataclass
class FlipResult:
    decision: str
    swappable: int = 0
    flips: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.flips / self.swappable if self.swappable else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"decision": self.decision, "swappable": self.swappable, "flips": self.flips,
                "flip_rate": round(self.rate, 6), "examples": self.examples}


def flip_test(records: Sequence[Record], decide: Decision | None, name: str, sample: int,
              decide_batch: BatchDecision | None = None) -> FlipResult:
    """Decide each record with a swappable term (up to `sample`) before and after the swap: with
    `decide` one record at a time, or with `decide_batch` all of them in one call."""
    chosen = list(islice((r for r in records if _PATTERN.search(r.main_text())), sample))
    run = decide_batch or batched(decide or quality_decision())
    decisions = run(chosen + [swap_record(r) for r in chosen]) if chosen else []
    result = FlipResult(name, swappable=len(chosen))
    for r, before, after in zip(chosen, decisions[:len(chosen)], decisions[len(chosen):]):
        if before != after:
            result.flips += 1
            if len(result.examples) < 5:
                result.examples.append({"id": r.id, "before": before, "after": after})
    return result

__all__ = ["BatchDecision", "Decision", "FlipResult", "batched", "flip_test", "judge_decision", "quality_decision", "swap_record", "swap_text"]
