"""Claims are checked: inline output comments, doctests, "prints X" prose, answers and checkers."""

from __future__ import annotations

import pytest

from synthloop.errors import VerifierError
from synthloop.records import Record
from synthloop.verifiers import PythonCodeVerifier, PythonSnippetVerifier
from synthloop.verifiers.checkers import equivalent, final_answer, resolve

SNIPPETS = PythonSnippetVerifier(timeout_s=3.0, memory_mb=256, checkers=["final_answer", "program_of_thought", "regex", "json_schema"])
COUNTER = "from collections import Counter\ncounter_count = Counter([0, 1, 1, 2, 2, 2])\nprint(counter_count)  # Output: {claim}\n"


def verdict(text: str, **fields: object) -> tuple[bool, str]:
    v = SNIPPETS.verify(Record(id="c", text=text, **fields))  # type: ignore[arg-type]
    return v.ok, v.reason


def fenced(code: str) -> str:
    return f"Here is an example.\n\n```python\n{code}```\n"


def test_the_quickstart_counter_claim_is_caught() -> None:
    ok, reason = verdict(fenced(COUNTER.format(claim="{0: 1, 1: 2, 2: 3}")))
    assert not ok and reason.startswith("output_mismatch: line 3 says '{0: 1, 1: 2, 2: 3}'")
    ok, reason = verdict(fenced(COUNTER.format(claim="Counter({2: 3, 1: 2, 0: 1})")))
    assert ok and reason == "claims_checked: 1 block(s) ran; 1 output claim(s) match"


@pytest.mark.parametrize(
    ("code", "ok"),
    [
        ("x = [1, 2]\nlen(x)  # -> 2\n", True),
        ("x = [1, 2]\nlen(x)  # -> 3\n", False),
        ("y = sorted('bca')  # => ['a', 'b', 'c']\n", True),
        ("print('a b')\n# Output:\n# a b\n", True),
        ("print('a b')\n# Output: a c\n", False),
        ("s = '# -> not a claim'\nprint(s)\n", True),
    ],
)
def test_inline_claims(code: str, ok: bool) -> None:
    assert verdict(fenced(code))[0] is ok


def test_doctest_sessions_are_checked() -> None:
    good = "```python\n>>> sorted([3, 1, 2])\n[1, 2, 3]\n>>> 'a'.upper()\n'A'\n```"
    bad = "```\n>>> sorted([3, 1, 2])\n[3, 2, 1]\n```"
    assert verdict(good) == (True, "claims_checked: 1 block(s) ran; 2 output claim(s) match")
    ok, reason = verdict(bad)
    assert not ok and "output_mismatch" in reason and "[3, 2, 1]" in reason


@pytest.mark.parametrize(
    ("sentence", "ok"),
    [
        ("This prints `6`.", True),
        ("This prints `7`.", False),
        ("It will output [1, 2, 3] on the screen.", True),
        ("The loop prints 5.", False),
    ],
)
def test_prose_claims_about_a_block(sentence: str, ok: bool) -> None:
    text = "```python\nxs = [1, 2, 3]\nprint(xs)\nprint(sum(xs))\n```\n\n" + sentence
    assert verdict(text)[0] is ok


def test_a_record_without_claims_is_marked_unchecked() -> None:
    assert verdict(fenced("x = 1\n")) == (True, "examples_run: 1 block(s) ran cleanly; unchecked: no output claim")
    assert verdict("No code here.")[1].startswith("unchecked: no runnable claim")


def test_instruction_answers_in_messages_are_checked() -> None:
    answer = fenced("print(len('abc'))  # Output: 4\n")
    record = Record(id="i", messages=[{"role": "user", "content": "How long?"}, {"role": "assistant", "content": answer}])
    v = SNIPPETS.verify(record)
    assert not v.ok and v.reason.startswith("output_mismatch")


def test_the_code_verifier_checks_the_explanation_too() -> None:
    code = PythonCodeVerifier(timeout_s=3.0, memory_mb=256)
    solution, tests = "def inc(x):\n    return x + 1\n", "assert inc(1) == 2\nassert inc(-1) == 0\n"
    wrong = Record(id="t", explanation=fenced("print(2 + 2)  # Output: 5\n"), answer=solution, tests=tests)
    right = Record(id="t", explanation=fenced("print(2 + 2)  # Output: 4\n"), answer=solution, tests=tests)
    assert code.verify(wrong).reason.startswith("output_mismatch: line 1 says '5'")
    v = code.verify(right)
    assert v.ok and v.reason.endswith("explanation claims_checked: 1 block(s) ran; 1 output claim(s) match")


def test_final_answer_extraction_and_equivalence() -> None:
    assert final_answer("so we get 12.\nThe answer is 42.") == "42"
    assert final_answer("\\boxed{x^2 + 2x}") == "x^2 + 2x"
    assert final_answer("#### 1,000") == "1,000"
    assert final_answer("no answer stated") is None
    assert equivalent("1,000", "1000.0") and equivalent("0.5", "1/2") and equivalent("(x+1)**2", "x^2 + 2x + 1")
    assert not equivalent("42", "41") and not equivalent("x**2", "2x")


@pytest.mark.parametrize(
    ("text", "meta", "ok", "category"),
    [
        ("Half of 10 is 5. The answer is 5.", {"expected": "5"}, True, "answer_checked"),
        ("Half of 10 is 4. The answer is 4.", {"expected": "5"}, False, "wrong_answer"),
        ("The answer is 2x + 2.", {"expected": "2*(x+1)"}, True, "answer_checked"),
        ("```python\nanswer = 17 * 3\n```\nThe answer is 51.", {}, True, "answer_checked"),
        ("```python\nanswer = 17 * 3\n```\nThe answer is 52.", {}, False, "wrong_answer"),
        ("```python\nprint(2 ** 10)\n```\nThe answer is 1024.", {}, True, "answer_checked"),
        ("2024-01-31", {"answer_regex": r"\d{4}-\d{2}-\d{2}"}, True, "answer_checked"),
        ("31/01/2024", {"answer_regex": r"\d{4}-\d{2}-\d{2}"}, False, "wrong_answer"),
        ('{"name": "x", "n": 2}', {"json_schema": {"type": "object", "required": ["n"]}}, True, "answer_checked"),
        ('{"name": "x"}', {"json_schema": {"type": "object", "required": ["n"]}}, False, "wrong_answer"),
    ],
)
def test_checkers(text: str, meta: dict[str, object], ok: bool, category: str) -> None:
    v = SNIPPETS.verify(Record(id="n", text=text, meta=meta))
    assert v.ok is ok and v.reason.split(":", 1)[0] == category, v.reason


def test_unknown_checker_names_the_known_ones() -> None:
    with pytest.raises(VerifierError, match="unknown checker.*use any of final_answer"):
        resolve(["final_answer", "vibes"])


@pytest.mark.parametrize(
    "code",
    [
        "total = sum([1, 2])  # result is kept for later\n",
        "def f(x):  # returns the square\n    return x * x\n",
        "print('hi')  # prints a greeting\n",
    ],
)
def test_comments_that_are_not_claims_are_left_alone(code: str) -> None:
    assert verdict(fenced(code) + "\nThis shows 3 ways to do it, and prints the result.")[0]
