"""Near-duplicate dedup: MinHash signatures (rensa, chosen by the figures in docs/curation.md) over
word n-grams, LSH banding, verification by estimated Jaccard, union-find clusters.

Streaming: the stage keeps an index across calls of `run`. A record is a near-duplicate when it
shares a band with an indexed record *and* their estimated Jaccard is >= threshold; it joins that
record's cluster (union-find over every indexed record, rejected ones included, so chains
A ~ B ~ C end in one cluster) and the cluster's first record, the one kept, is named in the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import rensa

from synthloop.curation.config import NearDedupConfig
from synthloop.curation.text import batched, words
from synthloop.pipeline import RunContext, Stage
from synthloop.records import Record

_MIX = np.uint64(0x9E3779B97F4A7C15)


def shingles(text: str, n: int) -> list[str]:
    """Word n-grams of the normalised text; a text shorter than n words is one shingle."""
    w = words(text)
    if len(w) <= n:
        return [" ".join(w)]
    return [" ".join(w[i : i + n]) for i in range(len(w) - n + 1)]


def signatures(texts: Sequence[str], cfg: NearDedupConfig) -> np.ndarray:
    """(len(texts), num_perm) uint32 MinHash matrix, computed in one rensa call."""
    if not texts:
        return np.zeros((0, cfg.num_perm), dtype=np.uint32)
    sets = [shingles(t, cfg.ngram) for t in texts]
    matrix = rensa.RMinHash.digest_matrix_from_token_sets(sets, cfg.num_perm, cfg.seed)
    return np.asarray(matrix.to_rows(), dtype=np.uint32)


def band_keys(sig: np.ndarray, bands: int) -> np.ndarray:
    """(n, bands) uint64: each band's rows folded into one 64-bit key (band index mixed in so the
    same values in different bands never collide)."""
    n, perm = sig.shape
    rows = sig.reshape(n, bands, perm // bands).astype(np.uint64)
    acc = np.arange(bands, dtype=np.uint64)[None, :].repeat(n, axis=0)
    with np.errstate(over="ignore"):
        for r in range(rows.shape[2]):
            acc = (acc ^ rows[:, :, r]) * _MIX
            acc ^= acc >> np.uint64(29)
    return acc


class UnionFind:
    """Disjoint sets over 0..n-1 (path halving); the root of a set is its smallest member, so
    "keep the first" is deterministic."""

    def __init__(self) -> None:
        self.parent: list[int] = []

    def add(self) -> int:
        self.parent.append(len(self.parent))
        return len(self.parent) - 1

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> int:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            ra, rb = min(ra, rb), max(ra, rb)
            self.parent[rb] = ra
        return ra


class MinHashIndex:
    """LSH buckets + stored signatures + clusters. `add` returns (cluster root, jaccard) when the
    new item joins an existing cluster, else None."""

    def __init__(self, cfg: NearDedupConfig) -> None:
        self.cfg = cfg
        self.buckets: list[dict[int, int]] = [{} for _ in range(cfg.bands)]
        self.sigs: list[np.ndarray] = []
        self.ids: list[str] = []
        self.uf = UnionFind()

    def add(self, item_id: str, sig: np.ndarray, keys: Sequence[int]) -> tuple[int, float] | None:
        slot = self.uf.add()
        self.sigs.append(sig)
        self.ids.append(item_id)
        # One dict operation per band does both query and insert: a bucket remembers its first
        # occupant, which is enough, since joining any member of a cluster joins the cluster.
        candidates = {h for b, k in zip(self.buckets, keys) if (h := b.setdefault(k, slot)) != slot}
        best: tuple[int, float] | None = None
        for other in sorted(candidates):
            if self.ids[other] == item_id:
                continue  # the same record seen again (a resumed run re-processing a chunk)
            j = float(np.count_nonzero(self.sigs[other] == sig)) / sig.shape[0]
            if j >= self.cfg.threshold:
                root = self.uf.union(other, slot)
                if best is None or root < best[0]:
                    best = (root, j)
        return best

    def add_many(self, item_ids: Sequence[str], sigs: np.ndarray) -> list[tuple[int, float] | None]:
        keys = band_keys(sigs, self.cfg.bands).tolist()
        return [self.add(i, s, k) for i, s, k in zip(item_ids, sigs, keys)]

    def clusters(self) -> list[list[int]]:
        """Every cluster of two or more items, as sorted slots (the first one is the kept one)."""
        groups: dict[int, list[int]] = {}
        for slot in range(len(self.ids)):
            groups.setdefault(self.uf.find(slot), []).append(slot)
        return [g for g in groups.values() if len(g) > 1]


def near_duplicate_clusters(texts: Sequence[str], cfg: NearDedupConfig | None = None) -> list[list[int]]:
    """Batch helper: clusters of near-duplicate texts by position (first of each is the keeper)."""
    cfg = cfg or NearDedupConfig()
    index = MinHashIndex(cfg)
    index.add_many([str(i) for i in range(len(texts))], signatures(texts, cfg))
    return index.clusters()


class NearDedup(Stage):
    """Reject a record whose MinHash-estimated Jaccard with an earlier record is >= threshold."""

    name = "dedup_near"

    def __init__(self, cfg: NearDedupConfig | None = None, batch_size: int = 256) -> None:
        self.cfg = cfg or NearDedupConfig()
        self.batch_size = batch_size
        self.index = MinHashIndex(self.cfg)

    def seed(self, records: Iterable[Record]) -> None:
        """Load already-accepted records (a resumed run) into the index."""
        batch = list(records)
        self.index.add_many([r.id for r in batch], signatures([r.main_text() for r in batch], self.cfg))

    def run(self, records: Iterable[Record], ctx: RunContext) -> Iterator[Record]:
        # Signatures are computed a batch at a time (one rensa call per batch).
        for batch in batched(records, self.batch_size):
            yield from self._run_batch(batch, ctx)

    def _run_batch(self, batch: Sequence[Record], ctx: RunContext) -> Iterator[Record]:
        stats = ctx.stage_stats(self.name)
        stats.seen += len(batch)
        with ctx.timer(self.name):
            matches = self.index.add_many([r.id for r in batch], signatures([r.main_text() for r in batch], self.cfg))
        for record, match in zip(batch, matches):
            if match is None:
                stats.kept += 1
                yield record
            else:
                root, jaccard = match
                ctx.reject(record, self.name, f"near_duplicate: ~{jaccard:.2f} Jaccard with {self.index.ids[root]}")


__all__ = ["MinHashIndex", "NearDedup", "UnionFind", "band_keys", "near_duplicate_clusters", "shingles", "signatures"]
