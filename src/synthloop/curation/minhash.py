"""Near-duplicate dedup in two stages: MinHash LSH finds candidates cheaply, the word-level edit
similarity of the two texts decides.

Why two stages (figures from bench/bench_dedup.py, human paragraphs of 250-2000 characters with
2%, 5% and 10% of their words edited): a word-shingle Jaccard falls off far faster than the edit
rate (an edit kills every shingle that covers it; at 10% edits the 5-gram Jaccard of a pair is
~0.44, the old 0.7 threshold found 0.6% of them), and any single Jaccard threshold that keeps
10%-edited pairs also takes templated-but-different texts (two `gcloud ... create/update`
synopses). The edit similarity (Indel: 2 * LCS / (len a + len b), over word tokens) is the quantity
"x% of words edited" is about: a 10%-edited pair scores >= 0.85, and unrelated paragraphs almost
never reach 0.8.

Candidates: rensa `RMinHash` signatures over word 2-grams, 42 bands of 3 rows (a pair at Jaccard
0.44, the lowest 10%-edit pair measured, is a candidate with probability 0.98; at 0.6, > 0.9999);
then the estimated Jaccard must reach `prefilter` (cheap, vectorised) before the edit similarity
is computed (rapidfuzz, bit-parallel LCS over one character per word).

Streaming: the stage keeps an index across calls of `run`. The band table is a multimap from band
key to slot kept as sorted numpy runs merged like a binary counter (12 bytes per band entry instead
of ~70 for a dict entry); a key returns its `max_bucket` earliest occupants. Union-find over every
indexed record (rejected ones included, so chains A ~ B ~ C end in one cluster); the cluster's
first record, the one kept, is named in the reason.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import rensa
from rapidfuzz.distance import Indel

from synthloop.curation.config import NearDedupConfig
from synthloop.curation.text import batched, words
from synthloop.pipeline import RunContext, Stage
from synthloop.records import Record

_MIX = np.uint64(0x9E3779B97F4A7C15)
#: Word codes live in U+0100..U+D0FF (below the surrogates), so a word key is a 2-byte-per-word str.
_CODE_BASE, _CODE_SPAN = 0x100, 0xD000


def shingles(text: str, n: int) -> list[str]:
    """Word n-grams of the normalised text; a text shorter than n words is one shingle."""
    return _shingles(words(text), n)


def _shingles(w: list[str], n: int) -> list[str]:
    if len(w) <= n:
        return [" ".join(w)]
    return [" ".join(w[i : i + n]) for i in range(len(w) - n + 1)]


class _WordCodes(dict[str, str]):
    """word -> its one-character code (CRC-32 folded into 53k code points), memoised for the
    most common words: a dict hit is ~5x cheaper than encoding and hashing the word again."""

    limit = 1 << 20

    def __missing__(self, word: str) -> str:
        code = chr(_CODE_BASE + zlib.crc32(word.encode()) % _CODE_SPAN)
        if len(self) < self.limit:
            self[word] = code
        return code


_CODES = _WordCodes()


def word_key(w: Sequence[str]) -> str:
    """One character per word: the edit similarity of two keys is the word-level edit similarity
    of the texts (up to collisions of 1 in 53k between two different words)."""
    codes = _CODES
    return "".join([codes[x] for x in w])


def key_shingles(key: str, n: int) -> list[str]:
    """Word n-grams as n-character slices of the word key (a text of <= n words is one shingle):
    the same sets as joining the words, at a fraction of the cost."""
    if len(key) <= n:
        return [key]
    return [key[i : i + n] for i in range(len(key) - n + 1)]


def word_similarity(a: str, b: str) -> float:
    """Word-level Indel similarity of two texts: 2 * LCS / (total words); 1.0 for identical."""
    return float(Indel.normalized_similarity(word_key(words(a)), word_key(words(b))))


def signatures_and_keys(texts: Sequence[str], cfg: NearDedupConfig) -> tuple[np.ndarray, list[str]]:
    if not texts:
        return np.zeros((0, cfg.num_perm), dtype=np.uint32), []
    keys = [word_key(words(t)) for t in texts]
    sets = [key_shingles(k, cfg.ngram) for k in keys]
    matrix = rensa.RMinHash.digest_matrix_from_token_sets(sets, cfg.num_perm, cfg.seed)
    return np.asarray(matrix.to_rows(), dtype=np.uint32), keys


def signatures(texts: Sequence[str], cfg: NearDedupConfig) -> np.ndarray:
    """(len(texts), num_perm) uint32 MinHash matrix, computed in one rensa call."""
    return signatures_and_keys(texts, cfg)[0]


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


class BandTable:
    """Multimap uint64 key -> slots, as sorted runs (keys, slots) merged like a binary counter:
    amortised O(log n) per insert, a batch lookup is a few `searchsorted` calls per run. Equal keys
    keep insertion (slot) order, so a lookup's first `cap` hits are the earliest occupants."""

    def __init__(self) -> None:
        self.runs: list[tuple[np.ndarray, np.ndarray]] = []

    def add(self, keys: np.ndarray, slots: np.ndarray) -> None:
        order = np.argsort(keys, kind="stable")
        run = (keys[order], slots[order])
        while self.runs and len(self.runs[-1][0]) <= len(run[0]):
            old_k, old_s = self.runs.pop()  # older run first: the stable sort keeps slot order
            k, s = np.concatenate([old_k, run[0]]), np.concatenate([old_s, run[1]])
            order = np.argsort(k, kind="stable")
            run = (k[order], s[order])
        self.runs.append(run)

    def lookup(self, keys: np.ndarray, cap: int) -> tuple[np.ndarray, np.ndarray]:
        """(query positions, slots): for every key, up to `cap` earliest occupants per run."""
        qs, ss = [], []
        order = np.argsort(keys)  # sorted queries: searchsorted walks each run in cache order
        sorted_keys = keys[order]
        for run_keys, run_slots in self.runs:
            lo = np.searchsorted(run_keys, sorted_keys, "left")
            found = np.flatnonzero(run_keys[np.minimum(lo, len(run_keys) - 1)] == sorted_keys)
            if not len(found):
                continue  # most keys: no occupant, so the second search runs on the hits only
            lo = lo[found]
            hi = np.minimum(np.searchsorted(run_keys, sorted_keys[found], "right"), lo + cap)
            counts = hi - lo
            total = int(counts.sum())
            starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
            qs.append(np.repeat(order[found], counts))
            ss.append(run_slots[starts + np.arange(total)])
        if not qs:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(qs), np.concatenate(ss)

    def nbytes(self) -> int:
        return sum(k.nbytes + s.nbytes for k, s in self.runs)


