"""How far the judge agrees with people, and people with each other.

- Judge vs human: for every reviewed record the judge scored, the judge's label is `score >=
  min_score` (its threshold from the recipe) and the human's is accept/reject. Reported per rubric
  (the recipe's rubric, or each task's own under `rubric = "auto"`) and per skill: Cohen's kappa
  and accuracy (the share of records where the judge at its threshold says what the human said).
- Inter-reviewer: records labelled by two or more reviewers. Cohen's kappa between the first two
  labels of each record, and Krippendorff's alpha (nominal), which takes any number of reviewers.

Kappa and alpha are None when they are undefined (fewer than two records, or one class only).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from synthloop.review.decisions import ReviewState


def cohen_kappa(a: Sequence[Any], b: Sequence[Any]) -> float | None:
    """Cohen's kappa of two raters' labels over the same items."""
    if len(a) != len(b) or len(a) < 2:
        return None
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[k] * cb.get(k, 0) for k in ca) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def krippendorff_alpha(units: Iterable[Sequence[Any]]) -> float | None:
    """Krippendorff's alpha for nominal labels; each unit is the labels its raters gave it."""
    pairable = [list(u) for u in units if len(u) >= 2]
    if not pairable:
        return None
    coincidence: dict[tuple[Any, Any], float] = defaultdict(float)
    for u in pairable:
        m = len(u)
        for i, x in enumerate(u):
            for j, y in enumerate(u):
                if i != j:
                    coincidence[(x, y)] += 1.0 / (m - 1)
    n_c: dict[Any, float] = defaultdict(float)
    for (x, _), w in coincidence.items():
        n_c[x] += w
    n = sum(n_c.values())
    if n <= 1:
        return None
    d_o = sum(w for (x, y), w in coincidence.items() if x != y) / n
    d_e = sum(n_c[x] * n_c[y] for x in n_c for y in n_c if x != y) / (n * (n - 1))
    if d_e == 0:
        return None
    return 1.0 - d_o / d_e


@dataclass
class Agreement:
    group: str
    n: int
    kappa: float | None
    accuracy: float | None

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group, "n": self.n, "kappa": self.kappa, "accuracy": self.accuracy}


def _agreement(group: str, pairs: list[tuple[str, str]]) -> Agreement:
    judge = [p[0] for p in pairs]
    human = [p[1] for p in pairs]
    acc = sum(j == h for j, h in pairs) / len(pairs) if pairs else None
    return Agreement(group, len(pairs), cohen_kappa(judge, human), acc)


def judge_agreement(rows: Iterable[dict[str, Any]], states: dict[str, ReviewState], min_score: float,
                    rubric: str = "auto") -> dict[str, list[Agreement]]:
    """Judge vs human, overall and per rubric and per skill. `rows`: {id, task, skill, score}."""
    by: dict[str, dict[str, list[tuple[str, str]]]] = {"all": defaultdict(list), "rubric": defaultdict(list), "skill": defaultdict(list)}
    for r in rows:
        s = states.get(r["id"])
        if s is None or s.label is None or r.get("score") is None:
            continue
        pair = ("accepted" if float(r["score"]) >= min_score else "rejected", s.label)
        by["all"]["all"].append(pair)
        by["rubric"][r["task"] if rubric == "auto" else rubric].append(pair)
        by["skill"][r["skill"] or "?"].append(pair)
    return {k: [_agreement(g, p) for g, p in sorted(v.items())] for k, v in by.items()}


def reviewer_agreement(states: dict[str, ReviewState]) -> dict[str, Any]:
    """Agreement between reviewers on the records two or more of them labelled."""
    units = [list(s.labels.values()) for s in states.values() if len(s.labels) >= 2]
    first_two = [(u[0], u[1]) for u in units]
    return {
        "double_reviewed": len(units),
        "reviewers": sorted({r for s in states.values() for r in s.labels}),
        "cohen_kappa": cohen_kappa([a for a, _ in first_two], [b for _, b in first_two]),
        "krippendorff_alpha": krippendorff_alpha(units),
        "raw_agreement": (sum(a == b for a, b in first_two) / len(first_two)) if first_two else None,
    }


__all__ = ["Agreement", "cohen_kappa", "judge_agreement", "krippendorff_alpha", "reviewer_agreement"]
