"""A word-bigram language model small enough to refit every round on a CPU in well under a second.

It plays two parts: the *reference LM* (trained on the golden training split, it scores how typical
synthetic text is) and the *model* of the LM collapse simulation (retrained on its own samples).
Counts live in two flat numpy arrays keyed by `prev * V + next`, so fitting is one `np.unique`,
scoring is one `searchsorted`, and sampling advances many chains at once.

Sampling uses the maximum-likelihood counts (sharpened by a temperature), like an LLM sampled without
smoothing; scoring uses interpolated Kneser-Ney (Chen & Goodman 1998) over a fixed vocabulary with an
add-one continuation floor, so no token ever gets probability zero.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

_TOKEN = re.compile(r"\w+|[^\w\s]")
EOS = "</s>"
UNK = "<unk>"


def tokenize(text: str) -> list[str]:
    """Lower-cased words and single punctuation marks: the unit every lexical indicator counts."""
    return _TOKEN.findall(text.lower())


@dataclass(frozen=True)
class Vocab:
    """A fixed word list with `</s>` (document boundary) at 0 and `<unk>` at 1."""

    words: tuple[str, ...]

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> "Vocab":
        counts = Counter(w for t in texts for w in tokenize(t))
        return cls((EOS, UNK, *sorted(w for w in counts if w not in (EOS, UNK))))

    def __len__(self) -> int:
        return len(self.words)

    @property
    def index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}

    def encode(self, texts: Iterable[str]) -> list[np.ndarray]:
        """One id array per text, wrapped in `</s>` so the first word has a context and the model
        learns where texts end (a sampler that never meets `</s>` would emit one endless text)."""
        index = self.index
        return [np.array([0, *(index.get(w, 1) for w in tokenize(t)), 0], dtype=np.int64) for t in texts]

    def decode(self, ids: np.ndarray) -> list[str]:
        """Split an id stream at `</s>` into texts (empty ones dropped)."""
        words = np.asarray(self.words, dtype=object)
        cuts = np.flatnonzero(ids == 0)
        parts = np.split(ids, cuts)
        return [" ".join(words[p[p != 0]]) for p in parts if np.any(p != 0)]


class BigramLM:
    """Bigram counts over a fixed vocabulary. Build with `fit`; combine with `+` and `scaled`."""

    def __init__(self, vocab_size: int, keys: np.ndarray, counts: np.ndarray) -> None:
        self.V = vocab_size
        self.keys = keys  # sorted unique prev * V + next
        self.counts = counts.astype(np.float64)
        self._kn: tuple[np.ndarray, np.ndarray, np.ndarray, float] | None = None

    @classmethod
    def fit(cls, sequences: Sequence[np.ndarray], vocab_size: int) -> "BigramLM":
        """Count every adjacent pair inside each sequence (sequences come from `Vocab.encode`)."""
        pairs = [s[:-1] * vocab_size + s[1:] for s in sequences if len(s) > 1]
        flat = np.concatenate(pairs) if pairs else np.zeros(0, dtype=np.int64)
        keys, counts = np.unique(flat, return_counts=True)
        return cls(vocab_size, keys, counts)

    def __add__(self, other: "BigramLM") -> "BigramLM":
        keys, inverse = np.unique(np.concatenate([self.keys, other.keys]), return_inverse=True)
        counts = np.bincount(inverse, weights=np.concatenate([self.counts, other.counts]), minlength=len(keys))
        return BigramLM(self.V, keys, counts)

    @property
    def n_tokens(self) -> int:
        return int(round(self.counts.sum()))

    # -- scoring ---------------------------------------------------------------------------------

    def _kn_tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """Per-context totals, per-context type counts, continuation probabilities, discount."""
        if self._kn is None:
            prev, nxt = self.keys // self.V, self.keys % self.V
            ctx_total = np.bincount(prev, weights=self.counts, minlength=self.V)
            ctx_types = np.bincount(prev, minlength=self.V).astype(np.float64)
            cont = (np.bincount(nxt, minlength=self.V) + 1.0) / (len(self.keys) + self.V)
            n1, n2 = np.sum(self.counts == 1), np.sum(self.counts == 2)
            discount = float(np.clip(n1 / (n1 + 2 * n2), 0.1, 0.9)) if n1 + n2 else 0.75
            self._kn = (ctx_total, ctx_types, cont, discount)
        return self._kn

    def logprob(self, sequences: Sequence[np.ndarray]) -> tuple[float, int]:
        """Total natural-log probability of every token after the first of each sequence, and how many."""
        prev = np.concatenate([s[:-1] for s in sequences]) if sequences else np.zeros(0, dtype=np.int64)
        nxt = np.concatenate([s[1:] for s in sequences]) if sequences else np.zeros(0, dtype=np.int64)
        if len(prev) == 0:
            return 0.0, 0
        ctx_total, ctx_types, cont, d = self._kn_tables()
        pair = prev * self.V + nxt
        pos = np.clip(np.searchsorted(self.keys, pair), 0, max(len(self.keys) - 1, 0))
        c = np.where(self.keys[pos] == pair, self.counts[pos], 0.0) if len(self.keys) else np.zeros(len(pair))
        total = ctx_total[prev]
        seen = total > 0
        safe = np.where(seen, total, 1.0)
        p = np.where(seen, np.maximum(c - d, 0.0) / safe + d * ctx_types[prev] / safe * cont[nxt], cont[nxt])
        return float(np.log(p).sum()), int(len(p))

    def perplexity(self, sequences: Sequence[np.ndarray]) -> float:
        lp, n = self.logprob(sequences)
        return float(np.exp(-lp / n)) if n else float("nan")

    # -- sampling --------------------------------------------------------------------------------

    def sample(self, n_tokens: int, rng: np.random.Generator, *, temperature: float = 1.0,
               chains: int = 256) -> list[np.ndarray]:
        """About `n_tokens` tokens from the count model (no smoothing), as `chains` id sequences that
        each start at `</s>`. Temperature < 1 sharpens every next-word distribution (p ∝ c^(1/T))."""
        prev = self.keys // self.V
        weights = self.counts ** (1.0 / temperature)
        weights = weights / weights.max(initial=1.0)  # low temperatures must not overflow
        row_sum = np.bincount(prev, weights=weights, minlength=self.V)
        cum = np.cumsum(weights)
        row_start = np.concatenate([[0.0], np.cumsum(row_sum)])[prev]
        cdf = prev + (cum - row_start) / row_sum[prev]
        ends = np.r_[np.flatnonzero(np.diff(prev)), len(prev) - 1]
        cdf[ends] = prev[ends] + 1.0
        steps = max(1, n_tokens // chains)
        out = np.zeros((chains, steps + 1), dtype=np.int64)
        has_next = row_sum > 0
        for t in range(steps):
            cur = np.where(has_next[out[:, t]], out[:, t], 0)
            idx = np.searchsorted(cdf, cur + rng.random(chains), side="right")
            out[:, t + 1] = self.keys[np.minimum(idx, len(cdf) - 1)] % self.V
        return list(out)
