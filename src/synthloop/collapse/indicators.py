"""Collapse indicators: pure functions that each return one number, and the registry that says what
each number means, which way is bad, and where it warns and fails.

The functions take plain lists of texts or embedding matrices. `measure.py` composes them into the
per-round values the monitor thresholds: every value there is normalised against the golden set (or
against round 0), so 1.0 means "as a human sample of the same size would be".
"""

from __future__ import annotations

import gzip
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from synthloop.collapse.ngram import tokenize

Direction = Literal["higher_is_worse", "lower_is_worse", "two_sided"]
Status = Literal["ok", "warn", "fail", "skipped"]

# -- lexical -------------------------------------------------------------------------------------


def ngrams(tokens: Sequence[str], n: int) -> Iterable[tuple[str, ...]]:
    return zip(*(tokens[i:] for i in range(n)))


def distinct_n(texts: Sequence[str], n: int = 2) -> float:
    """Distinct n-grams / all n-grams over the texts (Li et al. 2016). 1.0 = no n-gram repeats."""
    counts = Counter(g for t in texts for g in ngrams(tokenize(t), n))
    total = sum(counts.values())
    return len(counts) / total if total else float("nan")


def ngram_entropy(texts: Sequence[str], n: int = 2) -> float:
    """Shannon entropy (bits) of the n-gram frequency distribution over the texts."""
    counts = np.array(list(Counter(g for t in texts for g in ngrams(tokenize(t), n)).values()), dtype=np.float64)
    if counts.sum() == 0:
        return float("nan")
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def compression_ratio(texts: Sequence[str]) -> float:
    """Raw bytes / gzip bytes of the texts joined by newlines (Shaib et al. 2024): higher = more repetition."""
    raw = "\n".join(texts).encode("utf-8")
    return len(raw) / len(gzip.compress(raw, compresslevel=9, mtime=0)) if raw else float("nan")


def tail_vocabulary(golden_texts: Sequence[str], tail_mass: float = 0.1) -> frozenset[str]:
    """The golden set's rare words: the least frequent words that together make up `tail_mass` of
    its tokens (ties broken alphabetically, so the set is deterministic)."""
    counts = Counter(w for t in golden_texts for w in tokenize(t))
    ranked = sorted(counts.items(), key=lambda kv: (kv[1], kv[0]))
    budget, tail = tail_mass * sum(counts.values()), []
    for word, c in ranked:
        if budget < c:
            break
        tail.append(word)
        budget -= c
    return frozenset(tail)


def tail_coverage(texts: Sequence[str], tail: frozenset[str]) -> float:
    """Share of the golden tail vocabulary that occurs at least once in the texts."""
    if not tail:
        return float("nan")
    seen = {w for t in texts for w in tokenize(t)}
    return len(tail & seen) / len(tail)


def perplexity(logprob_sum: float, n_tokens: int) -> float:
    """exp(-mean natural-log probability per token)."""
    return math.exp(-logprob_sum / n_tokens) if n_tokens else float("nan")


# -- embeddings ----------------------------------------------------------------------------------


