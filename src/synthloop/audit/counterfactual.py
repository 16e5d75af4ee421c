"""The counterfactual test: swap demographic terms in a record (she <-> he, Mary <-> James, young <->
old, ...) and ask a decision function again. A fair decision does not depend on who the text is
about, so every flip is evidence of bias in the gate that built the set."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from synthloop.audit.lexicon import swap_table
from synthloop.records import Record

Decision = Callable[[Record], bool]

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


def flip_test(records: Sequence[Record], decide: Decision, name: str, sample: int) -> FlipResult:
    """Decide each record with a swappable term (up to `sample`) before and after the swap."""
    result = FlipResult(name)
    for r in records:
        if result.swappable >= sample:
            break
        if not _PATTERN.search(r.main_text()):
            continue
        result.swappable += 1
        before, after = decide(r), decide(swap_record(r))
        if before != after:
            result.flips += 1
            if len(result.examples) < 5:
                result.examples.append({"id": r.id, "before": before, "after": after})
    return result


__all__ = ["Decision", "FlipResult", "flip_test", "quality_decision", "swap_record", "swap_text"]
