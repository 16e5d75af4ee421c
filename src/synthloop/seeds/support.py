"""Faithfulness, lexically: how much of an answer's content is found in its source chunk.

The score is the share of the answer's content words (lower-cased, 4+ letters, not a stop word, a
plural `s` folded) that occur in the chunk. It is a cheap, deterministic first gate: an answer that
talks about things its chunk never mentions scores low. It cannot see a wrong *relation* between
right words; the judge rubric (`tasks/rubrics/grounded.md`) is the optional second gate."""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-zà-ÿ]{4,}")
STOP = frozenset(
    ["about", "above", "after", "again", "against", "also", "because", "been", "before", "being", "below", "between", "both", "could", "does", "doing", "down", "during", "each", "even", "every", "from", "further", "have", "having", "here", "into", "itself", "just", "more", "most", "must", "only", "other", "over", "same", "should", "some", "such", "than", "that", "their", "them", "then", "there", "these", "they", "this", "those", "through", "under", "until", "very", "were", "what", "when", "where", "which", "while", "whom", "will", "with", "would", "your", "yours", "answer", "question", "chunk", "passage", "text"]
)


def content_words(text: str) -> set[str]:
    return {_fold(w) for w in _WORD.findall(text.lower()) if w not in STOP}


def _fold(word: str) -> str:
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def support_score(answer: str, chunk: str) -> tuple[float, list[str]]:
    """(share of the answer's content words found in the chunk, the words that are not)."""
    words = content_words(answer)
    if not words:
        return 0.0, []
    source = content_words(chunk)
    missing = sorted(words - source)
    return 1 - len(missing) / len(words), missing


__all__ = ["content_words", "support_score"]
