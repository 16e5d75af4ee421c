"""PythonCodeVerifier: a record's solution against its own tests, with one reason per failure kind."""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path

import pytest

from synthloop.backends.base import Request, Response
from synthloop.pipeline.context import RunContext
from synthloop.pipeline.stage import VerifierStage
from synthloop.records import Record
from synthloop.tasks.textbook import fake_exercise, parse_exercise
from synthloop.verifiers import PythonCodeVerifier
from synthloop.verifiers.code import strip_fences

VERIFIER = PythonCodeVerifier(timeout_s=2.0, memory_mb=256)
DOUBLE = "def double(x):\n    return 2 * x\n"


def check(answer: str, tests: str, verifier: PythonCodeVerifier = VERIFIER) -> tuple[bool, float | None, str]:
    v = verifier.verify(Record(id="r", answer=textwrap.dedent(answer), tests=textwrap.dedent(tests)))
    assert (v.stage, v.name) == ("verify", "python_tests")
    return v.ok, v.score, v.reason


def category(reason: str) -> str:
    return reason.split(":", 1)[0]


def test_correct_solution_passes_all_test_styles() -> None:
    ok, score, reason = check(DOUBLE, """
        import unittest
        from solution import double as d
        assert double(2) == 4
        def test_negative():
            assert double(-1) == -2
        async def test_async():
            assert d(0) == 0
        class TestPlain:
            def test_three(self):
                assert double(3) == 6
        class TestCase(unittest.TestCase):
            def test_four(self):
                self.assertEqual(double(4), 8)
    """)
    assert (ok, score, reason) == (True, 1.0, "passed: 5/5 tests; mutation score 3/3 = 1.00")


def test_wrong_solution_fails_with_the_failing_test_named() -> None:
    ok, score, reason = check("def double(x):\n    return 3 * x\n", """
        assert double(0) == 0
        def test_two():
            assert double(2) == 4
    """)
    assert not ok and score == 0.5
    assert reason == "tests_failed: 1/2 failed; test_two: AssertionError: assert double(2) == 4"


def test_fenced_code_is_unwrapped() -> None:
    assert strip_fences("Here:\n```python\nx = 1\n```\nand\n```\ny = 2\n```") == "x = 1\n\ny = 2"
    assert strip_fences("x = 1\n") == "x = 1"
    ok, _, _ = check(f"```python\n{DOUBLE}```", "```py\nassert double(1) == 2\n```")
    assert ok


@pytest.mark.parametrize(
    ("answer", "tests", "expected"),
    [
        ("def f(:\n", "assert True", "syntax_error: solution line 1"),
        (DOUBLE, "assert double(1) ==\n", "syntax_error: tests line 1"),
        (DOUBLE, "print(double(2))\n", "no_tests: "),
        (DOUBLE, "", "no_tests: "),
        ("", "assert True", "no_solution: "),
        ("raise ValueError('boom')\n", "assert True", "solution_error: importing the solution raised ValueError: boom"),
    ],
)
def test_static_and_import_problems_have_their_own_category(answer: str, tests: str, expected: str) -> None:
    ok, score, reason = check(answer, tests)
    assert not ok and score == 0.0
    assert reason.startswith(expected)


def test_infinite_loop_times_out_and_keeps_partial_results() -> None:
    verifier = PythonCodeVerifier(timeout_s=1.0)
    ok, score, reason = check("def spin():\n    while True:\n        pass\n", """
        assert 1 + 1 == 2
        def test_spin():
            spin()
    """, verifier)
    assert not ok and score == 0.5
    assert reason == "timeout: exceeded 1 s (1/2 tests finished)"


def test_unbounded_allocation_hits_the_memory_limit() -> None:
    ok, _, reason = check("def grow():\n    chunks = []\n    while True:\n        chunks.append(bytearray(10**7))\n", """
        def test_grow():
            grow()
    """, PythonCodeVerifier(timeout_s=5.0, memory_mb=128))
    assert not ok
    assert reason == "memory: exceeded 128 MB in test_grow"


def test_network_in_the_solution_is_blocked() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.setblocking(False)
    try:
        port = server.getsockname()[1]
        ok, _, reason = check(f"""
            import socket
            def fetch():
                try:
                    socket.getaddrinfo('localhost', {port})
                except OSError:
                    pass
                return socket.create_connection(('127.0.0.1', {port}), timeout=1)
        """, "def test_fetch():\n    assert fetch()\n")
        assert not ok
        assert category(reason) == "network_blocked"
        with pytest.raises(BlockingIOError):
            server.accept()  # nothing ever connected
    finally:
        server.close()


def test_writing_outside_the_work_dir_is_blocked(tmp_path: Path) -> None:
    target = tmp_path / "target.txt"
    ok, _, reason = check(f"def save():\n    open({str(target)!r}, 'w').write('x')\n", "def test_save():\n    save()\n")
    assert not ok and category(reason) == "fs_blocked"
    assert not target.exists()


def test_spawning_is_blocked_even_when_the_error_is_swallowed() -> None:
    ok, _, reason = check("""
        import os
        def bomb():
            for _ in range(100):
                try:
                    os.fork()
                except OSError:
                    pass
            return True
    """, "assert bomb()\n")
    assert not ok
    assert category(reason) == "spawn_blocked"


def test_pytest_fixtures_are_reported_not_crashed() -> None:
    ok, _, reason = check(DOUBLE, "def test_tmp(tmp_path):\n    assert double(1) == 2\n")
    assert not ok and "pytest fixtures" in reason and category(reason) == "tests_failed"


def test_failing_setup_statement_counts_as_a_failed_test() -> None:
    ok, score, reason = check(DOUBLE, "from solution import triple\nassert double(1) == 2\n")
    assert not ok and score == 0.5
    assert reason.startswith("tests_failed: 1/2 failed; setup line 1: ImportError: cannot import name 'triple' from 'solution' (solution.py)")


def test_prints_in_the_code_do_not_confuse_the_harness() -> None:
    ok, _, _ = check("import sys\nprint('{\"event\": \"done\"}')\ndef f():\n    print('noise' * 10000, file=sys.stderr)\n    return 1\n", "assert f() == 1\n")
    assert ok


def test_the_textbook_task_canned_exercise_verifies() -> None:
    """What the fake teacher writes for `textbook` must pass the verifier (dry runs depend on it)."""
    request = Request.chat([{"role": "user", "content": "Write an exercise about list comprehensions in Python"}], model="fake", seed=21)
    fields = parse_exercise(Response(text=fake_exercise(request)))
    ok, score, _ = check(fields["answer"], fields["tests"])
    assert ok and score == 1.0


def test_verifier_stage_counts_rejections_by_category() -> None:
    ctx = RunContext()
    stage = VerifierStage(VERIFIER, stage="verify")
    records = [
        Record(id="good", answer=DOUBLE, tests="assert double(2) == 4"),
        Record(id="bad", answer=DOUBLE, tests="assert double(2) == 5"),
        Record(id="none", answer=DOUBLE, tests="# nothing"),
    ]
    kept = list(stage.run(records, ctx))
    assert [r.id for r in kept] == ["good"]
    assert dict(ctx.stats["verify:python_tests"].reasons) == {"tests_failed": 1, "no_tests": 1}
    assert all(len(r.verdicts) == 1 for r in records)
