"""Examine the student skill by skill: per-skill accuracy with 95% Wilson intervals, the worst skill
named, and the golden held-out perplexity under the student for the collapse check.

The student answers through synthloop's backend layer (`make_client` + `BackendConfig`), so the
same code examines the built-in local backend serving a round's merged checkpoint or an
OpenAI-compatible server (vLLM, `transformers serve`) that the user points at that checkpoint.
Answers are greedy (temperature 0): an accuracy is a property of the checkpoint, not of a draw.

Scorers: `exact` (the final `Answer: X` of the reply against the reference, both normalised),
or a `verifier` / `judge` callable the caller passes: `(item, reply) -> bool`.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthloop.errors import InputError
from synthloop.student.config import EvalConfig, StudentConfig

if TYPE_CHECKING:
    from synthloop.backends.client import Client
    from synthloop.collapse.measure import ModelLogprob


@dataclass(frozen=True)
class EvalItem:
    """One held-out question: the prompt turns (no answer), the reference answer, how to score it."""

    id: str
    skill: str
    messages: tuple[tuple[str, str], ...]
    reference: str
    scorer: str = "exact"

    @classmethod
    def from_row(cls, row: Mapping[str, Any], default_scorer: str = "exact") -> "EvalItem":
        """From {id, skill, messages | prompt, reference, scorer?}; a trailing assistant turn is dropped."""
        msgs = list(row.get("messages") or [{"role": "user", "content": row.get("prompt", "")}])
        if msgs and msgs[-1]["role"] == "assistant":
            msgs = msgs[:-1]
        if not msgs or "reference" not in row or not row.get("skill"):
            raise InputError(f"evaluation item {row.get('id', '?')!r} needs skill, messages (or prompt) and reference")
        return cls(id=str(row["id"]), skill=str(row["skill"]), reference=str(row["reference"]),
                   messages=tuple((m["role"], m["content"]) for m in msgs), scorer=str(row.get("scorer") or default_scorer))

    def message_dicts(self) -> list[dict[str, str]]:
        return [{"role": r, "content": c} for r, c in self.messages]

    def question(self) -> str:
        return next((c for r, c in reversed(self.messages) if r == "user"), "")


Scorer = Callable[[EvalItem, str], bool]


# -- exact match of the final answer ------------------------------------------------------------------
_ANSWER = re.compile(r"answer\s*[:=]?\s*\**\s*([-+]?\$?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?)", re.IGNORECASE)


def extract_answer(text: str) -> str | None:
    """The value after the last `Answer:` in a reply, normalised; None when there is none."""
    found = _ANSWER.findall(text)
    return normalise_answer(found[-1]) if found else None


def normalise_answer(value: str) -> str:
    """'1,200' -> '1200', '3.50' -> '3.5', ' 4 / 3 ' -> '4/3', '+7' -> '7'. A fraction is not reduced:
    an unreduced answer to a reduce-the-fraction question stays wrong."""
    v = value.strip().replace(",", "").replace("$", "").replace(" ", "").rstrip(".").lstrip("+")
    if "/" in v:
        return v
    try:
        d = Decimal(v)
    except InvalidOperation:
        return v
    return str(d.quantize(Decimal(1))) if d == d.to_integral_value() else str(d.normalize())


def exact_scorer(item: EvalItem, reply: str) -> bool:
    return extract_answer(reply) == normalise_answer(item.reference)


# -- intervals and results --------------------------------------------------------------------------
def wilson(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a proportion: honest at 0/n and n/n, unlike the normal one."""
    if n == 0:
        return 0.0, 1.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class SkillScore:
    skill: str
    n: int
    correct: int
    accuracy: float
    low: float
    high: float


@dataclass
class ItemResult:
    id: str
    skill: str
    correct: bool
    reply: str
    reference: str
    question: str


