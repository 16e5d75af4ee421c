"""Text normalisation shared by the curation stages, and the rewriting of a record's content.

Every dedup and overlap check compares *normalised* text, so that case, Unicode compatibility forms
(full-width letters, ligatures) and whitespace layout do not hide a duplicate.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from synthloop.records import Record

#: A word for n-gram purposes: a run of letters/digits (any script), so punctuation is ignored.
_WORD = re.compile(r"\w+")

#: Record fields that hold content (the same ones that are hashed), rewritten by redaction.
TEXT_FIELDS = ("explanation", "problem", "reasoning", "answer", "tests", "text")


T = TypeVar("T")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of at most `size` items (itertools.batched arrived only in 3.12)."""
    it = iter(items)
    while batch := list(itertools.islice(it, size)):
        yield batch


def normalize(text: str) -> str:
    """NFKC, casefold, every whitespace run collapsed to one space, ends stripped."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def words(text: str) -> list[str]:
    """The normalised words of `text` (punctuation dropped): the unit of n-gram comparisons."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def rewrite_content(record: Record, fn: Callable[[str], str]) -> None:
    """Apply `fn` to every content field and every message's content, in place."""
    for name in TEXT_FIELDS:
        value = getattr(record, name)
        if value:
            setattr(record, name, fn(value))
    for message in record.messages:
        if message.get("content"):
            message["content"] = fn(message["content"])


__all__ = ["TEXT_FIELDS", "batched", "normalize", "rewrite_content", "words"]