class MinHashIndex:
    """Band table + stored signatures and word keys + clusters. `add_many` returns, per item,
    (cluster root, word similarity) when it joins an earlier item's cluster, else None."""

    def __init__(self, cfg: NearDedupConfig) -> None:
        self.cfg = cfg
        self.table = BandTable()
        self._sigs = np.zeros((1024, cfg.num_perm), dtype=np.uint32)  # grown by doubling
        self.keys: list[str] = []
        self.ids: list[str] = []
        self.uf = UnionFind()

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def sigs(self) -> np.ndarray:
        """(len(self), num_perm) signatures of every indexed item."""
        return self._sigs[: len(self.ids)]

    def add_many(self, item_ids: Sequence[str], sigs: np.ndarray, wkeys: Sequence[str]) -> list[tuple[int, float] | None]:
        first = len(self.ids)
        n, bands = len(item_ids), self.cfg.bands
        self.ids.extend(item_ids)
        self.keys.extend(wkeys)
        if first + n > len(self._sigs):
            grown = np.zeros((max(2 * len(self._sigs), first + n), self.cfg.num_perm), dtype=np.uint32)
            grown[:first] = self._sigs[:first]
            self._sigs = grown
        self._sigs[first : first + n] = sigs
        for _ in range(n):
            self.uf.add()
        bkeys = band_keys(sigs, bands).reshape(-1)
        self.table.add(bkeys, np.repeat(np.arange(first, first + n, dtype=np.int64), bands))
        q, cand = self.table.lookup(bkeys, self.cfg.max_bucket)
        query = q // bands + first
        pairs = np.unique(np.stack([query, cand], axis=1)[cand < query], axis=0)
        return self._verify(pairs, first, n)

    def _verify(self, pairs: np.ndarray, first: int, n: int) -> list[tuple[int, float] | None]:
        """Estimated Jaccard >= prefilter, then word similarity >= threshold; union the matches."""
        best: list[tuple[int, float] | None] = [None] * n
        if not len(pairs):
            return best
        est = np.count_nonzero(self.sigs[pairs[:, 0]] == self.sigs[pairs[:, 1]], axis=1) / self.cfg.num_perm
        for slot, other in pairs[est >= self.cfg.prefilter].tolist():
            if self.ids[other] == self.ids[slot]:
                continue  # the same record seen again (a resumed run re-processing a chunk)
            sim = float(Indel.normalized_similarity(self.keys[other], self.keys[slot]))
            if sim >= self.cfg.threshold:
                root = self.uf.union(other, slot)
                cur = best[slot - first]
                if cur is None or root < cur[0]:
                    best[slot - first] = (root, sim)
        # A later union may have lowered a root; report each item's final cluster root.
        return [None if b is None else (self.uf.find(b[0]), b[1]) for b in best]

    def clusters(self) -> list[list[int]]:
        """Every cluster of two or more items, as sorted slots (the first one is the kept one)."""
        groups: dict[int, list[int]] = {}
        for slot in range(len(self.ids)):
            groups.setdefault(self.uf.find(slot), []).append(slot)
        return [g for g in groups.values() if len(g) > 1]

    def nbytes(self) -> int:
        """Approximate index size: band table, signatures, word keys (str payload + header)."""
        return self.table.nbytes() + self._sigs.nbytes + sum(2 * len(k) + 74 for k in self.keys)


