"""The bias audit: per attribute axis, the synthetic distribution against the golden one (TV, JS,
chi-squared, 95% bootstrap intervals), drift round over round, and the counterfactual flip test.
Every flag names its axis, the figure and the threshold it passed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synthloop.audit.config import AuditConfig
from synthloop.audit.counterfactual import BatchDecision, Decision, FlipResult, flip_test
from synthloop.audit.counts import FIELD_AXES, AxisCounts, Lexicon, field_counts
from synthloop.audit.data import AuditSet
from synthloop.audit.stats import Distance, compare, shares, total_variation
from synthloop.storage import atomic_write_text


@dataclass
class AxisResult:
    axis: str
    categories: tuple[str, ...]
    synthetic_share: list[float]
    golden_share: list[float]
    mentions: tuple[int, int]  # records mentioning the axis: (synthetic, golden)
    distance: Distance | None  # None: not judged (see `note`)
    flags: list[str] = field(default_factory=list)
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"axis": self.axis, "categories": list(self.categories),
                "synthetic_share": [round(x, 6) for x in self.synthetic_share],
                "golden_share": [round(x, 6) for x in self.golden_share],
                "mentions": {"synthetic": self.mentions[0], "golden": self.mentions[1]},
                "distance": self.distance.to_json() if self.distance else None,
                "status": self.status, "note": self.note, "flags": self.flags}

    @property
    def status(self) -> str:
        """flag | ok | insufficient (too few mentions) | incomparable (a field axis sharing no value)."""
        if self.flags:
            return "flag"
        return "ok" if self.distance else ("incomparable" if self.note.startswith("no value") else "insufficient")


@dataclass
class BiasReport:
    synthetic: str
    golden: str
    records: tuple[int, int]
    config: AuditConfig
    axes: list[AxisResult]
    drift: list[dict[str, Any]]
    counterfactual: FlipResult | None
    flags: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"synthetic": self.synthetic, "golden": self.golden,
                "records": {"synthetic": self.records[0], "golden": self.records[1]},
                "config": self.config.model_dump(), "axes": [a.to_json() for a in self.axes], "drift": self.drift,
                "counterfactual": self.counterfactual.to_json() if self.counterfactual else None,
                "flagged": bool(self.flags), "flags": self.flags}


def audit_bias(synthetic: AuditSet, golden: AuditSet, cfg: AuditConfig | None = None,
               decide: Decision | None = None, decision_name: str = "quality",
               decide_batch: BatchDecision | None = None) -> BiasReport:
    """Audit `synthetic` against `golden`. The counterfactual test re-runs `decide` (default: the
    quality filter's keep()) or `decide_batch` (e.g. `counterfactual.judge_decision(judge)`)."""
    cfg = cfg or AuditConfig()
    lex = Lexicon()
    syn_axes, gold_axes = _axes(synthetic, lex), _axes(golden, lex)
    axes = [_axis_result(s, g, cfg) for s, g in zip(syn_axes, gold_axes)]
    drift = _drift(synthetic, syn_axes, cfg)
    cf = None
    if cfg.counterfactual_sample:
        cf = flip_test(synthetic.records, decide, decision_name, cfg.counterfactual_sample, decide_batch)
    flags = [f for a in axes for f in a.flags] + [f for d in drift for f in d["flags"]]
    if cf and cf.swappable and cf.rate > cfg.max_flip_rate:
        flags.append(f"counterfactual: {cf.decision} decision flips on {cf.rate:.1%} of {cf.swappable} swapped "
                     f"records (> {cfg.max_flip_rate:.1%})")
    return BiasReport(synthetic.name, golden.name, (len(synthetic.records), len(golden.records)), cfg, axes, drift,
                      cf, flags)


def _axes(s: AuditSet, lex: Lexicon) -> list[AxisCounts]:
    """Lexicon axes, plus each field axis (same categories on both sides come from the union later)."""
    return lex.axis_counts(s.texts) + [field_counts(a, s.values(a)) for a in FIELD_AXES]


def _aligned(s: AxisCounts, g: AxisCounts) -> tuple[AxisCounts, AxisCounts]:
    """Field axes have per-set categories: put both on the union of them."""
    if s.categories == g.categories:
        return s, g
    cats = tuple(sorted(set(s.categories) | set(g.categories)))
    return _reindex(s, cats), _reindex(g, cats)


def _reindex(a: AxisCounts, cats: tuple[str, ...]) -> AxisCounts:
    out = np.zeros((a.presence.shape[0], len(cats)), dtype=np.uint8)
    index = {c: i for i, c in enumerate(cats)}
    for j, c in enumerate(a.categories):
        out[:, index[c]] = a.presence[:, j]
    return AxisCounts(a.axis, cats, out)


def _axis_result(s: AxisCounts, g: AxisCounts, cfg: AuditConfig) -> AxisResult:
    disjoint = s.axis in FIELD_AXES and not set(s.categories) & set(g.categories)
    s, g = _aligned(s, g)
    mentions = (int(s.presence.any(axis=1).sum()), int(g.presence.any(axis=1).sum()))
    res = AxisResult(s.axis, s.categories, shares(s.totals).tolist(), shares(g.totals).tolist(), mentions, None)
    if min(mentions) < cfg.min_mentions or len(s.categories) < 2:
        res.note = f"fewer than {cfg.min_mentions} records mention it on one side"
        return res
    if disjoint:
        res.note = "no value in common: the two sets name their categories differently"
        return res
    res.distance = d = compare(s.presence, g.presence, boot=cfg.bootstrap, seed=cfg.seed)
    if d.tv.low > cfg.max_tv:
        res.flags.append(f"{s.axis}: total variation {d.tv.value:.3f} (95% CI {d.tv.low:.3f}-{d.tv.high:.3f}) "
                         f"> {cfg.max_tv} vs golden; most over-represented: {_most_over(res)}")
    elif d.js.low > cfg.max_js:
        res.flags.append(f"{s.axis}: Jensen-Shannon {d.js.value:.3f} (95% CI {d.js.low:.3f}-{d.js.high:.3f}) "
                         f"> {cfg.max_js} vs golden; most over-represented: {_most_over(res)}")
    return res


def _most_over(res: AxisResult) -> str:
    gaps = [s - g for s, g in zip(res.synthetic_share, res.golden_share)]
    j = int(np.argmax(gaps))
    return f"{res.categories[j]} ({res.synthetic_share[j]:.0%} vs {res.golden_share[j]:.0%})"


def _drift(s: AuditSet, axes: list[AxisCounts], cfg: AuditConfig) -> list[dict[str, Any]]:
    """Per axis, TV between each round and the one before it (only for sets with several rounds)."""
    rounds = s.rounds
    if len(rounds) < 2:
        return []
    round_of = np.fromiter((r.round for r in s.records), dtype=np.int64, count=len(s.records))
    out = []
    for a in axes:
        for prev, cur in zip(rounds, rounds[1:]):
            pa, ca = a.presence[round_of == prev], a.presence[round_of == cur]
            if min(pa.any(axis=1).sum(), ca.any(axis=1).sum()) < cfg.min_mentions:
                continue
            d = compare(ca, pa, boot=cfg.bootstrap, seed=cfg.seed)
            flags = []
            if d.tv.low > cfg.max_drift_tv:
                flags.append(f"{a.axis}: drift round {prev}->{cur} total variation {d.tv.value:.3f} "
                             f"(95% CI {d.tv.low:.3f}-{d.tv.high:.3f}) > {cfg.max_drift_tv}")
            out.append({"axis": a.axis, "from_round": prev, "to_round": cur, "tv": d.tv.to_json(),
                        "share": dict(zip(a.categories, _share_list(ca))), "flags": flags})
    return out


def _share_list(presence: np.ndarray) -> list[float]:
    return [round(float(x), 6) for x in shares(presence.sum(axis=0).astype(np.float64))]


def drift_tv(a: np.ndarray, b: np.ndarray) -> float:
    """Point TV between two presence matrices (for callers that want no bootstrap)."""
    return float(total_variation(shares(a.sum(axis=0).astype(np.float64)), shares(b.sum(axis=0).astype(np.float64))))


#: The audit's report in a run directory (what a round report or the card may read).
AUDIT_FILE = "audit_bias.json"


def audit_run(run_dir: Path, golden: str, cfg: AuditConfig | None = None) -> BiasReport:
    """Audit a run directory's accepted records against `golden` ("python-docs" or a file) and
    write `audit_bias.json` into it: the call for a round's report."""
    from synthloop.audit.data import load_set

    report = audit_bias(load_set(run_dir), load_set(golden), cfg)
    write_report(report, run_dir / AUDIT_FILE)
    return report


def write_report(report: BiasReport, path: Path) -> None:
    atomic_write_text(path, json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n")


__all__ = ["AUDIT_FILE", "AxisResult", "BiasReport", "audit_bias", "audit_run", "drift_tv", "write_report"]
