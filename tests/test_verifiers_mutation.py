"""Tests that prove something: vacuous suites are named before running, weak suites by mutants."""

from __future__ import annotations

import ast
import textwrap

import pytest

from synthloop.records import Record
from synthloop.verifiers import PythonCodeVerifier
from synthloop.verifiers.mutation import mutants
from synthloop.verifiers.vacuity import vacuous_reason

CLAMP = """
def clamp(x, lo, hi):
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x
"""
STRONG = """
def test_clamp():
    assert clamp(-1, 0, 10) == 0
    assert clamp(0, 0, 10) == 0
    assert clamp(5, 0, 10) == 5
    assert clamp(10, 0, 10) == 10
    assert clamp(11, 0, 10) == 10
"""
VERIFIER = PythonCodeVerifier(timeout_s=3.0, memory_mb=256, min_mutation_score=0.6)


def verdict(answer: str, tests: str, verifier: PythonCodeVerifier = VERIFIER) -> tuple[bool, float | None, str]:
    v = verifier.verify(Record(id="m", answer=textwrap.dedent(answer), tests=textwrap.dedent(tests)))
    return v.ok, v.score, v.reason


@pytest.mark.parametrize(
    ("tests", "why"),
    [
        ("assert True\n", "`assert True` is always true"),
        ("assert (clamp(1, 0, 2) == 1, 'clamp works')\n", "is always true"),
        ("def test_runs():\n    clamp(1, 0, 2)\n", "test_runs checks nothing (no assert)"),
        ("def test_other():\n    assert sorted([2, 1]) == [1, 2]\n", "no assertion uses anything the solution defines"),
        ("x = clamp(1, 0, 2)\nassert x == x\n", "is always true"),
        ("class TestC:\n    def test_a(self):\n        clamp(1, 0, 2)\n", "TestC.test_a checks nothing"),
    ],
)
def test_vacuous_suites_are_named(tests: str, why: str) -> None:
    reason = vacuous_reason(ast.parse(CLAMP), ast.parse(tests))
    assert reason.startswith("vacuous_tests: ") and why in reason
    ok, score, full = verdict(CLAMP, tests)
    assert (ok, score, full) == (False, 0.0, reason)


@pytest.mark.parametrize(
    "tests",
    [
        STRONG,
        "result = clamp(5, 0, 10)\nassert result == 5\n",
        "import unittest\nclass TestT(unittest.TestCase):\n    def setUp(self):\n        self.v = clamp(5, 0, 10)\n"
        "    def test_v(self):\n        self.assertEqual(self.v, 5)\n",
        "def test_raise():\n    if clamp(5, 0, 10) != 5:\n        raise AssertionError('wrong')\n",
    ],
)
def test_suites_that_can_fail_are_not_vacuous(tests: str) -> None:
    assert vacuous_reason(ast.parse(CLAMP), ast.parse(tests)) == ""


def test_mutants_are_varied_deterministic_and_compile() -> None:
    made = mutants(CLAMP, 8)
    assert len(made) == 5  # two comparisons, three returns: every site, each once
    assert {m.kind for m in made} == {"comparison", "return"}
    assert len(mutants(CLAMP, 3)) == 3
    assert {m.kind for m in mutants("def f(xs):\n    return xs[0] + len(range(1, 3)) > 2 and True\n", 8)} == {
        "comparison", "operator", "return", "constant", "off_by_one"}
    assert [m.source for m in made] == [m.source for m in mutants(CLAMP, 8)]
    for m in made:
        compile(m.source, "m", "exec")
        assert m.source != ast.unparse(ast.parse(CLAMP))
    assert mutants("x = 1\n", 8) == []  # nothing inside a function: nothing to mutate
    assert mutants("def f(:\n", 8) == []


def test_a_strong_suite_kills_the_mutants_and_scores_them() -> None:
    ok, score, reason = verdict(CLAMP, STRONG)
    assert ok and score is not None and score >= 0.6
    assert reason.startswith("passed: 1/1 tests; mutation score ")


def test_a_weak_suite_is_rejected_with_what_survived() -> None:
    ok, score, reason = verdict(CLAMP, "assert clamp(5, 0, 10) == 5\n")
    assert not ok and score is not None and score < 0.6
    assert reason.startswith("weak_tests: passed: 1/1 tests; mutation score ")
    assert "the tests still pass with line " in reason


def test_a_mutant_that_loops_forever_counts_as_killed() -> None:
    loop = "def count(n):\n    i = 0\n    while i < n:\n        i += 1\n    return i\n"
    ok, score, _ = verdict(loop, "assert count(3) == 3\nassert count(0) == 0\n")
    assert ok and score == 1.0  # `i += 1` -> `i -= 1` spins until the alarm: noticed


def test_threshold_zero_turns_mutation_off() -> None:
    off = PythonCodeVerifier(timeout_s=3.0, memory_mb=256, min_mutation_score=0.0)
    assert verdict(CLAMP, "assert clamp(5, 0, 10) == 5\n", off) == (True, 1.0, "passed: 1/1 tests")
