"""Textbook task: an explanation of the topic, plus a practice problem with step-by-step reasoning
(kept as its own field: chain of thought is training data), a reference solution and unit tests.

Two requests per record (explanation; exercise), so a small teacher has one job per prompt.
"""

from __future__ import annotations

import re
from typing import Any

from synthloop.backends.base import Request, Response
from synthloop.backends.client import ParseFailure
from synthloop.records import Record
from synthloop.tasks.base import Task, register_task

_CODE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.S)
_SECTION = re.compile(r"^\s*\**(Problem|Steps|Solution|Tests)\**\s*:\s*", re.M | re.I)
MIN_EXPLANATION_CHARS = 80


def parse_explanation(resp: Response, min_chars: int = MIN_EXPLANATION_CHARS) -> str:
    """The explanation as written; one cut off inside a code block (the token limit) keeps what
    came before that block, if that is still long enough to teach something."""
    text = resp.text.strip()
    if text.count("```") % 2:
        text = text[: text.rfind("```")].rstrip()
        if len(text) < min_chars:
            raise ParseFailure("truncated: explanation cut off inside its first code block")
    if len(text) < min_chars:
        raise ParseFailure(f"explanation_too_short: {len(text)} chars < {min_chars} (verify.min_explanation_chars)")
    return text


def parse_exercise(resp: Response) -> dict[str, str]:
    """Split `Problem: / Steps: / Solution: ```...``` / Tests: ```...```` into fields."""
    sections: dict[str, str] = {}
    matches = list(_SECTION.finditer(resp.text))
    for m, nxt in zip(matches, matches[1:] + [None]):
        name = m.group(1).lower()
        if name not in sections:  # the first of each: small models often start a second problem
            sections[name] = resp.text[m.end() : nxt.start() if nxt else len(resp.text)].strip()
    missing = [s for s in ("problem", "solution", "tests") if not sections.get(s)]
    if missing:
        raise ParseFailure(f"missing_sections: {', '.join(missing)}")
    solution, tests = _first_code(sections["solution"]), _first_code(sections["tests"])
    if not solution:
        raise ParseFailure("no_solution_code: the Solution section has no ```python block")
    if not tests:
        raise ParseFailure("no_test_code: the Tests section has no ```python block")
    return {
        "problem": sections["problem"],
        "reasoning": sections.get("steps", ""),
        "answer": solution,
        "tests": tests,
    }


def _first_code(section: str) -> str:
    m = _CODE.search(section)
    return m.group(1).strip() if m else ""


@register_task
class TextbookTask(Task):
    name = "textbook"
    template_ids = ("textbook_explanation", "textbook_exercise")

    def parsers(self) -> list[Any]:
        min_chars = self.recipe.verify.min_explanation_chars if self.recipe is not None else MIN_EXPLANATION_CHARS
        return [lambda resp: parse_explanation(resp, min_chars), parse_exercise]

    def apply(self, record: Record, values: list[Any]) -> None:
        explanation, exercise = values
        record.explanation = explanation
        record.problem = exercise["problem"]
        record.reasoning = exercise["reasoning"]
        record.answer = exercise["answer"]
        record.tests = exercise["tests"]
        prompt = (
            f"Teach me {record.topic} in Python ({record.skill}); I am {record.persona}. "
            f"Then give me a {record.difficulty} practice problem and solve it step by step."
        )
        reply = (
            f"{explanation}\n\n**Practice problem.** {record.problem}\n\n"
            + (f"**Step by step.**\n{record.reasoning}\n\n" if record.reasoning else "")
            + f"**Solution.**\n```python\n{record.answer}\n```\n\n**Tests.**\n```python\n{record.tests}\n```"
        )
        record.messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": reply}]


# -- canned answers for the fake backend (tests, --dry-run) ----------------------------------------
def _fake_topic(req: Request) -> str:
    m = re.search(r"(?:explains|about) (.+?) (?:in Python|for )", req.messages[-1][1])
    return m.group(1) if m else "python"


def fake_explanation(req: Request) -> str:
    topic = _fake_topic(req)
    return (
        f"{topic} is part of everyday Python. This section shows what it does and when to use it "
        f"(variant {req.seed % 997}).\n\n```python\nprint({topic!r})\n```\n\nUse it when it makes code clearer."
    )


def fake_exercise(req: Request) -> str:
    topic = _fake_topic(req)
    n = req.seed % 997
    return (
        f"Problem: Write a function `double(x)` that returns twice x (a warm-up for {topic}, #{n}).\n"
        "Steps:\n1. Take x.\n2. Multiply it by 2.\n3. Return the result.\n"
        "Solution:\n```python\ndef double(x):\n    return 2 * x\n```\n"
        f"Tests:\n```python\nassert double(2) == 4\nassert double({n}) == {2 * n}\n```\n"
    )


TextbookTask.fake_answers = {"textbook_explanation": fake_explanation, "textbook_exercise": fake_exercise}
