"""Answer checkers for records with no example to run: a registry, name -> checker.

A checker returns `None` when it does not apply to a record (nothing for it to check), else a
`Checked(ok, reason)`. A task (or a recipe's `[verify] checkers`) names its checkers; the snippet
verifier asks them in order and the first that applies decides. What none applies to is marked
`unchecked:` in the verdict, never `verified`.

| name | applies when | checks |
|---|---|---|
| `final_answer` | the record states a final answer and `meta["expected"]` holds the reference | the two are equal: numerically (1e-6 relative), else symbolically (sympy: `simplify(a - b) == 0`), else as normalised text |
| `program_of_thought` | the reasoning/answer shows a ```python computation and states a final answer | the computation runs in the sandbox and its last printed line (or its `answer` variable) equals the stated answer |
| `exact_match` | `meta["expected"]` is set | the final answer (else the whole answer) equals it, whitespace and case aside |
| `regex` | `meta["answer_regex"]` is set | the answer matches it (`re.fullmatch`, stripped) |
| `json_schema` | `meta["json_schema"]` is set | the answer parses as JSON and validates against the schema (`jsonschema`) |
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from synthloop.errors import VerifierError
from synthloop.records import Record
from synthloop.verifiers.sandbox import SandboxLimits, run_sandboxed


@dataclass(frozen=True)
class Checked:
    ok: bool
    reason: str


CheckFn = Callable[[Record, SandboxLimits], "Checked | None"]


@dataclass(frozen=True)
class Checker:
    name: str
    fn: CheckFn

    def check(self, record: Record, limits: SandboxLimits) -> Checked | None:
        return self.fn(record, limits)


_FINAL = [
    re.compile(r"\\boxed\{([^{}]+)\}"),
    re.compile(r"(?:final answer|the answer|answer)\s*(?:is|=|:)\s*\**\$?([^\n$*]+?)\$?\**\s*(?:\.\s|\.?$|\n)", re.I | re.M),
    re.compile(r"^\s*####\s*(.+)$", re.M),
]


def final_answer(text: str) -> str | None:
    """The stated final answer: `\\boxed{X}`, "the (final) answer is X", "Answer: X", `#### X`; the last one wins."""
    best: tuple[int, str] | None = None
    for pattern in _FINAL:
        for m in pattern.finditer(text):
            if best is None or m.start() >= best[0]:
                best = (m.start(), m.group(1).strip().rstrip(".").strip("` "))
    return best[1] if best and best[1] else None


def _answer_text(record: Record) -> str:
    assistant = [m.get("content", "") for m in record.messages if m.get("role") == "assistant"]
    return "\n\n".join(p for p in (record.reasoning, record.answer or record.text or "\n".join(assistant)) if p)


def _number(text: str) -> float | None:
    cleaned = text.replace(",", "").replace("$", "").strip().rstrip("%")
    try:
        return float(cleaned)
    except ValueError:
        return None


def equivalent(a: str, b: str) -> bool:
    """Numerically, else symbolically (sympy), else as normalised text."""
    x, y = _number(a), _number(b)
    if x is not None and y is not None:
        return abs(x - y) <= 1e-6 * max(1.0, abs(x), abs(y))
    try:
        import sympy
        from sympy.parsing.sympy_parser import implicit_multiplication_application, parse_expr, standard_transformations

        transforms = (*standard_transformations, implicit_multiplication_application)
        ea, eb = (parse_expr(s.replace("^", "**"), transformations=transforms, evaluate=True) for s in (a, b))
        return bool(sympy.simplify(ea - eb) == 0)
    except Exception:  # noqa: BLE001 - anything sympy cannot parse is compared as text
        return " ".join(a.lower().split()) == " ".join(b.lower().split())


def check_final_answer(record: Record, limits: SandboxLimits) -> Checked | None:
    expected = record.meta.get("expected")
    stated = final_answer(_answer_text(record))
    if expected is None or stated is None:
        return None
    if equivalent(stated, str(expected)):
        return Checked(True, f"answer_checked: final answer {stated!r} equals the reference {expected!r}")
    return Checked(False, f"wrong_answer: final answer {stated!r}, the reference is {expected!r}")


_CODE = re.compile(r"```(?:python3?|py)[ \t]*\n(.*?)```", re.S | re.I)
_POT_TAIL = "\ntry:\n    print('\\n__answer__', answer)\nexcept NameError:\n    pass\n"


def check_program_of_thought(record: Record, limits: SandboxLimits) -> Checked | None:
    text = _answer_text(record)
    blocks, stated = _CODE.findall(text), final_answer(text)
    if not blocks or stated is None:
        return None
    result = run_sandboxed("\n\n".join(blocks) + _POT_TAIL, limits=limits)
    if result.violations or result.returncode != 0:
        why = result.violations[0] if result.violations else (result.stderr.strip().splitlines() or ["no output"])[-1]
        return Checked(False, f"computation_error: the computation did not run: {why[:160]}")
    lines = [ln for ln in result.stdout.splitlines() if ln.strip()]
    got = lines[-1].split("__answer__", 1)[-1].strip() if lines else ""
    if "__answer__" in result.stdout:
        got = result.stdout.split("__answer__", 1)[1].strip()
    if got and equivalent(stated, got):
        return Checked(True, f"answer_checked: the computation gives {got!r}, as stated")
    return Checked(False, f"wrong_answer: the text states {stated!r}, its computation gives {got[:80]!r}")


def check_exact_match(record: Record, limits: SandboxLimits) -> Checked | None:
    expected = record.meta.get("expected")
    if expected is None:
        return None
    text = _answer_text(record)
    got = final_answer(text) or text
    same = " ".join(got.lower().split()) == " ".join(str(expected).lower().split())
    return Checked(same, f"{'answer_checked' if same else 'wrong_answer'}: {got[:60]!r} vs expected {str(expected)[:60]!r}")


def check_regex(record: Record, limits: SandboxLimits) -> Checked | None:
    pattern = record.meta.get("answer_regex")
    if pattern is None:
        return None
    text = (record.answer or record.text).strip()
    ok = re.fullmatch(str(pattern), text, re.S) is not None
    return Checked(ok, f"{'answer_checked' if ok else 'wrong_answer'}: answer {'matches' if ok else 'does not match'} /{pattern}/")


def check_json_schema(record: Record, limits: SandboxLimits) -> Checked | None:
    schema = record.meta.get("json_schema")
    if schema is None:
        return None
    import jsonschema

    try:
        jsonschema.validate(json.loads(record.answer or record.text), schema)
    except ValueError as e:
        return Checked(False, f"wrong_answer: the answer is not JSON: {str(e)[:100]}")
    except jsonschema.ValidationError as e:
        return Checked(False, f"wrong_answer: the answer does not fit the schema: {e.message[:100]}")
    return Checked(True, "answer_checked: the answer is JSON that fits the schema")


CHECKERS: dict[str, Checker] = {
    c.name: c
    for c in (
        Checker("final_answer", check_final_answer),
        Checker("program_of_thought", check_program_of_thought),
        Checker("exact_match", check_exact_match),
        Checker("regex", check_regex),
        Checker("json_schema", check_json_schema),
    )
}


def resolve(names: list[str]) -> list[Checker]:
    """Checkers by name; an unknown name is an error that lists the known ones."""
    unknown = [n for n in names if n not in CHECKERS]
    if unknown:
        raise VerifierError(f"unknown checker(s) {', '.join(unknown)}: use any of {', '.join(CHECKERS)}")
    return [CHECKERS[n] for n in names]


__all__ = ["CHECKERS", "Checked", "Checker", "equivalent", "final_answer", "resolve"]
