"""A task family with exact answers that a 135M student learns in CPU minutes: the classroom's lab.

Four skills, each a seeded program over a finite item space with program-checked answers:
`add` (2-digit + 2-digit), `mul` (2-digit x 1-digit), `frac` (a/b + c/d, reduced) and `units`
(metric and time conversions). An item is a chat question -> one reasoning line -> `Answer: N`.

Train and evaluation items are disjoint by construction: every question is hashed into one of ten
buckets, buckets 0-2 are the evaluation split and 3-9 the training split, so no sampling of one
can ever reach the other (and each skill has at least 240 evaluation items).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

import xxhash

from synthloop.errors import InputError

Split = Literal["train", "eval"]
EVAL_BUCKETS = 3  # of 10


@dataclass(frozen=True)
class Problem:
    skill: str
    question: str
    reasoning: str
    answer: str

    @property
    def id(self) -> str:
        return f"{self.skill}-{xxhash.xxh64_hexdigest(self.question.encode())[:12]}"

    def messages(self, reasoning: bool = True) -> list[dict[str, str]]:
        """The training conversation: question, then the reasoning line and the answer line (or the
        answer line alone: a reply of ~5 tokens, which makes examining a student ~10x cheaper)."""
        reply = f"{self.reasoning}\nAnswer: {self.answer}" if reasoning else f"Answer: {self.answer}"
        return [{"role": "user", "content": self.question}, {"role": "assistant", "content": reply}]


# -- the four programs: each enumerates its whole item space --------------------------------------
def _add() -> Iterator[Problem]:
    for a in range(10, 100):
        for b in range(10, 100):
            tens, ones = (a // 10 + b // 10) * 10, a % 10 + b % 10
            yield Problem("add", f"What is {a} + {b}?",
                          f"{a // 10 * 10} + {b // 10 * 10} = {tens} and {a % 10} + {b % 10} = {ones}, "
                          f"so {tens} + {ones} = {a + b}.", str(a + b))


def _mul() -> Iterator[Problem]:
    for a in range(10, 100):
        for b in range(1, 10):
            hi, lo = a // 10 * 10 * b, a % 10 * b
            yield Problem("mul", f"What is {a} x {b}?",
                          f"{a // 10 * 10} x {b} = {hi} and {a % 10} x {b} = {lo}, so {hi} + {lo} = {a * b}.",
                          str(a * b))


def _frac() -> Iterator[Problem]:
    for b in range(2, 10):
        for d in range(2, 10):
            for a in range(1, b):
                for c in range(1, d):
                    yield _fraction(a, b, c, d)


def _fraction(a: int, b: int, c: int, d: int) -> Problem:
    common = b * d // _gcd(b, d)
    x, y = a * common // b, c * common // d
    total = Fraction(x + y, common)
    answer = f"{total.numerator}/{total.denominator}" if total.denominator != 1 else str(total.numerator)
    return Problem("frac", f"What is {a}/{b} + {c}/{d}? Give the answer as a reduced fraction.",
                   f"{a}/{b} + {c}/{d} = {x}/{common} + {y}/{common} = {x + y}/{common} = {answer}.", answer)


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


#: (from unit, to unit, factor): the answer is value * factor, always a whole number.
CONVERSIONS: tuple[tuple[str, str, int], ...] = (
    ("km", "m", 1000), ("m", "cm", 100), ("cm", "mm", 10), ("kg", "g", 1000), ("l", "ml", 1000),
    ("hours", "minutes", 60), ("minutes", "seconds", 60), ("days", "hours", 24), ("weeks", "days", 7),
    ("m", "mm", 1000), ("dozen", "items", 12), ("years", "months", 12),
)


def _units() -> Iterator[Problem]:
    for src, dst, factor in CONVERSIONS:
        for v in range(1, 100):
            yield Problem("units", f"How many {dst} are in {v} {src}?",
                          f"1 {src} = {factor} {dst}, so {v} {src} = {v} x {factor} = {v * factor} {dst}.",
                          str(v * factor))


SKILLS: dict[str, Callable[[], Iterator[Problem]]] = {"add": _add, "mul": _mul, "frac": _frac, "units": _units}


# -- splits and sampling ----------------------------------------------------------------------------
def split_of(question: str) -> Split:
    """Which split a question belongs to: a pure function of its text."""
    return "eval" if xxhash.xxh64_intdigest(question.encode()) % 10 < EVAL_BUCKETS else "train"


def problems(skill: str, split: Split) -> list[Problem]:
    """Every problem of `skill` in `split`, in a fixed order."""
    if skill not in SKILLS:
        raise InputError(f"unknown arithmetic skill {skill!r}: use one of {', '.join(SKILLS)}")
    return [p for p in SKILLS[skill]() if split_of(p.question) == split]


def sample(skill: str, n: int, split: Split, seed: int) -> list[Problem]:
    """`n` distinct problems of a skill, a seeded sample (all of them when n exceeds the pool)."""
    pool = problems(skill, split)
    rng = random.Random(f"{skill}|{split}|{seed}")
    return rng.sample(pool, min(n, len(pool)))


def training_rows(budget: dict[str, int], seed: int) -> list[dict[str, Any]]:
    """A training mix in `mix.jsonl` row format: `budget[skill]` problems per skill, shuffled."""
    rows = [{"id": p.id, "skill": p.skill, "source": "synthetic", "messages": p.messages()}
            for skill, n in budget.items() for p in sample(skill, n, "train", seed)]
    random.Random(seed).shuffle(rows)
    return rows


def eval_rows(skills: list[str] | None = None, per_skill: int | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """Held-out evaluation items as rows `evaluate.EvalItem.from_row` reads."""
    out = []
    for skill in skills or list(SKILLS):
        chosen = sample(skill, per_skill, "eval", seed) if per_skill else problems(skill, "eval")
        out += [{"id": p.id, "skill": p.skill, "messages": [p.messages()[0]], "reference": p.answer,
                 "scorer": "exact"} for p in chosen]
    return out


__all__ = ["CONVERSIONS", "EVAL_BUCKETS", "SKILLS", "Problem", "eval_rows", "problems", "sample", "split_of",
           "training_rows"]
