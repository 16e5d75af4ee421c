"""Overlap with reference texts: decontamination against eval sets (13-word n-grams and 50-char
substrings) and the memorisation check against golden/seed data (32-word spans).

Both use `OverlapIndex`. Hashes are polynomial rolling hashes mod 2^64 computed with prefix sums in
numpy, so a document costs a handful of vector operations whatever the window length:
    window(i) = (T[i+w] - T[i]) * P^-i,   T[k] = sum_{j<k} x[j] * P^j   (P odd, so P^-1 exists)
Substrings: the index stores windows of w = ceil(L/2) chars at every (L-w+1)-th position of each
reference, and a document's every w-window is looked up; any shared L-char substring contains one
such aligned window. Each hit is then verified on the real characters, so the hash never decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from synthloop.curation.config import DecontamConfig, MemorizationConfig
from synthloop.curation.io import load_eval_items
from synthloop.curation.text import normalize, words
from synthloop.pipeline import RunContext, Stage
from synthloop.records import Record, Verdict

_P = np.uint64(0x100000001B3)  # odd, so invertible mod 2^64
_P_INV = np.uint64(pow(int(_P), -1, 2**64))


class _Powers:
    """P^j and P^-j for j < n, grown on demand (cumprod wraps mod 2^64, which is what we want)."""

    def __init__(self) -> None:
        self.fwd = np.ones(1, dtype=np.uint64)
        self.inv = np.ones(1, dtype=np.uint64)

    def get(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        if n > len(self.fwd):
            size = max(n, 2 * len(self.fwd))
            with np.errstate(over="ignore"):
                one = np.ones(1, dtype=np.uint64)
                self.fwd = np.concatenate((one, np.cumprod(np.full(size - 1, _P, dtype=np.uint64))))
                self.inv = np.concatenate((one, np.cumprod(np.full(size - 1, _P_INV, dtype=np.uint64))))
        return self.fwd[:n], self.inv[:n]


_POW = _Powers()


def window_hashes(values: np.ndarray, w: int) -> np.ndarray:
    """Hash of every length-w window of `values` (uint64), len(values) - w + 1 of them."""
    n = len(values)
    if n < w:
        return np.zeros(0, dtype=np.uint64)
    fwd, inv = _POW.get(n + 1)
    with np.errstate(over="ignore"):
        prefix = np.zeros(n + 1, dtype=np.uint64)
        np.cumsum(values.astype(np.uint64) * fwd[:n], out=prefix[1:])
        return (prefix[w:] - prefix[: n - w + 1]) * inv[: n - w + 1]


def _word_values(text: str) -> np.ndarray:
    ws = words(text)
    # hash() of a str is stable within a process, which is all an in-memory index needs.
    return np.fromiter((hash(w) for w in ws), dtype=np.int64, count=len(ws)).view(np.uint64)


def _char_values(norm: str) -> np.ndarray:
    return np.frombuffer(norm.encode("utf-32-le"), dtype=np.uint32)


@dataclass(frozen=True)
class Match:
    item: str  # the reference item's id
    kind: str  # "ngram" | "substring"
    snippet: str


class _HashTable:
    """hash -> first payload, fronted by a bitmap on the low hash bits so that a document's
    thousand window hashes are screened in one vectorised gather; only bitmap hits touch the dict."""

    def __init__(self) -> None:
        self.first: dict[int, object] = {}
        self._bitmap: np.ndarray | None = None
        self._mask = np.uint64(0)

    def add(self, hashes: np.ndarray, payload: Iterable[object]) -> None:
        for h, p in zip(hashes.tolist(), payload):
            self.first.setdefault(h, p)
        self._bitmap = None

    def _build(self) -> np.ndarray:
        size = 1 << max(16, (8 * len(self.first)).bit_length())  # >= 8 slots per entry
        self._mask = np.uint64(size - 1)
        bitmap = np.zeros(size, dtype=bool)
        bitmap[np.fromiter(self.first, dtype=np.uint64, count=len(self.first)) & self._mask] = True
        return bitmap

    def hits(self, hashes: np.ndarray) -> np.ndarray:
        """Positions of `hashes` present in the table."""
        if self._bitmap is None:
            self._bitmap = self._build()
        maybe = np.flatnonzero(self._bitmap[hashes & self._mask])
        first = self.first
        return np.array([p for p in maybe.tolist() if int(hashes[p]) in first], dtype=np.int64)


class OverlapIndex:
    """Reference texts indexed by word n-grams and (optionally) aligned character windows."""

    def __init__(self, ngram: int, substring_chars: int | None = None) -> None:
        self.ngram = ngram
        self.chars = substring_chars
        self.ngrams = _HashTable()
        self.windows = _HashTable()
        self.texts: list[str] = []  # normalised reference texts, for verifying substring hits
        self.ids: list[str] = []
        if substring_chars:
            self.w = (substring_chars + 1) // 2
            self.stride = substring_chars - self.w + 1

    def add(self, item_id: str, text: str) -> None:
        slot = len(self.ids)
        self.ids.append(item_id)
        gram = window_hashes(_word_values(text), self.ngram)
        self.ngrams.add(gram, [slot] * len(gram))
        norm = normalize(text)
        self.texts.append(norm)
        if self.chars and len(norm) >= self.chars:
            aligned = window_hashes(_char_values(norm), self.w)[:: self.stride]
            self.windows.add(aligned, [(slot, q * self.stride) for q in range(len(aligned))])

    def __len__(self) -> int:
        return len(self.ids)

    def match(self, text: str) -> Match | None:
        """The first reference item `text` overlaps with (n-gram checked first), or None."""
        ws = _word_values(text)
        gram = window_hashes(ws, self.ngram)
        hit = self.ngrams.hits(gram)
        if len(hit):
            slot: int = self.ngrams.first[int(gram[hit[0]])]  # type: ignore[assignment]
            span = " ".join(words(text)[hit[0] : hit[0] + self.ngram])
            return Match(self.ids[slot], "ngram", span)
        return self._substring(normalize(text)) if self.chars and len(self.windows.first) else None

    def _substring(self, norm: str) -> Match | None:
        assert self.chars
        hashes = window_hashes(_char_values(norm), self.w)
        for p in self.windows.hits(hashes).tolist():
            first: tuple[int, int] = self.windows.first[int(hashes[p])]  # type: ignore[assignment]
            slot, q = first
            ref = self.texts[slot]
            start, length = _common_run(norm, p, ref, q, self.w)
            if length >= self.chars:
                return Match(self.ids[slot], "substring", norm[start : start + min(length, 80)])
        return None


def _common_run(a: str, p: int, b: str, q: int, w: int) -> tuple[int, int]:
    """Extend an aligned window a[p:p+w] == b[q:q+w] left and right; (start in a, length), or
    length 0 when the windows only collided in the hash."""
    if a[p : p + w] != b[q : q + w]:
        return p, 0
    left = 0
    while p - left > 0 and q - left > 0 and a[p - left - 1] == b[q - left - 1]:
        left += 1
    right = w
    while p + right < len(a) and q + right < len(b) and a[p + right] == b[q + right]:
        right += 1
    return p - left, left + right


class Decontaminate(Stage):
    """Reject a record sharing a 13-word n-gram or a 50-char substring with any eval item."""

    name = "decontam"

    def __init__(self, items: Sequence[tuple[str, str]], cfg: DecontamConfig | None = None) -> None:
        self.cfg = cfg or DecontamConfig()
        self.index = OverlapIndex(self.cfg.ngram, self.cfg.substring_chars)
        for item_id, text in items:
            self.index.add(item_id, text)

    @classmethod
    def from_config(cls, cfg: DecontamConfig) -> "Decontaminate":
        items = [item for path in cfg.eval_sets for item in load_eval_items(path, cfg.text_field)]
        return cls(items, cfg)

    def run(self, records: Iterable[Record], ctx: RunContext) -> Iterator[Record]:
        stats = ctx.stage_stats(self.name)
        for record in records:
            stats.seen += 1
            with ctx.timer(self.name):
                m = self.index.match(record.main_text())
            if m is None:
                stats.kept += 1
                yield record
                continue
            what = f"{self.cfg.ngram}-gram" if m.kind == "ngram" else f"{self.cfg.substring_chars}-char substring"
            ctx.reject(record, self.name, f"eval_{m.kind}: {what} shared with eval item {m.item}: '{m.snippet}'")


class MemorizationCheck(Stage):
    """Flag (or reject) a synthetic record that copies a long verbatim span of human data."""

    name = "memorization"

    def __init__(self, golden_texts: Sequence[str], cfg: MemorizationConfig | None = None,
                 sources: Sequence[str] = ("synthetic",)) -> None:
        self.cfg = cfg or MemorizationConfig()
        #: Which records are checked: generated ones; `synthloop curate --golden` adds the rows it reads.
        self.sources = frozenset(sources)
        self.index = OverlapIndex(self.cfg.ngram)
        for i, text in enumerate(golden_texts):
            self.index.add(f"golden[{i}]", text)

    def run(self, records: Iterable[Record], ctx: RunContext) -> Iterator[Record]:
        stats = ctx.stage_stats(self.name)
        for record in records:
            stats.seen += 1
            with ctx.timer(self.name):
                m = self.index.match(record.main_text()) if record.source in self.sources else None
            if m is None:
                stats.kept += 1
                yield record
                continue
            reason = f"memorized: {self.cfg.ngram}-word span copied from {m.item}: '{m.snippet[:80]}'"
            if self.cfg.action == "reject":
                ctx.reject(record, self.name, reason)
                continue
            record.add_verdict(Verdict(stage=self.name, name="verbatim_span", ok=False, reason=reason))
            ctx.count(self.name, "flagged")
            stats.kept += 1
            yield record


__all__ = ["Decontaminate", "Match", "MemorizationCheck", "OverlapIndex", "window_hashes"]