def _mean_cov(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    return x.mean(axis=0), np.cov(x, rowvar=False, bias=True)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two embedding sets (Heusel et al. 2017, FID):
    |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2). Eigen-based, so no scipy."""
    mu_a, s_a = _mean_cov(a)
    mu_b, s_b = _mean_cov(b)
    w, v = np.linalg.eigh(s_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ s_b @ root_a), 0, None)).sum()
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(s_a) + np.trace(s_b) - 2 * cross)


def mmd_rbf(a: np.ndarray, b: np.ndarray, bandwidth: float | None = None) -> float:
    """Squared maximum mean discrepancy with a Gaussian kernel (Gretton et al. 2012), biased
    V-statistic (never negative). Bandwidth: median pairwise distance of the pooled sets."""
    x = np.concatenate([a, b]).astype(np.float64)
    sq = np.sum(x * x, axis=1)
    d2 = np.clip(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0, None)
    if bandwidth is None:
        off = d2[np.triu_indices(len(x), k=1)]
        bandwidth = float(np.sqrt(np.median(off))) if off.size and np.median(off) > 0 else 1.0
    k = np.exp(-d2 / (2 * bandwidth**2))
    n = len(a)
    return float(k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean())


def covariance_trace(x: np.ndarray) -> float:
    """Total variance of the embeddings (trace of their covariance): how spread out the set is."""
    return float(np.trace(_mean_cov(x)[1]))


def vendi_score(x: np.ndarray) -> float:
    """Vendi score (Friedman & Dieng 2023) with the cosine kernel: exp of the entropy of the
    eigenvalues of K/n, the effective number of distinct items (1 = all the same, n = orthogonal).
    Computed from the d x d Gram of the unit rows, which has the same non-zero spectrum as K/n."""
    x = np.asarray(x, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    lam = np.clip(np.linalg.eigvalsh(x.T @ x / len(x)), 0, None)
    lam = lam[lam > 1e-12]
    return float(np.exp(-(lam * np.log(lam)).sum()))


# -- the registry --------------------------------------------------------------------------------

INF = math.inf


@dataclass(frozen=True)
class Band:
    """The interval of values that passes a threshold (inclusive)."""

    low: float = -INF
    high: float = INF

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high

    def describe(self) -> str:
        if self.low == -INF:
            return f"<= {self.high:g}"
        if self.high == INF:
            return f">= {self.low:g}"
        return f"{self.low:g}..{self.high:g}"


@dataclass(frozen=True)
class Indicator:
    """One indicator: what it measures, which way is bad, and its default warn / fail bands."""

    name: str
    definition: str
    direction: Direction
    warn: Band
    fail: Band
    #: "golden" = anchored to the golden set's content; "diversity" = a spread measure only.
    family: Literal["golden", "diversity"]
    source: str

    def status(self, value: float | None, warn: Band | None = None, fail: Band | None = None) -> Status:
        if value is None or math.isnan(value):
            return "skipped"
        if value not in (fail or self.fail):
            return "fail"
        return "ok" if value in (warn or self.warn) else "warn"


def _low(warn: float, fail: float) -> tuple[Band, Band]:
    return Band(low=warn), Band(low=fail)


def _high(warn: float, fail: float) -> tuple[Band, Band]:
    return Band(high=warn), Band(high=fail)


_HEURISTIC = ("heuristic; calibrated on the `lm` simulation (synthloop collapse simulate lm), where it "
              "separates generation 0 from the collapsed generations")

_SPECS: list[tuple[str, str, Direction, tuple[Band, Band], Literal["golden", "diversity"], str]] = [
    ("golden_ppl_ratio",
     "Perplexity of the golden held-out split under the current model divided by the same at round 0 "
     "(without a model: under a bigram LM of the synthetic data vs one of a same-size golden sample).",
     "higher_is_worse", _high(1.10, 1.30), "golden", _HEURISTIC),
    ("tail_coverage_ratio",
     "Share of the golden tail vocabulary (rarest words, 10% of golden tokens) present in the synthetic "
     "data, divided by the share a same-size golden sample covers.",
     "lower_is_worse", _low(0.80, 0.60), "golden", _HEURISTIC),
    ("frechet_norm",
     "Fréchet distance between synthetic and golden embeddings divided by the golden-vs-golden "
     "noise floor (two disjoint golden halves of the same size).",
     "higher_is_worse", _high(2.0, 4.0), "golden", _HEURISTIC),
    ("mmd_norm",
     "RBF-kernel MMD^2 between synthetic and golden embeddings divided by the golden-vs-golden noise floor.",
     "higher_is_worse", _high(2.0, 4.0), "golden", _HEURISTIC),
    ("ref_ppl_ratio",
     "Perplexity of the synthetic data under a reference bigram LM trained on the golden train split, "
     "divided by the golden held-out perplexity under it: too low (degenerate, over-typical) is as bad "
     "as too high (off-distribution).",
     "two_sided", (Band(0.75, 1.5), Band(0.5, 2.5)), "golden", _HEURISTIC),
    ("cov_trace_ratio",
     "Trace of the synthetic embeddings' covariance divided by that of a same-size golden sample.",
     "lower_is_worse", _low(0.80, 0.60), "diversity",
     "heuristic; a 20%/40% loss of total variance (the Gaussian refit loses 1/N per generation)"),
    ("vendi_ratio",
     "Vendi score (cosine kernel) of the synthetic embeddings divided by that of a same-size golden sample.",
     "lower_is_worse", _low(0.80, 0.60), "diversity", _HEURISTIC),
    ("distinct_2_ratio",
     "Distinct-2 (unique bigrams / bigrams) of the synthetic data divided by that of a golden sample "
     "with the same number of tokens.",
     "lower_is_worse", _low(0.80, 0.60), "diversity", _HEURISTIC),
    ("entropy_2_ratio",
     "Shannon entropy of the bigram distribution of the synthetic data divided by that of a "
     "same-token-count golden sample.",
     "lower_is_worse", _low(0.90, 0.80), "diversity", _HEURISTIC),
    ("compression_ratio_rel",
     "Gzip compression ratio (raw/compressed) of the synthetic data divided by that of a "
     "same-token-count golden sample: higher means more repetition.",
     "higher_is_worse", _high(1.25, 1.6), "diversity", _HEURISTIC),
]

INDICATORS: dict[str, Indicator] = {
    name: Indicator(name, definition, direction, bands[0], bands[1], family, source)
    for name, definition, direction, bands, family, source in _SPECS
}
