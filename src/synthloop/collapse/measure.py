"""Turn one round's synthetic texts into indicator values, each normalised against the golden set.

Every comparison is size-matched, because distinct-n, Vendi, covariance estimates and distances all
move with sample size: the embedding indicators compare n synthetic texts with n golden texts, and
the golden noise floor is two disjoint golden halves of that same n; the lexical indicators and the
proxy LMs compare the same number of tokens. `GoldenReference` holds what does not change between
rounds (golden embeddings, the reference LM, the tail vocabulary) so a run embeds its golden set once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from synthloop.collapse import indicators as ind
from synthloop.collapse.embed import Embedder
from synthloop.collapse.ngram import BigramLM, Vocab, tokenize
from synthloop.errors import InputError

#: texts -> (sum of natural-log token probabilities, number of tokens scored), under the current model.
ModelLogprob = Callable[[Sequence[str]], tuple[float, int]]

MIN_TEXTS = 8
#: Below this many tokens, n-gram statistics and bigram LMs say more about the sample size than the data.
MIN_TOKENS = 200
_TOKEN_GROUPS = ("golden_ppl_ratio", "tail_coverage_ratio", "ref_ppl_ratio", "distinct_2_ratio", "entropy_2_ratio",
                 "compression_ratio_rel")


@dataclass
class Measurement:
    """One round's indicator values (None = not computed, with the reason in `skipped`) and the
    raw numbers behind them."""

    values: dict[str, float | None]
    raw: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    #: Values already measured against round 0 (golden_ppl_ratio with a model), not against golden.
    relative_to_round0: set[str] = field(default_factory=set)

    def to_dict(self) -> dict[str, Any]:
        return {"values": self.values, "raw": self.raw, "skipped": self.skipped,
                "relative_to_round0": sorted(self.relative_to_round0)}


class GoldenReference:
    """The golden side of every comparison, built once per golden set."""

    def __init__(self, train: Sequence[str], heldout: Sequence[str], embed: Embedder, *,
                 max_texts: int = 512, max_tokens: int = 50_000, tail_mass: float = 0.1, seed: int = 0) -> None:
        if len(train) < MIN_TEXTS or not heldout:
            raise InputError(f"the golden set is too small for collapse checks ({len(train)} train, "
                             f"{len(heldout)} held-out rows): use at least {MIN_TEXTS} train rows and one held-out row")
        self.train, self.heldout = list(train), list(heldout)
        self.embed, self.max_texts, self.max_tokens, self.seed = embed, max_texts, max_tokens, seed
        self.tail = ind.tail_vocabulary(self.train, tail_mass)
        self.vocab = Vocab.from_texts(self.train)
        self.heldout_ids = self.vocab.encode(self.heldout)
        self._order = np.random.default_rng(seed).permutation(len(self.train))
        self._samples: dict[int, list[str]] = {}

    @cached_property
    def embeddings(self) -> np.ndarray:
        """Golden embeddings for the noise floor: up to 2 * max_texts train texts in a seeded order."""
        n = min(len(self.train) // 2, self.max_texts) * 2
        return np.asarray(self.embed([self.train[i] for i in self._order[:n]]), dtype=np.float64)

    @cached_property
    def train_tokens(self) -> int:
        return sum(len(tokenize(t)) for t in self.train)

    @cached_property
    def bandwidth(self) -> float:
        """One RBF bandwidth for every MMD of this golden set (median golden pairwise distance), so
        the synthetic distance and the noise floor are measured with the same kernel."""
        x = self.embeddings
        sq = np.sum(x * x, axis=1)
        d2 = np.clip(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0, None)[np.triu_indices(len(x), k=1)]
        med = float(np.median(d2)) if d2.size else 0.0
        return float(np.sqrt(med)) if med > 0 else 1.0

    @cached_property
    def reference_lm(self) -> BigramLM:
        return BigramLM.fit(self.vocab.encode(self.train), len(self.vocab))

    @cached_property
    def reference_heldout_ppl(self) -> float:
        return self.reference_lm.perplexity(self.heldout_ids)

    def halves(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Two disjoint golden embedding sets of n rows each."""
        return self.embeddings[:n], self.embeddings[n:2 * n]

    def token_sample(self, n_tokens: int) -> list[str]:
        """Golden train texts in the seeded order, cut to exactly n_tokens tokens (cached per size)."""
        if n_tokens not in self._samples:
            self._samples[n_tokens] = cut_to_tokens([self.train[i] for i in self._order], n_tokens)
        return self._samples[n_tokens]


