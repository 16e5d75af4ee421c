"""Judges are measured before they gate.

A judge is run on a labelled calibration set for its rubric (records labelled `good` or `bad`):
the built-in sets (`calibration_sets/<rubric>.jsonl`, 40 good/bad pairs each for `textbook` and
`instruction`: wrong facts, wrong code, wrong stated outputs, answers that miss the question,
needless refusals, correct answers short and long) or a user's file (`[judge] calibration`).
A record counts as accepted when its score is at least the judge's `min_score`; an unparseable
judgement counts as a rejection, as it would in a run.

Figures: balanced accuracy (mean of the share of good records accepted and of bad records
rejected), the score distribution per label, the share judged right per kind of item, length
sensitivity (acceptance and mean score of long vs short correct answers) and, on request, order
sensitivity (the set judged again with the worked examples shuffled: the share of decisions that
agree). Results are cached per (judge model, rubric, calibration set hash) in the run's
`judge_calibration.json`; the judge's requests go through its normal `Client`, so they are also
in the request cache and count against the budget.

`gate_mode` turns a calibration into a decision: below `[judge] min_balanced_accuracy` a judge does
not gate; the run stops with a one-line error, unless `allow_uncalibrated = true`, and then the
judge is advisory (its verdicts say so and never reject).
"""

from __future__ import annotations

import json
import os
import random
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import xxhash

from synthloop.errors import VerifierError
from synthloop.recipe import JudgeConfig
from synthloop.records import Record, canonical_json
from synthloop.verifiers.judge import LLMJudge, Scored, judge_records

#: Rubrics with a built-in calibration set.
BUILTIN_SETS = ("textbook", "instruction", "refusal")
#: In the run directory: cached calibrations, and which one each rubric's judge uses.
CALIBRATION_FILE = "judge_calibration.json"
LABELS = ("good", "bad")
Mode = Literal["gate", "advisory"]


class JudgeNotCalibrated(VerifierError):
    """The judge may not gate (it failed calibration or was not measured) and the recipe does not
    allow an advisory judge."""


@dataclass(frozen=True)
class CalibrationItem:
    id: str
    label: str  # good | bad
    record: Record
    kind: str = ""  # e.g. wrong_code, needless_refusal, correct_long
    pair: str = ""


@dataclass(frozen=True)
class CalibrationSet:
    name: str  # "builtin:textbook" or the file's path
    items: tuple[CalibrationItem, ...]

    @property
    def digest(self) -> str:
        rows = [(i.id, i.label, i.record.content()) for i in self.items]
        return xxhash.xxh3_64_hexdigest(canonical_json(rows).encode("utf-8"))


def load_calibration_set(source: str, rubric: str) -> CalibrationSet:
    """`source` "builtin" (the rubric's own set) or a JSONL path: one labelled record a line,
    `{"label": "good"|"bad", "messages": [...] | "text": "...", "id"?, "kind"?, "pair"?, "rubric"?}`;
    rows naming another rubric are skipped."""
    if source == "builtin":
        if rubric not in BUILTIN_SETS:
            raise VerifierError(
                f"rubric {rubric!r} has no built-in calibration set (built in: {', '.join(BUILTIN_SETS)}): set [judge] "
                'calibration = "my-set.jsonl" (records labelled good/bad), or calibration = "none" with allow_uncalibrated = true'
            )
        text = resources.files("synthloop.verifiers").joinpath("calibration_sets", f"{rubric}.jsonl").read_text(encoding="utf-8")
        return CalibrationSet(f"builtin:{rubric}", _items(text, f"builtin:{rubric}", rubric))
    path = Path(source)
    if not path.is_file():
        raise VerifierError(f"[judge] calibration: file not found: {path} (a JSONL of records labelled good/bad, \"builtin\" or \"none\")")
    return CalibrationSet(str(path), _items(path.read_text(encoding="utf-8"), str(path), rubric))


def _items(text: str, where: str, rubric: str) -> tuple[CalibrationItem, ...]:
    items = []
    for n, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            row = _row(line, f"{where} line {n}")
            if row.get("rubric", rubric) == rubric:
                items.append(_item(row, f"{where} line {n}", n))
    labels = Counter(i.label for i in items)
    if not labels["good"] or not labels["bad"]:
        raise VerifierError(f"{where}: a calibration set needs records labelled good and bad for rubric {rubric!r}, got {dict(labels) or 'none'}")
    return tuple(items)


