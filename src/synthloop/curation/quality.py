"""Heuristic quality filters: one `Filter`, one check per rule, the first failing rule is the reason.

Ratio rules look at *prose*: the explanation, problem, reasoning and free text with fenced code
blocks removed (code legitimately has '#' comments, short tokens and repeated asserts). Structural
rules (empty reasoning, missing answer) look at the record's fields. Thresholds and their sources
live in `QualityConfig`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from synthloop.curation.config import QualityConfig
from synthloop.pipeline import Filter
from synthloop.pipeline.stage import KeepResult
from synthloop.records import Record

_FENCE = re.compile(r"```.*?(?:```|\Z)", re.S)
_WORD = re.compile(r"\S+")
_ALPHA = re.compile(r"[^\W\d_]")

#: Refusals and assistant boilerplate that should not appear in training targets (except in
#: records meant to teach refusing). Drawn from the phrase lists used to clean ShareGPT-style data.
REFUSAL = re.compile(
    r"\b(?:as an ai(?: language)? model|i(?:'m| am) (?:sorry,? but )?(?:unable|not able) to (?:help|assist|provide|comply)"
    r"|i (?:cannot|can't|can not|won't) (?:help|assist|provide|fulfill|comply|do that)"
    r"|i'm sorry,? but i (?:cannot|can't)|(?:violates|against) (?:my|openai's) (?:guidelines|policy|policies))",
    re.I,
)
#: A reply that declines, in any wording a refusal-teaching task accepts (wider than REFUSAL, which
#: only catches the boilerplate that must never reach a training target).
DECLINE = re.compile(
    r"\bi (?:can['’]?t|cannot|can not|won['’]t|will not|must decline|have to decline)\b"
    r"|\bi(?: am|['’]m) (?:not able|unable|not going) to\b|\bi['’]m sorry,? but\b",
    re.I,
)
#: Template and artefact text: a record containing these was not finished by its writer.
BOILERPLATE = re.compile(
    r"lorem ipsum|\[insert [^\]]*\]|as of my (?:last )?(?:knowledge|training) (?:cutoff|update)"
    r"|<\s*(?:placeholder|your[ _]\w+)\s*>",
    re.I,
)


def prose(record: Record) -> str:
    """The natural-language part of a record, code blocks removed."""
    if record.text and not (record.explanation or record.problem):
        parts = [record.text]
    else:
        parts = [record.explanation, record.problem, record.reasoning, record.text]
    if not any(parts):
        parts = [m.get("content", "") for m in record.messages]
    return _FENCE.sub(" ", "\n".join(p for p in parts if p))


def dup_line_ratio(text: str) -> float:
    """Fraction of non-empty lines that repeat an earlier line (Gopher)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return 0.0 if len(lines) < 2 else 1 - len(set(lines)) / len(lines)


def dup_ngram_char_ratio(tokens: list[str], n: int = 5) -> float:
    """Fraction of word characters covered by 5-grams that occur more than once (Gopher)."""
    if len(tokens) < n * 2:
        return 0.0
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    counts = Counter(grams)
    covered = [False] * len(tokens)
    for i, g in enumerate(grams):
        if counts[g] > 1:
            covered[i : i + n] = [True] * n
    total = sum(len(t) for t in tokens)
    return sum(len(t) for t, c in zip(tokens, covered) if c) / total if total else 0.0