def index_texts(index: MinHashIndex, item_ids: Sequence[str], texts: Sequence[str]) -> list[tuple[int, float] | None]:
    """Signatures and word keys of `texts`, added to `index` in one call."""
    sigs, wkeys = signatures_and_keys(texts, index.cfg)
    return index.add_many(item_ids, sigs, wkeys)


def near_duplicate_clusters(texts: Sequence[str], cfg: NearDedupConfig | None = None) -> list[list[int]]:
    """Batch helper: clusters of near-duplicate texts by position (first of each is the keeper)."""
    index = MinHashIndex(cfg or NearDedupConfig())
    for start in range(0, len(texts), 4096):
        chunk = texts[start : start + 4096]
        index_texts(index, [str(i) for i in range(start, start + len(chunk))], chunk)
    return index.clusters()


class NearDedup(Stage):
    """Reject a record whose word-level edit similarity with an earlier record is >= threshold
    (candidates from MinHash LSH)."""

    ordered = True  # its decision depends on every record kept before it

    name = "dedup_near"

    def __init__(self, cfg: NearDedupConfig | None = None, batch_size: int = 256) -> None:
        self.cfg = cfg or NearDedupConfig()
        self.batch_size = batch_size
        self.index = MinHashIndex(self.cfg)

    def seed(self, records: Iterable[Record]) -> None:
        """Load already-accepted records (a resumed run) into the index."""
        for batch in batched(records, 4096):
            index_texts(self.index, [r.id for r in batch], [r.main_text() for r in batch])

    def run(self, records: Iterable[Record], ctx: RunContext) -> Iterator[Record]:
        # Signatures are computed a batch at a time (one rensa call per batch).
        for batch in batched(records, self.batch_size):
            yield from self._run_batch(batch, ctx)

    def _run_batch(self, batch: Sequence[Record], ctx: RunContext) -> Iterator[Record]:
        stats = ctx.stage_stats(self.name)
        stats.seen += len(batch)
        with ctx.timer(self.name):
            matches = index_texts(self.index, [r.id for r in batch], [r.main_text() for r in batch])
        for record, match in zip(batch, matches):
            if match is None:
                stats.kept += 1
                yield record
            else:
                root, sim = match
                ctx.reject(record, self.name, f"near_duplicate: ~{sim:.2f} word similarity with {self.index.ids[root]}")


__all__ = ["BandTable", "MinHashIndex", "NearDedup", "UnionFind", "band_keys", "index_texts", "key_shingles",
           "near_duplicate_clusters", "shingles", "signatures", "signatures_and_keys", "word_key", "word_similarity"]