def cut_to_tokens(texts: Sequence[str], n_tokens: int) -> list[str]:
    """The first texts holding n_tokens tokens; the last one truncated (re-joined with spaces)."""
    out: list[str] = []
    left = n_tokens
    for t in texts:
        toks = tokenize(t)
        if left <= 0:
            break
        out.append(t if len(toks) <= left else " ".join(toks[:left]))
        left -= len(toks)
    return out


def measure(synthetic: Sequence[str], ref: GoldenReference, *, names: Sequence[str] = tuple(ind.INDICATORS),
            model_logprob: ModelLogprob | None = None, baseline_golden_ppl: float | None = None) -> Measurement:
    """Every indicator in `names` for one round. With `model_logprob`, golden_ppl_ratio is the current
    model's golden held-out perplexity over `baseline_golden_ppl` (round 0's; None = this is round 0)."""
    m = Measurement(values={})
    texts = [t for t in synthetic if t.strip()]
    if not texts:
        raise InputError("no non-empty synthetic text to check: pass the texts the round produced")
    rng = np.random.default_rng(ref.seed + 1)
    shuffled = [texts[i] for i in rng.permutation(len(texts))]
    n_tok = min(sum(len(tokenize(t)) for t in texts), ref.train_tokens, ref.max_tokens)
    syn_tok = cut_to_tokens(shuffled, n_tok)
    parts: list[tuple[set[str], Callable[[], None]]] = [
        ({"golden_ppl_ratio"}, lambda: _golden_ppl(m, syn_tok, ref, n_tok, model_logprob, baseline_golden_ppl)),
        ({"tail_coverage_ratio"}, lambda: _tail(m, syn_tok, ref, n_tok)),
        ({"ref_ppl_ratio"}, lambda: _ref_ppl(m, syn_tok, ref)),
        ({"distinct_2_ratio", "entropy_2_ratio", "compression_ratio_rel"}, lambda: _lexical(m, syn_tok, ref, n_tok)),
        ({"frechet_norm", "mmd_norm", "cov_trace_ratio", "vendi_ratio"}, lambda: _embedding(m, shuffled, ref)),
    ]
    if n_tok < MIN_TOKENS:
        m.skipped.update({k: f"needs at least {MIN_TOKENS} tokens, got {n_tok}" for k in _TOKEN_GROUPS
                          if not (k == "golden_ppl_ratio" and model_logprob is not None)})
    for group, run in parts:
        if group & set(names) and not group <= set(m.skipped):
            run()
    m.values = {k: m.values.get(k) for k in names}
    for k in names:
        if m.values[k] is None and k not in m.skipped:
            m.skipped[k] = "not computed"
    return m


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else float("nan")


def _golden_ppl(m: Measurement, syn_tok: list[str], ref: GoldenReference, n_tok: int,
                model_logprob: ModelLogprob | None, baseline: float | None) -> None:
    if model_logprob is not None:
        ppl = ind.perplexity(*model_logprob(ref.heldout))
        m.raw["golden_ppl"] = ppl
        m.values["golden_ppl_ratio"] = 1.0 if baseline is None else _ratio(ppl, baseline)
        m.relative_to_round0.add("golden_ppl_ratio")
        return
    V = len(ref.vocab)
    syn_lm = BigramLM.fit(ref.vocab.encode(syn_tok), V)
    gold_lm = BigramLM.fit(ref.vocab.encode(ref.token_sample(n_tok)), V)
    m.raw["golden_ppl_proxy"] = syn_lm.perplexity(ref.heldout_ids)
    m.raw["golden_ppl_proxy_golden"] = gold_lm.perplexity(ref.heldout_ids)
    m.values["golden_ppl_ratio"] = _ratio(m.raw["golden_ppl_proxy"], m.raw["golden_ppl_proxy_golden"])


