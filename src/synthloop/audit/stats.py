"""Distances between two category distributions, and bootstrap intervals for them.

Each set is a presence matrix (records x categories); its distribution is the share of category
mentions. Total variation and Jensen-Shannon (base 2, both in [0, 1]) say how far apart the sets are;
Pearson's chi-squared test of homogeneity says whether the gap could be sampling noise (its p-value
uses the Wilson-Hilferty approximation, so no scipy is needed). The bootstrap resamples records of
both sides (Poisson weights, which resample in one matrix product per batch).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

BOOT_BATCH = 25


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float

    def to_json(self) -> dict[str, float]:
        return {k: round(v, 6) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Distance:
    tv: Interval
    js: Interval
    chi2: float
    dof: int
    p_value: float

    def to_json(self) -> dict[str, Any]:
        return {"tv": self.tv.to_json(), "js": self.js.to_json(), "chi2": round(self.chi2, 4), "dof": self.dof,
                "p_value": self.p_value}


def shares(totals: np.ndarray) -> np.ndarray:
    """Rows of counts -> rows of shares (an all-zero row stays zero)."""
    s = totals.sum(axis=-1, keepdims=True)
    return np.divide(totals, s, out=np.zeros_like(totals, dtype=np.float64), where=s > 0)


def total_variation(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return 0.5 * np.abs(p - q).sum(axis=-1)


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    m = 0.5 * (p + q)
    return 0.5 * _kl(p, m) + 0.5 * _kl(q, m)


def _kl(p: np.ndarray, m: np.ndarray) -> np.ndarray:
    ratio = np.divide(p, m, out=np.ones_like(p), where=(p > 0) & (m > 0))
    return (p * np.log2(ratio)).sum(axis=-1)


def chi_squared(a: np.ndarray, b: np.ndarray) -> tuple[float, int, float]:
    """Pearson's test of homogeneity on the 2 x k table of mention counts: (statistic, dof, p)."""
    table = np.vstack([a, b]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 0, 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    stat = float(((table - expected) ** 2 / expected).sum())
    dof = table.shape[1] - 1
    return stat, dof, chi2_sf(stat, dof)


def chi2_sf(x: float, k: int) -> float:
    """P(X > x) for X ~ chi-squared(k), Wilson-Hilferty cube-root normal approximation."""
    if k <= 0 or x <= 0:
        return 1.0
    z = ((x / k) ** (1 / 3) - (1 - 2 / (9 * k))) / math.sqrt(2 / (9 * k))
    return 0.5 * math.erfc(z / math.sqrt(2))


def compare(a: np.ndarray, b: np.ndarray, *, boot: int = 200, seed: int = 0) -> Distance:
    """Distances between presence matrices `a` and `b` (same columns), with 95% bootstrap intervals."""
    ta, tb = a.sum(axis=0).astype(np.float64), b.sum(axis=0).astype(np.float64)
    p, q = shares(ta), shares(tb)
    tv_boot, js_boot = _bootstrap(a, b, boot, seed)
    stat, dof, pv = chi_squared(ta, tb)
    return Distance(_interval(float(total_variation(p, q)), tv_boot), _interval(float(jensen_shannon(p, q)), js_boot),
                    stat, dof, pv)


def _bootstrap(a: np.ndarray, b: np.ndarray, boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    af, bf = a.astype(np.float32), b.astype(np.float32)
    tvs, jss = [], []
    for start in range(0, boot, BOOT_BATCH):
        size = min(BOOT_BATCH, boot - start)
        pa = shares((rng.poisson(1.0, (size, len(af))).astype(np.float32) @ af).astype(np.float64))
        pb = shares((rng.poisson(1.0, (size, len(bf))).astype(np.float32) @ bf).astype(np.float64))
        tvs.append(total_variation(pa, pb))
        jss.append(jensen_shannon(pa, pb))
    return np.concatenate(tvs) if tvs else np.zeros(0), np.concatenate(jss) if jss else np.zeros(0)


def _interval(value: float, samples: np.ndarray) -> Interval:
    if samples.size == 0:
        return Interval(value, value, value)
    low, high = np.percentile(samples, [2.5, 97.5])
    return Interval(value, float(low), float(high))


__all__ = ["Distance", "Interval", "chi2_sf", "chi_squared", "compare", "jensen_shannon", "shares", "total_variation"]
