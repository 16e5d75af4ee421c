"""An LLM judge: a model grades each record 1-5 against a rubric file; below `min_score` is rejected.

Rubrics are Markdown files (`rubrics/<name>.md`: criteria, the 1-5 scale and the exact output format
`Score: N` / `Reason: ...`), so a rubric change is a reviewed diff. Judges are small models that do
not always follow formats, so the parser is forgiving about *form* (`**Score:** 4`, `score 4/5`,
`Rating: 4`, a bare leading `4`) and strict about *range* (`7`, `0` or `8/10` are refused). An
unparseable judgement is asked again by the client (a fresh seed each time) and, if it stays
unparseable, becomes a rejection with reason `judge_unparseable: ...`, never an exception.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from synthloop.backends.base import Request, Response
from synthloop.backends.client import Client, Parsed, ParseFailure
from synthloop.errors import VerifierError
from synthloop.records import Record, Verdict

SCALE_MIN, SCALE_MAX = 1, 5
BUILTIN_RUBRICS = ("instruction", "safety", "textbook")
#: The content to judge sits between these lines in the prompt (the fake judge looks there too).
BEGIN, END = "<<<BEGIN RECORD>>>", "<<<END RECORD>>>"
LOW_QUALITY_MARKER = "LOW-QUALITY"

_NUMBER = r"(\d+(?:\.\d+)?)(?:\s*(?:/|out\s+of)\s*(\d+))?"
_LABELLED = re.compile(r"\b(?:score|rating|grade)\b[^\S\n]*(?:\(\s*1\s*-\s*5\s*\))?[^\S\n]*[:=\-]?[^\S\n]*" + _NUMBER, re.I)
_LEADING = re.compile(r"\A\s*" + _NUMBER + r"[^\S\n]*(?=\.?\s*\Z|\.?\n|[-–—:,;)]|\s+[A-Za-z])")
_FRACTION = re.compile(r"\b(\d+(?:\.\d+)?)\s*(?:/|out\s+of)\s*(5)\b", re.I)
_REASON = re.compile(r"\b(?:reason|reasoning|explanation|justification)\b\s*[:\-]\s*(.+)", re.I | re.S)
_MARKDOWN = re.compile(r"[*_`#>]")
MAX_REASON_CHARS = 300


@dataclass(frozen=True)
class Rubric:
    """Criteria and scale (`text`), and optional worked examples (`examples`: pairs of a record and
    the judgement it deserves, from `<name>.examples.jsonl` beside the rubric). The examples are
    sent as earlier conversation turns: small judges copy the format of a demonstration far more
    reliably than they follow a written instruction (measured with SmolLM2-135M: 0 of 4 prompt
    variants without examples produced a parseable score, 2 of 2 with them)."""

    name: str
    text: str
    examples: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Judgement:
    """A parsed judgement: the raw score on the 1-5 scale, and the judge's reason."""

    score: float
    reason: str


def load_rubric(rubric: str | Path) -> Rubric:
    """A built-in rubric by name, or a rubric file by path."""
    if isinstance(rubric, str) and rubric in BUILTIN_RUBRICS:
        folder = resources.files("synthloop.verifiers").joinpath("rubrics")
        text = folder.joinpath(f"{rubric}.md").read_text(encoding="utf-8")
        examples = folder.joinpath(f"{rubric}.examples.jsonl")
        return Rubric(rubric, text, _examples(examples.read_text(encoding="utf-8")) if examples.is_file() else ())
    path = Path(rubric)
    if path.is_file():
        examples_path = path.with_name(f"{path.stem}.examples.jsonl")
        examples = _examples(examples_path.read_text(encoding="utf-8")) if examples_path.is_file() else ()
        return Rubric(path.stem, path.read_text(encoding="utf-8"), examples)
    raise VerifierError(
        f"unknown rubric {str(rubric)!r}: use a built-in rubric ({', '.join(BUILTIN_RUBRICS)}) "
        "or the path of an existing rubric file (Markdown with criteria, a 1-5 scale and the output format)"
    )


def _examples(text: str) -> tuple[tuple[str, str], ...]:
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return tuple((row["record"], row["judgement"]) for row in rows)


def parse_judgement(response: Response) -> Judgement:
    """`Score: N` / `Reason: ...`, forgivingly; raises `ParseFailure` (the client re-asks)."""
    text = _MARKDOWN.sub("", response.text)
    match = _LABELLED.search(text) or _LEADING.search(text) or _FRACTION.search(text)
    if match is None:
        snippet = " ".join(response.text.split())[:80]
        raise ParseFailure(f"no score found in {snippet!r}")
    value, denominator = float(match.group(1)), match.group(2)
    if denominator is not None and int(denominator) != SCALE_MAX:
        raise ParseFailure(f"score {match.group(1)}/{denominator} is not on the {SCALE_MIN}-{SCALE_MAX} scale")
    if not SCALE_MIN <= value <= SCALE_MAX:
        raise ParseFailure(f"score {value:g} is outside the {SCALE_MIN}-{SCALE_MAX} scale")
    return Judgement(score=value, reason=_reason(text, match.end()))


