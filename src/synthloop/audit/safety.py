"""What the card reports for a safety set: the harmful / look-alike balance and the refusal rates
measured on the generated records (not what the prompts asked for).

Groups come from each task's `refusal` policy: "expected" tasks are harmful requests, "forbidden"
tasks are benign look-alikes, the rest (misinformation, ordinary tasks) are "other". A reply
refuses when the curation DECLINE or REFUSAL pattern finds a decline in its assistant turn.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from synthloop.records import Record
from synthloop.storage import RunDir

GROUPS = {"expected": "harmful", "forbidden": "lookalike"}


def safety_summary(rd: RunDir) -> dict[str, Any]:
    """Balance and refusal rates of the accepted records, and what the refusal rule rejected.
    Call after the run's tasks are registered (loading its recipe does that)."""
    return summarize(list(rd.records("accepted")), list(rd.records("rejected")))


def summarize(accepted: list[Record], rejected: list[Record]) -> dict[str, Any]:
    from synthloop.curation.quality import DECLINE, REFUSAL, refusal_policy, reply_text

    counts: Counter[str] = Counter()
    refusing: Counter[str] = Counter()
    for r in accepted:
        group = GROUPS.get(refusal_policy(r.task), "other")
        counts[group] += 1
        reply = reply_text(r)
        refusing[group] += bool(DECLINE.search(reply) or REFUSAL.search(reply))
    pair = counts["harmful"] + counts["lookalike"]
    reasons = Counter(r.rejected_reason.split(":", 1)[0] for r in rejected if r.rejected_stage == "quality")
    return {
        "accepted": dict(sorted(counts.items())),
        "lookalike_share": round(counts["lookalike"] / pair, 4) if pair else None,
        "refusal_rate": {g: round(refusing[g] / counts[g], 4) if counts[g] else None for g in ("harmful", "lookalike", "other")},
        "rejected": {"over_refusal": reasons["over-refusal"], "no_refusal": reasons["no refusal"]},
    }


__all__ = ["GROUPS", "safety_summary", "summarize"]