def _row(line: str, where: str) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise VerifierError(f"{where}: not valid JSON ({e.msg}): write one JSON object per line") from None
    if not isinstance(row, dict):
        raise VerifierError(f"{where}: expected a JSON object with 'label' and 'messages' or 'text'")
    return row


def _item(row: dict[str, Any], where: str, n: int) -> CalibrationItem:
    label = row.get("label")
    if label not in LABELS:
        raise VerifierError(f"{where}: 'label' must be \"good\" or \"bad\", got {label!r}")
    messages, text = row.get("messages"), row.get("text")
    if not (isinstance(messages, list) and messages) and not (isinstance(text, str) and text):
        raise VerifierError(f"{where}: give the record as 'messages' (a list of {{role, content}}) or 'text'")
    record = Record(id=str(row.get("id", n)), messages=[dict(m) for m in messages or []], text=text or "")
    return CalibrationItem(str(row.get("id", n)), label, record, str(row.get("kind", "")), str(row.get("pair", "")))


@dataclass
class Calibration:
    """A judge's figures on one calibration set (see the module docstring)."""

    rubric: str
    model: str
    calibration_set: str
    set_hash: str
    min_score: float
    n_good: int
    n_bad: int
    balanced_accuracy: float
    good_accepted: float  # true positive rate
    bad_rejected: float  # true negative rate
    unparseable: int
    #: label -> score ("1".."5", fractional medians, "unparseable") -> count
    scores: dict[str, dict[str, int]]
    #: kind -> share of that kind judged right
    by_kind: dict[str, float]
    #: correct answers, long vs short: acceptance and mean score, and long minus short
    length: dict[str, float | None]
    #: share of decisions unchanged with the worked examples shuffled (None: not measured)
    order_agreement: float | None = None
    #: with a panel: {"members": [model, ...], "balanced_accuracy": [per member], "agreement": share
    #: of items every member decided alike}
    panel: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Calibration":
        return cls(**d)

    def summary(self) -> str:
        """One line: what a log, the CLI or a card shows."""
        order = "not measured" if self.order_agreement is None else f"{self.order_agreement:.2f}"
        gap = self.length.get("accept_gap")
        panel = f"; panel agreement {self.panel['agreement']:.2f}" if self.panel else ""
        return (
            f"judge {self.model} on rubric {self.rubric}: balanced accuracy {self.balanced_accuracy:.2f} on "
            f"{self.calibration_set} ({self.n_good} good, {self.n_bad} bad; good accepted {self.good_accepted:.2f}, "
            f"bad rejected {self.bad_rejected:.2f}, unparseable {self.unparseable}); long-short acceptance gap "
            f"{'n/a' if gap is None else f'{gap:+.2f}'}; order agreement {order}{panel}"
        )


def accepted(score: float | None, min_score: float) -> bool:
    return score is not None and score >= min_score


def measure(items: Sequence[CalibrationItem], scores: Sequence[float | None], min_score: float) -> dict[str, Any]:
    """The figures of `Calibration` (all but identity and order) from one score per item."""
    right = [accepted(s, min_score) == (i.label == "good") for i, s in zip(items, scores)]
    rate = {lab: _share([r for i, r in zip(items, right) if i.label == lab]) for lab in LABELS}
    hist: dict[str, Counter[str]] = {lab: Counter() for lab in LABELS}
    for i, s in zip(items, scores):
        hist[i.label]["unparseable" if s is None else f"{s:g}"] += 1
    kinds: dict[str, list[bool]] = {}
    for i, r in zip(items, right):
        kinds.setdefault(i.kind or i.label, []).append(r)
    return {
        "n_good": sum(i.label == "good" for i in items),
        "n_bad": sum(i.label == "bad" for i in items),
        "balanced_accuracy": (rate["good"] + rate["bad"]) / 2,
        "good_accepted": rate["good"],
        "bad_rejected": rate["bad"],
        "unparseable": sum(s is None for s in scores),
        "scores": {lab: dict(sorted(h.items())) for lab, h in hist.items()},
        "by_kind": {k: _share(v) for k, v in sorted(kinds.items())},
        "length": length_sensitivity(items, scores, min_score),
    }


