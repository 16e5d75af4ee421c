"""An LLM judge: a model grades each record 1-5 against a rubric file; below `min_score` is rejected.

Rubrics are Markdown files (`rubrics/<name>.md`: criteria, the 1-5 scale and the exact output format
`Score: N` / `Reason: ...`), so a rubric change is a reviewed diff. Judges are small models that do
not always follow formats, so the parser is forgiving about *form* (`**Score:** 4`, `score 4/5`,
`Rating: 4`, a bare leading `4`) and strict about *range* (`7`, `0` or `8/10` are refused). An
unparseable judgement is asked again by the client (a fresh seed each time) and, if it stays
unparseable, becomes a rejection with reason `judge_unparseable: ...`, never an exception.

Small judges copy: SmolLM2-135M answered three wrong quickstart records with the judgement of the
rubric's own worked example, word for word. So a judgement whose reason repeats a worked example's
(`copies_example`) is unparseable, and the re-ask shows the examples in another order. A judge is
measured before it may gate (`synthloop.verifiers.calibration`); one that fails and is allowed to
run anyway is *advisory*: its verdicts say so and never reject.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import cache
from importlib import resources
from pathlib import Path

from synthloop.backends.base import Request, Response
from synthloop.backends.client import Client, Parsed, ParseFailure
from synthloop.errors import VerifierError
from synthloop.records import Record, Verdict

SCALE_MIN, SCALE_MAX = 1, 5
BUILTIN_RUBRICS = ("instruction", "refusal", "safety", "textbook")
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
#: A reason this similar (word-level ratio) to a worked example's reason is a copy.
COPY_RATIO = 0.8
#: Sampling temperature when a record is judged more than once (`samples` > 1).
SAMPLE_TEMPERATURE = 0.7
#: Verdict reasons of an advisory (uncalibrated) judge start with this category.
ADVISORY = "advisory"


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
        worked = folder.joinpath(f"{rubric}.examples.jsonl")
        return Rubric(rubric, text, _examples(worked.read_text(encoding="utf-8")) if worked.is_file() else ())
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


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def copies_example(reason: str, example_reasons: Iterable[str]) -> str | None:
    """The worked example's reason that `reason` repeats (equal once normalised, or a word-level
    similarity of at least `COPY_RATIO`), else None."""
    words = _words(reason)
    for example in example_reasons:
        theirs = _words(example)
        if words == theirs or (words and SequenceMatcher(None, words, theirs).ratio() >= COPY_RATIO):
            return example
    return None


def example_reasons(rubric: Rubric) -> tuple[str, ...]:
    """The reasons of a rubric's worked judgements (what a judge must not copy)."""
    return tuple(parse_judgement(Response(text=j)).reason for _, j in rubric.examples)


def parser_against(reasons: Sequence[str]) -> Callable[[Response], Judgement]:
    """`parse_judgement`, plus: a reason copied from one of `reasons` is a `ParseFailure`."""

    def parse(response: Response) -> Judgement:
        judgement = parse_judgement(response)
        copied = copies_example(judgement.reason, reasons)
        if copied is not None:
            raise ParseFailure(f"copies_example: the reason repeats a worked example's ({copied[:60]!r})")
        return judgement

    return parse