@dataclass
class EvalResult:
    skills: dict[str, SkillScore]
    worst: str  # the skill with the lowest accuracy (ties: the lower upper bound, then the name)
    items: list[ItemResult] = field(default_factory=list)

    @property
    def mean(self) -> float:
        """Macro accuracy: every skill counts the same."""
        return sum(s.accuracy for s in self.skills.values()) / max(1, len(self.skills))

    def accuracy(self) -> dict[str, float]:
        return {k: s.accuracy for k, s in self.skills.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"skills": {k: asdict(s) for k, s in self.skills.items()}, "worst": self.worst, "mean": self.mean,
                "items": [asdict(i) for i in self.items]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "EvalResult":
        return cls(skills={k: SkillScore(**s) for k, s in d["skills"].items()}, worst=d["worst"],
                   items=[ItemResult(**i) for i in d.get("items", [])])

    def write(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        tmp.replace(p)
        return p


def score(items: Sequence[EvalItem], replies: Sequence[str], scorers: Mapping[str, Scorer] | None = None) -> EvalResult:
    """Score each reply with its item's scorer and summarise per skill."""
    available: dict[str, Scorer] = {"exact": exact_scorer, **(scorers or {})}
    results = []
    for item, reply in zip(items, replies, strict=True):
        if item.scorer not in available:
            raise InputError(f"evaluation item {item.id} is scored by {item.scorer!r} but no such scorer was given: "
                             f"pass scorers={{'{item.scorer}': callable}} (have: {', '.join(sorted(available))})")
        results.append(ItemResult(item.id, item.skill, bool(available[item.scorer](item, reply)), reply,
                                  item.reference, item.question()))
    return summarise(results)


def summarise(results: list[ItemResult]) -> EvalResult:
    skills: dict[str, SkillScore] = {}
    for name in sorted({r.skill for r in results}):
        mine = [r for r in results if r.skill == name]
        k = sum(r.correct for r in mine)
        skills[name] = SkillScore(name, len(mine), k, k / len(mine), *wilson(k, len(mine)))
    if not skills:
        raise InputError("no evaluation items: give the student at least one held-out item per skill")
    worst = min(skills.values(), key=lambda s: (s.accuracy, s.high, s.skill)).skill
    return EvalResult(skills=skills, worst=worst, items=results)


# -- asking the student -------------------------------------------------------------------------------
def ask(client: "Client", items: Sequence[EvalItem], *, model: str, system_prompt: str = "",
        max_new_tokens: int = 64) -> list[str]:
    """Greedy replies of the model behind `client` to every item (a failed request replies "")."""
    from synthloop.backends.base import Request, Response
    from synthloop.student.train import with_system

    requests = [Request.chat(with_system(i.message_dicts(), system_prompt), model=model, temperature=0.0,
                             max_tokens=max_new_tokens, seed=0, tag="student-eval") for i in items]
    answers = client.complete_sync(requests)
    return [a.text if isinstance(a, Response) else "" for a in answers]


def evaluate(client: "Client", items: Sequence[EvalItem], *, model: str, system_prompt: str = "",
             max_new_tokens: int = 64, scorers: Mapping[str, Scorer] | None = None) -> EvalResult:
    """Per-skill accuracy of the model behind `client` (any backend) on `items`."""
    replies = ask(client, items, model=model, system_prompt=system_prompt, max_new_tokens=max_new_tokens)
    return score(items, replies, scorers)


def evaluate_checkpoint(cfg: StudentConfig, output_dir: str | Path, items: Sequence[EvalItem], *,
                        scorers: Mapping[str, Scorer] | None = None, cache_path: Path | None = None) -> EvalResult:
    """Evaluate a round's checkpoint through the local backend (merging a LoRA adapter first)."""
    from synthloop.backends import make_client
    from synthloop.backends.local import unload_model
    from synthloop.recipe import BackendConfig
    from synthloop.student.train import merged_dir

    served = str(merged_dir(output_dir))
    backend = BackendConfig(backend="local", model=served, temperature=0.0, max_tokens=cfg.eval.max_new_tokens,
                            batch_size=cfg.eval.batch_size)
    client = make_client(backend, cache_path=cache_path)
    try:
        return evaluate(client, items, model=served, system_prompt=cfg.system_prompt,
                        max_new_tokens=cfg.eval.max_new_tokens, scorers=scorers)
    finally:
        unload_model(served)  # one merged model per round: keep only the one being examined in memory


# -- which items ---------------------------------------------------------------------------------------
def load_eval_items(cfg: EvalConfig, *, golden_rows: Sequence[Mapping[str, Any]] = (), seed: int = 0) -> list[EvalItem]:
    """The items `cfg.sets` names, at most `cfg.items_per_skill` per skill (a seeded sample).

    "golden": `golden_rows` (the golden held-out split as chat rows with a `reference`, or with a
    final assistant turn that becomes the reference); "arithmetic": the built-in skill family;
    anything else: a JSONL file of items."""
    items: list[EvalItem] = []
    for name in cfg.sets:
        items += [EvalItem.from_row(r, cfg.scorer) for r in _rows_of(name, golden_rows)]
    return _cap_per_skill(items, cfg.items_per_skill, seed)


def _rows_of(name: str, golden_rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    if name == "golden":
        if not golden_rows:
            raise InputError("student.eval.sets names 'golden' but no golden held-out rows were given "
                             "(set grounding.golden, or list another evaluation set)")
        return [_golden_item(r) for r in golden_rows]
    if name == "arithmetic":
        from synthloop.student.skills import eval_rows

        return list(eval_rows())
    path = Path(name)
    if not path.is_file():
        raise InputError(f"evaluation set {name!r} is neither 'golden', 'arithmetic' nor an existing JSONL file")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _golden_item(row: Mapping[str, Any]) -> Mapping[str, Any]:
    """A golden chat row: its last assistant turn is the reference unless it has one already."""
    if "reference" in row:
        return row
    msgs = list(row.get("messages") or [])
    if not msgs or msgs[-1].get("role") != "assistant":
        raise InputError(f"golden row {row.get('id', '?')!r} has neither a reference nor a final assistant turn to score against")
    return {**row, "skill": row.get("skill") or "golden", "reference": msgs[-1]["content"], "messages": msgs[:-1]}


def _cap_per_skill(items: list[EvalItem], cap: int | None, seed: int) -> list[EvalItem]:
    if cap is None:
        return items
    out: list[EvalItem] = []
    for skill in sorted({i.skill for i in items}):
        mine = [i for i in items if i.skill == skill]
        out += random.Random(f"{seed}|{skill}").sample(mine, min(cap, len(mine)))
    return out


def decontaminate(items: Sequence[EvalItem], training_rows: Sequence[Mapping[str, Any]]) -> tuple[list[EvalItem], list[str]]:
    """Drop items whose question is a user turn of any training row (whitespace and case folded);
    returns (kept items, ids dropped) so the count can be reported."""
    def norm(s: str) -> str:
        return " ".join(s.lower().split())

    seen = {norm(m["content"]) for r in training_rows for m in r.get("messages", []) if m.get("role") == "user"}
    kept = [i for i in items if norm(i.question()) not in seen]
    return kept, [i.id for i in items if norm(i.question()) in seen]


# -- golden perplexity under the student ----------------------------------------------------------------
def student_logprob(model_dir: str | Path, *, batch_size: int = 8, max_len: int = 512) -> "ModelLogprob":
    """A `collapse.measure.ModelLogprob` for a student checkpoint (an HF directory, e.g. `merged_dir`):
    texts -> (sum of natural-log token probabilities, tokens scored), the first token unscored."""
    from synthloop.backends.local import load_model

    lm = load_model(str(model_dir))

    def logprob(texts: Sequence[str]) -> tuple[float, int]:
        total, count = 0.0, 0
        for start in range(0, len(texts), batch_size):
            s, c = _batch_logprob(lm.model, lm.tokenizer, list(texts[start : start + batch_size]), max_len)
            total, count = total + s, count + c
        return total, count

    return logprob


def _batch_logprob(model: Any, tokenizer: Any, texts: list[str], max_len: int) -> tuple[float, int]:
    import torch

    side, tokenizer.padding_side = tokenizer.padding_side, "right"
    try:
        enc = tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=max_len)
    finally:
        tokenizer.padding_side = side
    with torch.inference_mode():
        logits = model(**enc).logits[:, :-1].float()
    target, mask = enc["input_ids"][:, 1:], enc["attention_mask"][:, 1:].bool()
    picked = torch.log_softmax(logits, dim=-1).gather(-1, target.unsqueeze(-1)).squeeze(-1)
    return float(picked[mask].sum()), int(mask.sum())


__all__ = ["EvalItem", "EvalResult", "ItemResult", "Scorer", "SkillScore", "ask", "decontaminate", "evaluate",
           "evaluate_checkpoint", "exact_scorer", "extract_answer", "load_eval_items", "normalise_answer", "score",
           "student_logprob", "summarise", "wilson"]