def length_sensitivity(items: Sequence[CalibrationItem], scores: Sequence[float | None], min_score: float) -> dict[str, float | None]:
    """Correct answers split into long and short (by kind `correct_long`/`correct_short`, else at
    the median length): does the judge prefer length over correctness?"""
    good = [(i, s) for i, s in zip(items, scores) if i.label == "good"]
    if any(i.kind in ("correct_long", "correct_short") for i, _ in good):
        long = [(i, s) for i, s in good if i.kind == "correct_long"]
        short = [(i, s) for i, s in good if i.kind == "correct_short"]
    else:
        cut = statistics.median(len(i.record.main_text()) for i, _ in good)
        long = [(i, s) for i, s in good if len(i.record.main_text()) > cut]
        short = [(i, s) for i, s in good if len(i.record.main_text()) <= cut]
    out: dict[str, float | None] = {}
    for name, part in (("long", long), ("short", short)):
        out[f"{name}_accepted"] = _share([accepted(s, min_score) for _, s in part]) if part else None
        numbers = [s for _, s in part if s is not None]
        out[f"{name}_mean_score"] = statistics.fmean(numbers) if numbers else None
    out["accept_gap"] = _gap(out["long_accepted"], out["short_accepted"])
    out["score_gap"] = _gap(out["long_mean_score"], out["short_mean_score"])
    return out