def rotate_examples(request: Request) -> Request:
    """The same request with its worked examples (user/assistant turn pairs between the system
    message and the final record) rotated by one pair: a re-ask sees them in another order."""
    head, turns, last = request.messages[:1], request.messages[1:-1], request.messages[-1:]
    if len(turns) < 4:
        return request
    return dataclasses.replace(request, messages=head + turns[2:] + turns[:2] + last)


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

    `score` in the verdict is the raw 1-5 score (the median of `samples` judgements; None when
    there is none); `ok` is `score >= min_score`. With one sample the judge uses temperature 0, so
    its answers are cached and re-runs cost nothing. `advisory` (the reason, e.g. "uncalibrated
    judge (balanced accuracy 0.52 < 0.75)") makes every verdict ok, its reason starting
    `advisory: ...`: an advisory judge informs, never rejects."""

    name = "judge"

    def __init__(
        self,
        client: Client,
        rubric: str | Path | Rubric = "textbook",
        min_score: float = 3.0,
        *,
        model: str | None = None,
        max_tokens: int = 128,
        seed: int = 0,
        max_chars: int = 6000,
        samples: int = 1,
        advisory: str | None = None,
        panel: Sequence[tuple[Client, str]] = (),
        temperature: float = 0.0,
        top_p: float = 1.0,
    ) -> None:
        if min_score > SCALE_MAX:
            raise VerifierError(f"judge min_score {min_score:g} is above the top of the {SCALE_MIN}-{SCALE_MAX} scale: nothing could pass; use at most {SCALE_MAX}")
        if samples < 1:
            raise VerifierError(f"judge samples must be at least 1, got {samples}")
        self.client = client
        self.rubric = rubric if isinstance(rubric, Rubric) else load_rubric(rubric)
        self.min_score = min_score
        self.model = model or client.backend.model
        self.max_tokens = max_tokens
        self.seed = seed
        self.max_chars = max_chars
        self.samples = samples
        self.advisory = advisory
        #: As configured (`[judge.backend]`); k > 1 samples at temperature 0 would all be the same
        #: judgement, so they sample at SAMPLE_TEMPERATURE unless a temperature is configured.
        self.temperature = temperature if samples == 1 or temperature > 0 else SAMPLE_TEMPERATURE
        self.top_p = top_p
        #: (client, model) of every judge: this one first, then the panel's
        self.members: list[tuple[Client, str]] = [(client, self.model), *panel]

    def with_examples(self, examples: Sequence[tuple[str, str]]) -> "LLMJudge":
        """The same judge with other worked examples (calibration re-runs them shuffled)."""
        return LLMJudge(self.client, dataclasses.replace(self.rubric, examples=tuple(examples)), self.min_score,
                        model=self.model, max_tokens=self.max_tokens, seed=self.seed, max_chars=self.max_chars,
                        samples=self.samples, panel=self.members[1:], temperature=self.temperature, top_p=self.top_p)

    def request(self, record: Record, sample: int = 0, member: int = 0) -> Request:
        messages = [{"role": "system", "content": self.rubric.text}]
        for example, judgement in self.rubric.examples:
            messages += [{"role": "user", "content": self._prompt(example)}, {"role": "assistant", "content": judgement}]
        messages.append({"role": "user", "content": self._prompt(record_for_judging(record, self.max_chars))})
        return Request.chat(
            messages,
            model=self.members[member][1],
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            seed=self.seed + sample,
            tag=f"judge:{self.rubric.name}",
        )

    def requests(self, record: Record) -> list[Request]:
        """One request per panel member and sample (seeds `seed`, `seed + 1`, ...), member by member."""
        return [self.request(record, k, m) for m in range(len(self.members)) for k in range(self.samples)]

    def clients(self) -> list[Client]:
        """The client that sends each of `requests(record)`."""
        return [client for client, _ in self.members for _ in range(self.samples)]

    def parse(self, response: Response) -> Judgement:
        """`parse_judgement`, refusing a reason copied from this rubric's worked examples."""
        return parser_against(example_reasons(self.rubric))(response)

    def _prompt(self, body: str) -> str:
        return (
            f"Grade the record between the markers using the rubric ({self.rubric.name}).\n\n"
            f"{BEGIN}\n{body}\n{END}\n\n"
            f"Reply in exactly this format, with N a whole number from {SCALE_MIN} to {SCALE_MAX}:\n"
            "Score: N\nReason: <one sentence>"
        )

    async def verify_batch(self, records: Sequence[Record]) -> list[Verdict]:
        """Every request of every record sent together through the client (batched, cached, retried)."""
        scored = await judge_records([(self, r) for r in records])
        return [self.verdict_of(s) for s in scored]

    def verify(self, record: Record) -> Verdict:
        """Synchronous, for `VerifierStage`; from async code, `await verify_batch` instead."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._verify_one(record))
        raise VerifierError("LLMJudge.verify was called inside a running event loop: `await judge.verify_batch([record])` instead")

    async def _verify_one(self, record: Record) -> Verdict:
        try:
            return (await self.verify_batch([record]))[0]
        finally:
            await self.client.backend.aclose()  # loop-bound resources die with this loop; reopened lazily

    def verdict_of(self, scored: Scored) -> Verdict:
        """The verdict for one record's judgements: the median score, with the reason of the
        judgement nearest to it; the first failure when none parsed."""
        values = [p.value for p in scored.outcomes if p.ok and p.value is not None]
        median = scored.score
        if not values or median is None:
            return self.verdict(scored.outcomes[0])
        nearest = min(values, key=lambda v: abs(v.score - median))
        if len(scored.outcomes) == 1:
            return self._scored(median, nearest.reason)
        note = f" (median of {len(values)} of {len(scored.outcomes)} samples: {', '.join(f'{v.score:g}' for v in values)}"
        if len(self.members) > 1:
            note += "; panel " + ", ".join(f"{m}: {'-' if x is None else f'{x:g}'}" for (_, m), x in zip(self.members, scored.member_scores))
        return self._scored(median, nearest.reason, note + ")")

    def verdict(self, parsed: Parsed[Judgement]) -> Verdict:
        """The verdict for one judgement."""
        if parsed.error is not None:
            return self._verdict(False, None, f"judge_backend_error: {type(parsed.error).__name__}: {parsed.error}")
        if not parsed.ok or parsed.value is None:
            detail = parsed.reason.removeprefix("unparseable:").strip()
            return self._verdict(False, None, f"judge_unparseable: {detail}")
        return self._scored(parsed.value.score, parsed.value.reason)

    def _scored(self, score: float, why: str, note: str = "") -> Verdict:
        if score < self.min_score:
            return self._verdict(False, score, f"judge_score_low: {score:g}/{SCALE_MAX} < {self.min_score:g}{note}: {why}")
        return self._verdict(True, score, f"judge_score: {score:g}/{SCALE_MAX}{note}: {why}")

    def _verdict(self, ok: bool, score: float | None, reason: str) -> Verdict:
        if self.advisory is not None:
            return Verdict(stage="judge", name=self.name, ok=True, score=score, reason=f"{ADVISORY}: {self.advisory}: {reason}")
        return Verdict(stage="judge", name=self.name, ok=ok, score=score, reason=reason)


@dataclass
class Scored:
    """One record's judgements (one per sample) from `judge_records`."""

    judge: LLMJudge
    outcomes: list[Parsed[Judgement]]

    @property
    def score(self) -> float | None:
        """The median of the parsed scores; None when none parsed."""
        return _median(self.outcomes)

    @property
    def member_scores(self) -> list[float | None]:
        """Each panel member's median score (one entry without a panel)."""
        k = self.judge.samples
        return [_median(self.outcomes[i : i + k]) for i in range(0, len(self.outcomes), k)]


def _median(outcomes: Sequence[Parsed[Judgement]]) -> float | None:
    scores = [p.value.score for p in outcomes if p.ok and p.value is not None]
    return float(statistics.median(scores)) if scores else None


async def judge_records(pairs: Sequence[tuple[LLMJudge, Record]]) -> list[Scored]:
    """Judge each record with its judge: one client call per client, concurrently (judges sharing
    a backend batch their judgements of every rubric together). A reason copied from any judge's
    worked examples is unparseable, and its re-ask rotates the examples."""
    reasons = sorted({reason for j in {id(j): j for j, _ in pairs}.values() for reason in example_reasons(j.rubric)})
    slots = [(client, req) for j, r in pairs for client, req in zip(j.clients(), j.requests(r))]
    by_client: dict[int, list[int]] = {}
    for at, (client, _) in enumerate(slots):
        by_client.setdefault(id(client), []).append(at)
    groups = list(by_client.values())
    answers = await asyncio.gather(*(
        slots[idx[0]][0].complete_parsed([slots[i][1] for i in idx], parser_against(reasons), reask=rotate_examples) for idx in groups
    ))
    parsed: list[Parsed[Judgement]] = [Parsed(value=None, ok=False)] * len(slots)
    for idx, got in zip(groups, answers):
        for i, outcome in zip(idx, got):
            parsed[i] = outcome
    out: list[Scored] = []
    at = 0
    for judge, _ in pairs:
        n = judge.samples * len(judge.members)
        out.append(Scored(judge, parsed[at : at + n]))
        at += n
    return out


def is_advisory(verdict: Verdict) -> bool:
    """True for a verdict of an advisory (uncalibrated) judge: the record counts as unjudged."""
    return verdict.stage == "judge" and verdict.reason.startswith(f"{ADVISORY}:")


# -- the canned judge for the fake backend (tests, --dry-run) --------------------------------------
def fake_judgement(request: Request) -> str:
    """A test double, deterministic and well formed. It holds the answer key of the built-in
    calibration sets: an item of those sets gets 4 when labelled good and 1 when labelled bad, so
    fake runs with min_score 2 to 4 pass calibration and exercise the gating path (its calibration figures measure the
    plumbing, not judging). Anything else gets 4, or 2 when the judged text contains `LOW-QUALITY`."""
    judged = judged_text(request)
    label = calibration_label(request)
    if label == "bad":
        return "Score: 1\nReason: The record has an error or misses the request; a student would learn the wrong thing."
    if label is None and LOW_QUALITY_MARKER in judged:
        return "Score: 2\nReason: The record is marked low quality and would teach little."
    return "Score: 4\nReason: Correct and clear, with minor room for more depth."


def judged_text(request: Request) -> str:
    """The record a judge request asks about (between the markers; the whole prompt without them)."""
    prompt = request.messages[-1][1] if request.messages else ""
    return prompt.split(BEGIN, 1)[-1].split(END, 1)[0]


def calibration_label(request: Request) -> str | None:
    """"good" / "bad" when the request judges an item of a built-in calibration set, else None
    (test doubles answer calibration items from the key and everything else as they like)."""
    return _builtin_answer_key().get(judged_text(request).strip())


@cache
def _builtin_answer_key() -> dict[str, str]:
    """Rendered record -> label, for every item of the built-in calibration sets."""
    from synthloop.verifiers.calibration import BUILTIN_SETS, load_calibration_set

    key: dict[str, str] = {}
    for rubric in BUILTIN_SETS:
        for item in load_calibration_set("builtin", rubric).items:
            key[record_for_judging(item.record, 10**9)] = item.label
    return key


__all__ = [
    "ADVISORY",
    "BUILTIN_RUBRICS",
    "Judgement",
    "LLMJudge",
    "Rubric",
    "Scored",
    "calibration_label",
    "copies_example",
    "example_reasons",
    "fake_judgement",
    "is_advisory",
    "judge_records",
    "judged_text",
    "load_rubric",
    "parse_judgement",
    "parser_against",
    "record_for_judging",
    "rotate_examples",
]
