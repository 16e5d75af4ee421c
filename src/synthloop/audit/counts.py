"""Counting attribute axes per record, vectorised: one regex pass per record finds every lexicon
term, and numpy turns the (record, category) hits into a 0/1 presence matrix per axis.

A record counts once per category it mentions; field axes (persona, topic, skill) count the
record's value of that field. The presence matrices are what the statistics bootstrap over.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from synthloop.audit.lexicon import AXES

#: Record fields that are attribute axes when a set fills them.
FIELD_AXES = ("persona", "topic", "skill")


@dataclass(frozen=True)
class AxisCounts:
    """One axis over one set: `presence[i, j]` is 1 when record i mentions category j."""

    axis: str
    categories: tuple[str, ...]
    presence: np.ndarray  # (n_records, n_categories), uint8

    @property
    def totals(self) -> np.ndarray:
        return self.presence.sum(axis=0).astype(np.float64)


class Lexicon:
    """The compiled lexicon: one alternation regex, and each term's global category index."""

    def __init__(self, axes: dict[str, dict[str, tuple[str, ...]]] | None = None) -> None:
        self.axes = axes or AXES
        self.columns: list[tuple[str, str]] = [(a, c) for a, cats in self.axes.items() for c in cats]
        index = {col: i for i, col in enumerate(self.columns)}
        self.term_column: dict[str, list[int]] = {}
        for axis, cats in self.axes.items():
            for cat, terms in cats.items():
                for term in terms:
                    self.term_column.setdefault(term, []).append(index[(axis, cat)])
        alternation = "|".join(sorted(map(re.escape, self.term_column), key=len, reverse=True))
        self.pattern = re.compile(rf"(?<![\w-])(?:{alternation})(?![\w-])")

    def presence(self, texts: Sequence[str]) -> np.ndarray:
        """(n_texts, n_columns) uint8: which categories each text mentions."""
        rows: list[int] = []
        cols: list[int] = []
        find, lookup = self.pattern.findall, self.term_column
        for i, text in enumerate(texts):
            for term in set(find(text.lower())):
                for c in lookup[term]:
                    rows.append(i)
                    cols.append(c)
        out = np.zeros((len(texts), len(self.columns)), dtype=np.uint8)
        if rows:
            out[np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)] = 1
        return out

    def axis_counts(self, texts: Sequence[str]) -> list[AxisCounts]:
        matrix = self.presence(texts)
        result = []
        for axis, cats in self.axes.items():
            idx = [i for i, (a, _) in enumerate(self.columns) if a == axis]
            result.append(AxisCounts(axis, tuple(cats), matrix[:, idx]))
        return result


def field_counts(axis: str, values: Sequence[str], categories: Sequence[str] | None = None) -> AxisCounts:
    """One field axis: each record's value is its one category (empty values count nowhere)."""
    cats = tuple(categories) if categories is not None else tuple(sorted({v for v in values if v}))
    index = {c: i for i, c in enumerate(cats)}
    codes = np.fromiter((index.get(v, -1) for v in values), dtype=np.int64, count=len(values))
    out = np.zeros((len(values), len(cats)), dtype=np.uint8)
    hit = codes >= 0
    out[np.nonzero(hit)[0], codes[hit]] = 1
    return AxisCounts(axis, cats, out)


__all__ = ["FIELD_AXES", "AxisCounts", "Lexicon", "field_counts"]