def _gap(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _share(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0


def shuffled_examples(judge: LLMJudge, seed: int = 1) -> list[tuple[str, str]] | None:
    """The judge's worked examples in another (seeded) order; None when there is only one order."""
    examples = list(judge.rubric.examples)
    if len(examples) < 2:
        return None
    rng = random.Random(seed)
    order = examples[:]
    while order == examples:
        rng.shuffle(order)
    return order


async def score_items(judge: LLMJudge, items: Sequence[CalibrationItem]) -> list[float | None]:
    """The judge's score (median of its samples and panel; None if unparseable) for each item."""
    return [s.score for s in await judge_records([(judge, i.record) for i in items])]


def panel_figures(judge: LLMJudge, items: Sequence[CalibrationItem], scored: Sequence[Scored]) -> dict[str, Any]:
    """Each panel member's balanced accuracy, and the share of items all members decided alike."""
    per_member = list(zip(*(s.member_scores for s in scored)))
    decisions = [[accepted(x, judge.min_score) for x in member] for member in per_member]
    return {
        "members": [model for _, model in judge.members],
        "balanced_accuracy": [measure(items, member, judge.min_score)["balanced_accuracy"] for member in per_member],
        "agreement": _share([len(set(d)) == 1 for d in zip(*decisions)]),
    }


def cache_key(judge: LLMJudge, cset: CalibrationSet) -> str:
    """Everything a calibration's figures depend on: the judge model and its settings, the
    rubric (text and worked examples) and the calibration set."""
    identity = {
        "backend": getattr(judge.client.backend, "name", ""),
        "model": judge.model,
        "panel": [[getattr(c.backend, "name", ""), m] for c, m in judge.members[1:]],
        "rubric": [judge.rubric.name, judge.rubric.text, judge.rubric.examples],
        "set": [cset.name, cset.digest],
        "judge": [judge.min_score, judge.samples, judge.max_tokens, judge.max_chars, judge.seed],
    }
    return xxhash.xxh3_64_hexdigest(canonical_json(identity).encode("utf-8"))


async def calibrate_judge(
    judge: LLMJudge, cfg: JudgeConfig, *, cache_path: Path | None = None, order_check: bool = False
) -> Calibration | None:
    """Measure `judge` on its rubric's calibration set (`cfg.calibration`); None when that is
    "none". A cached result for the same judge, rubric and set is reused (measured again only to
    add the order check when it is asked for and missing)."""
    if cfg.calibration == "none":
        return None
    cset = load_calibration_set(cfg.calibration, judge.rubric.name)
    key = cache_key(judge, cset)
    cached = _read(cache_path).get("results", {}).get(key)
    if cached is not None and (not order_check or cached.get("order_agreement") is not None):
        return Calibration.from_dict(cached)
    items = list(cset.items)
    scored = await judge_records([(judge, i.record) for i in items])
    scores = [s.score for s in scored]
    calibration = Calibration(
        rubric=judge.rubric.name, model=judge.model, calibration_set=cset.name, set_hash=cset.digest,
        min_score=judge.min_score, **measure(items, scores, judge.min_score),
    )
    if len(judge.members) > 1:
        calibration.panel = panel_figures(judge, items, scored)
    if order_check and (order := shuffled_examples(judge)) is not None:
        again = await score_items(judge.with_examples(order), items)
        same = [accepted(a, judge.min_score) == accepted(b, judge.min_score) for a, b in zip(scores, again)]
        calibration.order_agreement = _share(same)
    if cache_path is not None:
        _update(cache_path, lambda data: data.setdefault("results", {}).__setitem__(key, calibration.to_dict()))
    return calibration


def gate_mode(calibration: Calibration | None, cfg: JudgeConfig) -> Mode:
    """"gate" when the judge measured at least `min_balanced_accuracy`; "advisory" when it did not
    (or was not measured) and `allow_uncalibrated` is set; otherwise raises `JudgeNotCalibrated`."""
    if calibration is not None and calibration.balanced_accuracy >= cfg.min_balanced_accuracy:
        return "gate"
    if cfg.allow_uncalibrated:
        return "advisory"
    if calibration is None:
        raise JudgeNotCalibrated(
            '[judge] calibration = "none": an unmeasured judge may not gate; set calibration = "builtin" (or a labelled '
            "JSONL file), or [judge] allow_uncalibrated = true to run it as advisory (it then rejects nothing)"
        )
    raise JudgeNotCalibrated(
        f"judge {calibration.model} on rubric {calibration.rubric}: balanced accuracy {calibration.balanced_accuracy:.2f} "
        f"on {calibration.calibration_set} is below [judge] min_balanced_accuracy = {cfg.min_balanced_accuracy:.2f}; "
        "use a stronger judge ([judge.backend]), or set [judge] allow_uncalibrated = true to run it as advisory "
        "(it then rejects nothing and records count as unjudged)"
    )


def advisory_note(calibration: Calibration | None, cfg: JudgeConfig) -> str:
    """Why a judge is advisory, for its verdicts: `uncalibrated judge (balanced accuracy 0.52 < 0.75)`."""
    if calibration is None:
        return 'uncalibrated judge (not measured: [judge] calibration = "none")'
    return f"uncalibrated judge (balanced accuracy {calibration.balanced_accuracy:.2f} < {cfg.min_balanced_accuracy:.2f})"


async def prepare_judges(judges: Iterable[LLMJudge], cfg: JudgeConfig, *, cache_path: Path | None) -> dict[str, dict[str, Any]]:
    """The engine's entry point: calibrate each judge, decide its mode (raising
    `JudgeNotCalibrated` when it may neither gate nor advise), mark advisory judges, and record
    per rubric `{"mode", "note", "calibration"}` under "in_use" in `cache_path` (what the card reads)."""
    in_use: dict[str, dict[str, Any]] = {}
    for judge in judges:
        calibration = await calibrate_judge(judge, cfg, cache_path=cache_path)
        mode = gate_mode(calibration, cfg)
        judge.advisory = advisory_note(calibration, cfg) if mode == "advisory" else None
        in_use[judge.rubric.name] = {
            "mode": mode,
            "note": judge.advisory or "",
            "calibration": calibration.to_dict() if calibration is not None else None,
        }
    if cache_path is not None:
        _update(cache_path, lambda data: data.__setitem__("in_use", in_use))
    return in_use


def read_in_use(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Per rubric, the mode, note and calibration of the judge a run used (for reports)."""
    in_use: dict[str, dict[str, Any]] = _read(run_dir / CALIBRATION_FILE).get("in_use", {})
    return in_use


def _read(path: Path | None) -> dict[str, Any]:
    if path is None or not path.is_file():
        return {}
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}  # a damaged cache is measured again, not trusted
    return data


def _update(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Read, change and atomically rewrite the calibration file."""
    data = _read(path)
    change(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


__all__ = [
    "BUILTIN_SETS",
    "CALIBRATION_FILE",
    "Calibration",
    "CalibrationItem",
    "CalibrationSet",
    "JudgeNotCalibrated",
    "Mode",
    "advisory_note",
    "calibrate_judge",
    "gate_mode",
    "load_calibration_set",
    "measure",
    "panel_figures",
    "accepted",
    "prepare_judges",
    "read_in_use",
    "score_items",
    "shuffled_examples",
]
