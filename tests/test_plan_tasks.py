"""The planner (deterministic, spread over topics) and the task parsers (forgiving, with reasons)."""

from __future__ import annotations

import pytest

from synthloop.backends.base import Response
from synthloop.backends.client import ParseFailure
from synthloop.pipeline.plan import plan
from synthloop.recipe import recipe_from_dict
from synthloop.records import Record
from synthloop.tasks.instruction import parse_instruction
from synthloop.tasks.textbook import TextbookTask, parse_exercise, parse_explanation

GOOD = """Problem: Write a function `total(nums)` that sums a list.
Steps:
1. Take the list.
2. Sum it.
Solution:
```python
def total(nums):
    return sum(nums)
```
Tests:
```python
assert total([1, 2]) == 3
```

Now write a new easy practice problem ...
Problem: a second one the model started
"""


def recipe(**plan_kw: object) -> object:
    base = {"topics": ["a", "b", "c"], "personas": ["p1", "p2"], "difficulties": ["easy", "hard"]}
    return recipe_from_dict({"name": "t", "seed": 1, "plan": {**base, **plan_kw}})


def test_plan_is_deterministic_and_complete() -> None:
    a, b = plan(recipe()), plan(recipe())
    assert [r.id for r in a] == [r.id for r in b]
    assert len(a) == 3 * 2 * 2 and len({r.id for r in a}) == 12
    assert len({r.meta["seed"] for r in a}) == 12


def test_plan_cap_covers_every_topic_first() -> None:
    records = plan(recipe(max_records=4))
    assert len(records) == 4
    assert {r.topic for r in records[:3]} == {"a", "b", "c"}


def test_exercise_parser_takes_first_of_each_section() -> None:
    parsed = parse_exercise(Response(GOOD))
    assert parsed["problem"].startswith("Write a function `total")
    assert parsed["reasoning"] == "1. Take the list.\n2. Sum it."
    assert parsed["answer"] == "def total(nums):\n    return sum(nums)"
    assert parsed["tests"] == "assert total([1, 2]) == 3"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Problem: x\nSolution:\n```python\npass\n```", "missing_sections: tests"),
        ("Problem: x\nSolution: just sum it\nTests:\n```python\nassert 1\n```", "no_solution_code"),
        ("Problem: x\nSolution:\n```python\npass\n```\nTests: trust me", "no_test_code"),
        ("", "missing_sections: problem, solution, tests"),
    ],
)
def test_exercise_parser_rejects_with_reason(text: str, reason: str) -> None:
    with pytest.raises(ParseFailure) as e:
        parse_exercise(Response(text))
    assert e.value.reason.startswith(reason)


def test_explanation_parser() -> None:
    assert parse_explanation(Response("x" * 100)) == "x" * 100
    with pytest.raises(ParseFailure, match="explanation_too_short"):
        parse_explanation(Response("short"))
    with pytest.raises(ParseFailure, match="truncated"):
        parse_explanation(Response("y" * 10 + "\n```python\nprint(1)", finish_reason="length"))
    # cut inside a later code block: what came before it is kept
    assert parse_explanation(Response("y" * 100 + "\n```python\nprint(1)", finish_reason="length")) == "y" * 100


def test_instruction_parser() -> None:
    qa = parse_instruction(Response("Question: How do I sort a dict by value?\nAnswer: Use sorted(d.items(), key=lambda kv: kv[1])."))
    assert qa["question"].startswith("How do I sort")
    with pytest.raises(ParseFailure, match="missing_sections"):
        parse_instruction(Response("Just an answer with no question."))


def test_textbook_apply_builds_chat_messages() -> None:
    r = Record(id="x", topic="itertools", skill="s", persona="a beginner", difficulty="easy")
    TextbookTask().apply(r, ["An explanation " * 10, parse_exercise(Response(GOOD))])
    assert r.messages[0]["role"] == "user" and "itertools" in r.messages[0]["content"]
    assert "def total" in r.messages[1]["content"] and r.reasoning


def test_record_round_trip_and_hash() -> None:
    r = Record(id="x", text="héllo", meta={"k": 1})
    again = Record.from_dict(r.to_dict())
    assert again == r and again.content_hash == r.content_hash
    assert r.content_hash != Record(id="y", text="hello").content_hash
    assert Record(id="other-id", text="héllo").content_hash == r.content_hash  # content, not identity


def test_template_render_fills_placeholders_and_keeps_code_braces() -> None:
    from synthloop.tasks.templates import Template

    t = Template("t", "[system]\nTeach {topic}.\n[user]\nd = {'a': 1}\n[assistant]\nf'{x}' for {persona}\n[user]\nNow {topic}.")
    msgs = t.render(topic="pathlib", persona="a beginner")
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert msgs[0]["content"] == "Teach pathlib." and msgs[1]["content"] == "d = {'a': 1}"
    assert msgs[2]["content"] == "f'{x}' for a beginner" and msgs[3]["content"] == "Now pathlib."


@pytest.mark.parametrize("name", ["python-textbook.toml", "grounded.toml", "openai-server.toml"])
def test_example_recipes_are_valid(name: str) -> None:
    from pathlib import Path

    from synthloop.recipe import load_recipe

    recipe = load_recipe(Path(__file__).parents[1] / "examples" / name)
    assert plan(recipe)