class QualityFilter(Filter):
    """Rejects empty, too short/long, symbol-heavy, repetitive, refusing or unfinished records."""

    name = "quality"

    def __init__(self, cfg: QualityConfig | None = None) -> None:
        self.cfg = cfg or QualityConfig()
        self.checks: list[Callable[[Record, str, list[str]], str | None]] = [
            self._empty, self._structure, self._length, self._word_length, self._symbols,
            self._alpha, self._repetition, self._phrases,
        ]

    def keep(self, record: Record) -> KeepResult:
        text = prose(record)
        tokens = _WORD.findall(text.casefold())
        for check in self.checks:
            reason = check(record, text, tokens)
            if reason:
                return False, reason
        return True

    def _empty(self, record: Record, text: str, tokens: list[str]) -> str | None:
        return None if record.main_text().strip() else "empty: the record has no text"

    def _structure(self, record: Record, text: str, tokens: list[str]) -> str | None:
        if record.problem:
            if self.cfg.require_reasoning and not record.reasoning.strip():
                return "empty_reasoning: a problem without step-by-step reasoning"
            if self.cfg.require_answer and not record.answer.strip():
                return "missing_answer: a problem without an answer"
        elif self.cfg.require_answer and record.messages:
            last = record.messages[-1]
            if last.get("role") != "assistant" or not last.get("content", "").strip():
                return "missing_answer: the conversation does not end with an assistant reply"
        return None

    def _length(self, record: Record, text: str, tokens: list[str]) -> str | None:
        n = len(tokens) if text.strip() else len(_WORD.findall(record.main_text()))
        if n < self.cfg.min_words:
            return f"too_short: {n} words < {self.cfg.min_words}"
        if n > self.cfg.max_words:
            return f"too_long: {n} words > {self.cfg.max_words}"
        return None

    def _word_length(self, record: Record, text: str, tokens: list[str]) -> str | None:
        if len(tokens) < 10:
            return None  # too few words for a mean to mean anything
        mean = sum(len(t) for t in tokens) / len(tokens)
        if not self.cfg.min_mean_word_len <= mean <= self.cfg.max_mean_word_len:
            return f"mean_word_length: {mean:.1f} outside [{self.cfg.min_mean_word_len}, {self.cfg.max_mean_word_len}]"
        return None

    def _symbols(self, record: Record, text: str, tokens: list[str]) -> str | None:
        if not tokens:
            return None
        ratio = (text.count("#") + text.count("...") + text.count("\u2026")) / len(tokens)
        if ratio > self.cfg.max_symbol_ratio:
            return f"symbol_ratio: {ratio:.2f} '#'/'...' per word > {self.cfg.max_symbol_ratio}"
        chars = [c for c in text if not c.isspace()]
        other = sum(1 for c in chars if not c.isalnum()) / len(chars) if chars else 0.0
        if other > self.cfg.max_non_alnum_char_ratio:
            return f"non_alphanumeric: {other:.2f} of characters > {self.cfg.max_non_alnum_char_ratio}"
        return None

    def _alpha(self, record: Record, text: str, tokens: list[str]) -> str | None:
        if len(tokens) < 10:
            return None
        ratio = sum(1 for t in tokens if _ALPHA.search(t)) / len(tokens)
        if ratio < self.cfg.min_alpha_word_ratio:
            return f"alpha_ratio: {ratio:.2f} of words have a letter < {self.cfg.min_alpha_word_ratio}"
        return None

    def _repetition(self, record: Record, text: str, tokens: list[str]) -> str | None:
        lines = dup_line_ratio(text)
        if lines > self.cfg.max_dup_line_ratio:
            return f"repeated_lines: {lines:.2f} of lines repeat > {self.cfg.max_dup_line_ratio}"
        grams = dup_ngram_char_ratio(tokens)
        if grams > self.cfg.max_dup_ngram_char_ratio:
            return f"repeated_ngrams: {grams:.2f} of characters in repeated 5-grams > {self.cfg.max_dup_ngram_char_ratio}"
        return None

    def _phrases(self, record: Record, text: str, tokens: list[str]) -> str | None:
        full = record.main_text()
        if self.cfg.refusals:
            reason = refusal_reason(record, full)
            if reason:
                return reason
        m = BOILERPLATE.search(full)
        return f"boilerplate: '{m.group(0)}'" if m else None


def refusal_policy(task: str) -> str:
    """The task's `refusal` policy (`TaskSpec.refusal`): "filter" unless a recipe-defined task says
    "expected" or "forbidden". Legacy tasks named `safety*` keep their refusals ("allowed")."""
    from synthloop.tasks.base import TASKS

    compiled = getattr(TASKS.get(task), "compiled", None)
    policy = getattr(getattr(compiled, "spec", None), "refusal", "filter")
    if policy == "filter" and task.startswith("safety"):
        return "allowed"
    return str(policy)


def reply_text(record: Record) -> str:
    """What the assistant said: the last assistant turn, else the answer, else the whole record."""
    turns = [m.get("content", "") for m in record.messages if m.get("role") == "assistant"]
    return turns[-1] if turns else (record.answer or record.main_text())


def refusal_reason(record: Record, full: str) -> str | None:
    """Why the refusal rule rejects `record` under its task's policy, or None."""
    policy = refusal_policy(record.task)
    if policy == "allowed":
        return None
    if policy == "expected":
        reply = reply_text(record)
        return None if DECLINE.search(reply) or REFUSAL.search(reply) else "no refusal: the task expects the reply to decline"
    if policy == "forbidden":
        m = DECLINE.search(reply_text(record)) or REFUSAL.search(reply_text(record))
        return f"over-refusal: '{m.group(0)}' (a benign look-alike request must be answered)" if m else None
    m = REFUSAL.search(full)
    return f"refusal: '{m.group(0)}'" if m else None


__all__ = ["BOILERPLATE", "DECLINE", "REFUSAL", "refusal_policy", "refusal_reason", "reply_text", "QualityFilter", "dup_line_ratio", "dup_ngram_char_ratio", "prose"]