def _reason(text: str, after_score: int) -> str:
    labelled = _REASON.search(text)
    reason = labelled.group(1) if labelled else text[after_score:]
    reason = " ".join(reason.split()).lstrip(".:-–— ")
    return (reason[:MAX_REASON_CHARS] + "...") if len(reason) > MAX_REASON_CHARS else (reason or "(no reason given)")


def record_for_judging(record: Record, max_chars: int) -> str:
    """The conversation as a student would see it (or the record's text), capped at `max_chars`."""
    if record.messages:
        body = "\n\n".join(f"[{m.get('role', '?')}]\n{m.get('content', '')}" for m in record.messages)
    else:
        body = record.main_text()
    return body if len(body) <= max_chars else body[:max_chars] + "\n...[truncated]"


class LLMJudge:
    """`verify(record)` / `await verify_batch(records)`: grade with a model against a rubric.

    `score` in the verdict is the raw 1-5 score (None when there is none); `ok` is
    `score >= min_score`. The judge samples at temperature 0 through `client`, so its answers are
    cached and re-runs cost nothing."""

    name = "judge"

    def __init__(
        self,
        client: Client,
        rubric: str | Path = "textbook",
        min_score: float = 3.0,
        *,
        model: str | None = None,
        max_tokens: int = 128,
        seed: int = 0,
        max_chars: int = 6000,
    ) -> None:
        if min_score > SCALE_MAX:
            raise VerifierError(f"judge min_score {min_score:g} is above the top of the {SCALE_MIN}-{SCALE_MAX} scale: nothing could pass; use at most {SCALE_MAX}")
        self.client = client
        self.rubric = load_rubric(rubric)
        self.min_score = min_score
        self.model = model or client.backend.model
        self.max_tokens = max_tokens
        self.seed = seed
        self.max_chars = max_chars

    def request(self, record: Record) -> Request:
        messages = [{"role": "system", "content": self.rubric.text}]
        for example, judgement in self.rubric.examples:
            messages += [{"role": "user", "content": self._prompt(example)}, {"role": "assistant", "content": judgement}]
        messages.append({"role": "user", "content": self._prompt(record_for_judging(record, self.max_chars))})
        return Request.chat(
            messages,
            model=self.model,
            temperature=0.0,
            top_p=1.0,
            max_tokens=self.max_tokens,
            seed=self.seed,
            tag=f"judge:{self.rubric.name}",
        )

    def _prompt(self, body: str) -> str:
        return (
            f"Grade the record between the markers using the rubric ({self.rubric.name}).\n\n"
            f"{BEGIN}\n{body}\n{END}\n\n"
            f"Reply in exactly this format, with N a whole number from {SCALE_MIN} to {SCALE_MAX}:\n"
            "Score: N\nReason: <one sentence>"
        )

    async def verify_batch(self, records: Sequence[Record]) -> list[Verdict]:
        """One request per record, sent together through the client (batched, cached, retried)."""
        parsed = await self.client.complete_parsed([self.request(r) for r in records], parse_judgement)
        return [self.verdict(p) for p in parsed]

    def verify(self, record: Record) -> Verdict:
        """Synchronous, for `VerifierStage`; from async code, `await verify_batch` instead."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            parsed = self.client.complete_parsed_sync([self.request(record)], parse_judgement)
            return self.verdict(parsed[0])
        raise VerifierError("LLMJudge.verify was called inside a running event loop: `await judge.verify_batch([record])` instead")

    def verdict(self, parsed: Parsed[Judgement]) -> Verdict:
        if parsed.error is not None:
            return self._verdict(False, None, f"judge_backend_error: {type(parsed.error).__name__}: {parsed.error}")
        if not parsed.ok or parsed.value is None:
            detail = parsed.reason.removeprefix("unparseable:").strip()
            return self._verdict(False, None, f"judge_unparseable: {detail}")
        score, why = parsed.value.score, parsed.value.reason
        if score < self.min_score:
            return self._verdict(False, score, f"judge_score_low: {score:g}/{SCALE_MAX} < {self.min_score:g}: {why}")
        return self._verdict(True, score, f"judge_score: {score:g}/{SCALE_MAX}: {why}")

    def _verdict(self, ok: bool, score: float | None, reason: str) -> Verdict:
        return Verdict(stage="judge", name=self.name, ok=ok, score=score, reason=reason)


# -- the canned judge for the fake backend (tests, --dry-run) --------------------------------------
def fake_judgement(request: Request) -> str:
    """Deterministic and well formed: 4, or 2 when the judged text contains `LOW-QUALITY`."""
    prompt = request.messages[-1][1] if request.messages else ""
    judged = prompt.split(BEGIN, 1)[-1].split(END, 1)[0]
    if LOW_QUALITY_MARKER in judged:
        return "Score: 2\nReason: The record is marked low quality and would teach little."
    return "Score: 4\nReason: Correct and clear, with minor room for more depth."


__all__ = [
    "BUILTIN_RUBRICS",
    "Judgement",
    "LLMJudge",
    "Rubric",
    "fake_judgement",
    "load_rubric",
    "parse_judgement",
    "record_for_judging",
]
