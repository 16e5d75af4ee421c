"""Natural vs synthetic, measured: the seeds' comparison table filled with a run's own figures
against a golden set. Availability, cost, privacy, accuracy, diversity and structure, each a few
numbers with where they come from; `compare.json` in the run directory is what the card may read.

Only reads: the run's manifest, stats and records, and the golden set.
"""

from __future__ import annotations

import json
import random
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from synthloop.records import Record
from synthloop.storage import RunDir, atomic_write_text

COMPARE_FILE = "compare.json"
#: Verdict reason prefixes that mean the verifier decided nothing about the record.
UNDECIDED = ("unchecked", "advisory", "unjudged")
#: Texts per side for the diversity indicators (distinct-n depends on sample size: both sides equal).
DIVERSITY_SAMPLE = 2000


def compare_run(rd: RunDir, golden: Sequence[Record], golden_name: str) -> dict[str, Any]:
    """The table for the run in `rd` against `golden` (its human records)."""
    accepted = list(rd.records("accepted"))
    rejected = list(rd.records("rejected"))
    return {
        "run": str(rd.path), "golden": golden_name,
        "records": {"accepted": len(accepted), "rejected": len(rejected), "golden": len(golden)},
        "availability": availability(rd, len(accepted), len(golden)),
        "cost": cost(accepted + rejected, len(accepted)),
        "privacy": {"synthetic": pii_rate(accepted), "golden": pii_rate(golden)},
        "accuracy": accuracy(accepted + rejected),
        "diversity": _diversity_pair(accepted, golden),
        "structure": {"synthetic": structure(accepted), "golden": structure(golden)},
    }


def availability(rd: RunDir, accepted: int, golden: int) -> dict[str, Any]:
    """Accepted records per hour of pipeline work (per-stage seconds of stats/round-*.json summed)."""
    seconds = 0.0
    for path in sorted((rd.path / "stats").glob("round-*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        seconds += sum(float(s.get("seconds", 0.0)) for s in data.values() if isinstance(s, dict))
    per_hour = accepted / (seconds / 3600) if seconds > 0 else None
    return {"synthetic_records_per_hour": _r(per_hour), "work_seconds": round(seconds, 3),
            "golden_records": golden, "basis": "accepted records / summed stage seconds; golden: its fixed size"}


def cost(records: Sequence[Record], accepted: int) -> dict[str, Any]:
    """USD and tokens per accepted record, from every record's usage (rejected ones were paid for too)."""
    usd = sum(r.usage.cost_usd for r in records)
    tokens = sum(r.usage.prompt_tokens + r.usage.completion_tokens for r in records)
    return {"usd_total": round(usd, 6), "tokens_total": tokens,
            "usd_per_accepted": _r(usd / accepted if accepted else None),
            "tokens_per_accepted": _r(tokens / accepted if accepted else None),
            "requests": sum(r.usage.requests for r in records),
            "cached_requests": sum(r.usage.cached_requests for r in records)}


def pii_rate(records: Sequence[Record]) -> dict[str, Any]:
    """PII findings per 1,000 records (curation's detectors in detect mode: nothing is changed)."""
    from synthloop.curation.pii import PIIScrubber

    scrubber = PIIScrubber()
    kinds: dict[str, int] = {}
    with_pii = 0
    for r in records:
        found = scrubber.find(r.main_text())
        with_pii += bool(found)
        for k, n in found.items():
            kinds[k] = kinds.get(k, 0) + n
    n = len(records)
    return {"records_with_pii_per_1000": _r(1000 * with_pii / n if n else None),
            "findings_per_1000": _r(1000 * sum(kinds.values()) / n if n else None), "by_kind": dict(sorted(kinds.items()))}


def accuracy(records: Sequence[Record]) -> dict[str, Any]:
    """Per verifier, the pass rate over the records it actually decided. Verdicts that decided
    nothing are counted apart, never as passes: `unchecked:` (nothing checkable), `advisory:` (an
    uncalibrated judge that only advised), `unjudged:` (a task without a rubric). The judge's mean
    score is over gating verdicts; an advisory judge's mean is reported separately."""
    decided: dict[str, list[bool]] = {}
    undecided: dict[str, dict[str, int]] = {}
    scores: dict[str, list[float]] = {"gate": [], "advisory": []}
    for r in records:
        for v in r.verdicts:
            kind = next((k for k in UNDECIDED if v.reason.startswith(k + ":")), None)
            if kind is None:
                decided.setdefault(v.name, []).append(v.ok)
            else:
                counts = undecided.setdefault(v.name, {})
                counts[kind] = counts.get(kind, 0) + 1
            if v.name == "judge" and v.score is not None and kind in (None, "advisory"):
                scores["advisory" if kind else "gate"].append(v.score)
    names = sorted(set(decided) | set(undecided))
    rates = {n: {"decided": len(decided.get(n, [])),
                 "pass_rate": round(sum(decided[n]) / len(decided[n]), 4) if decided.get(n) else None,
                 **undecided.get(n, {})} for n in names}
    return {"verifiers": rates, "judge_mean_score": _mean(scores["gate"]), "judge_scored": len(scores["gate"]),
            "advisory_judge_mean_score": _mean(scores["advisory"]),
            "judge_advisory": undecided.get("judge", {}).get("advisory", 0),
            "judge_unjudged": undecided.get("judge", {}).get("unjudged", 0),
            "golden": "human-written: not verified by synthloop"}


def _mean(xs: list[float]) -> float | None:
    return _r(statistics.fmean(xs)) if xs else None


def _diversity_pair(synthetic: Sequence[Record], golden: Sequence[Record]) -> dict[str, Any]:
    """Both sides on samples of the same size (distinct-n and entropy grow with the sample)."""
    n = min(len(synthetic), len(golden), DIVERSITY_SAMPLE)
    return {"synthetic": diversity(synthetic, n), "golden": diversity(golden, n), "sample": n}


def diversity(records: Sequence[Record], n: int = DIVERSITY_SAMPLE) -> dict[str, Any]:
    """Collapse indicators on a seeded sample of `n` texts: distinct-2, bigram entropy, gzip
    compression ratio (synthloop.collapse.indicators)."""
    from synthloop.collapse.indicators import compression_ratio, distinct_n, ngram_entropy

    texts = [r.main_text() for r in records if r.main_text().strip()]
    if len(texts) > n:
        texts = random.Random(0).sample(texts, n)
    if not texts:
        return {"texts": 0}
    return {"texts": len(texts), "distinct_2": _r(distinct_n(texts, 2)), "bigram_entropy_bits": _r(ngram_entropy(texts, 2)),
            "compression_ratio": _r(compression_ratio(texts))}


def structure(records: Sequence[Record]) -> dict[str, Any]:
    """Schema completeness: the share of records with each content field filled."""
    n = len(records)
    fields = ("messages", "reasoning", "answer", "text", "explanation", "problem", "tests")
    shares = {f: round(sum(1 for r in records if getattr(r, f)) / n, 4) if n else None for f in fields}
    complete = sum(1 for r in records if r.messages and r.reasoning and r.answer)
    return {"share_filled": shares, "messages_reasoning_answer": round(complete / n, 4) if n else None}


def write_compare(rd: RunDir, table: dict[str, Any]) -> Path:
    path = rd.path / COMPARE_FILE
    atomic_write_text(path, json.dumps(table, indent=2, ensure_ascii=False) + "\n")
    return path


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


__all__ = ["COMPARE_FILE", "compare_run", "write_compare"]