def _tail(m: Measurement, syn_tok: list[str], ref: GoldenReference, n_tok: int) -> None:
    m.raw["tail_coverage"] = ind.tail_coverage(syn_tok, ref.tail)
    m.raw["tail_coverage_golden"] = ind.tail_coverage(ref.token_sample(n_tok), ref.tail)
    m.raw["tail_size"] = float(len(ref.tail))
    m.values["tail_coverage_ratio"] = _ratio(m.raw["tail_coverage"], m.raw["tail_coverage_golden"])


def _ref_ppl(m: Measurement, syn_tok: list[str], ref: GoldenReference) -> None:
    m.raw["ref_ppl"] = ref.reference_lm.perplexity(ref.vocab.encode(syn_tok))
    m.raw["ref_ppl_golden_heldout"] = ref.reference_heldout_ppl
    m.values["ref_ppl_ratio"] = _ratio(m.raw["ref_ppl"], ref.reference_heldout_ppl)


def _lexical(m: Measurement, syn_tok: list[str], ref: GoldenReference, n_tok: int) -> None:
    gold = ref.token_sample(n_tok)
    for key, fn in (("distinct_2", lambda t: ind.distinct_n(t, 2)), ("entropy_2", lambda t: ind.ngram_entropy(t, 2)),
                    ("compression_ratio", ind.compression_ratio)):
        m.raw[key], m.raw[f"{key}_golden"] = fn(syn_tok), fn(gold)
    m.values["distinct_2_ratio"] = _ratio(m.raw["distinct_2"], m.raw["distinct_2_golden"])
    m.values["entropy_2_ratio"] = _ratio(m.raw["entropy_2"], m.raw["entropy_2_golden"])
    m.values["compression_ratio_rel"] = _ratio(m.raw["compression_ratio"], m.raw["compression_ratio_golden"])


def _embedding(m: Measurement, shuffled: list[str], ref: GoldenReference) -> None:
    n = min(len(shuffled), len(ref.embeddings) // 2)
    names = ("frechet_norm", "mmd_norm", "cov_trace_ratio", "vendi_ratio")
    if n < MIN_TEXTS:
        m.skipped.update({k: f"needs at least {MIN_TEXTS} synthetic texts, got {n}" for k in names})
        return
    syn = np.asarray(ref.embed(shuffled[:n]), dtype=np.float64)
    gold_a, gold_b = ref.halves(n)
    m.raw["embedding_n"] = float(n)
    # One BLAS thread: the matrices are a few hundred wide, and on a shared 2-core machine a
    # multi-threaded eigh of a 256 x 256 matrix was measured 100-300x slower than a single-threaded one.
    with threadpool_limits(1):
        bandwidth = ref.bandwidth
        m.raw["frechet"], m.raw["frechet_floor"] = ind.frechet_distance(syn, gold_a), ind.frechet_distance(gold_b, gold_a)
        m.raw["mmd"], m.raw["mmd_floor"] = ind.mmd_rbf(syn, gold_a, bandwidth), ind.mmd_rbf(gold_b, gold_a, bandwidth)
        m.raw["cov_trace"], m.raw["cov_trace_golden"] = ind.covariance_trace(syn), ind.covariance_trace(gold_a)
        m.raw["vendi"], m.raw["vendi_golden"] = ind.vendi_score(syn), ind.vendi_score(gold_a)
    m.values["frechet_norm"] = _ratio(m.raw["frechet"], m.raw["frechet_floor"])
    m.values["mmd_norm"] = _ratio(m.raw["mmd"], m.raw["mmd_floor"])
    m.values["cov_trace_ratio"] = _ratio(m.raw["cov_trace"], m.raw["cov_trace_golden"])
    m.values["vendi_ratio"] = _ratio(m.raw["vendi"], m.raw["vendi_golden"])
