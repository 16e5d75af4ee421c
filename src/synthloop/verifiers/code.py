"""Check a record's reference solution against its own unit tests, in the sandbox.

The teacher writes both; a solution that fails its tests (or tests that cannot run) means the record
is wrong somewhere, and it should not become training data. Reasons, by category:

`no_solution`, `syntax_error`, `no_tests` (found without running anything); `network_blocked`,
`fs_blocked`, `spawn_blocked`, `signal_blocked`, `limits_blocked`, `ctypes_blocked` (the sandbox
refused something); `timeout`, `memory`, `solution_error` (importing the solution raised),
`tests_failed`, `crashed` (the child died without reporting), `incomplete` (results went missing).
"""

from __future__ import annotations

import ast
import json
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from synthloop.records import Record, Verdict
from synthloop.verifiers.sandbox import SandboxLimits, SandboxResult, run_sandboxed

_HARNESS = Path(__file__).with_name("_harness.py").read_text(encoding="utf-8")
_FENCED = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)```", re.S | re.I)


def strip_fences(text: str) -> str:
    """The code inside ``` fences (all python blocks, joined), or the text itself if unfenced."""
    blocks = _FENCED.findall(text)
    return "\n\n".join(b.strip("\n") for b in blocks) if blocks else text.strip("\n")


def count_tests(tree: ast.Module) -> int:
    """Top-level asserts, `test*` functions and `test*` methods of `Test*` classes."""
    n = 0
    for stmt in tree.body:
        if isinstance(stmt, ast.Assert):
            n += 1
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name.startswith("test"):
            n += 1
        elif isinstance(stmt, ast.ClassDef) and stmt.name.startswith("Test"):
            n += sum(isinstance(i, ast.FunctionDef) and i.name.startswith("test") for i in stmt.body)
    return n


@dataclass
class HarnessReport:
    """What the harness said, read from its protocol lines."""

    planned: list[str] = field(default_factory=list)
    results: list[dict[str, object]] = field(default_factory=list)
    solution_error: str = ""
    done: bool = False
    violations: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.planned) + sum(1 for r in self.results if r.get("setup"))

    @property
    def passed(self) -> int:
        return sum(1 for r in self.results if r.get("ok"))

    @property
    def failures(self) -> list[dict[str, object]]:
        return [r for r in self.results if not r.get("ok")]


def read_report(stdout: str, nonce: str) -> HarnessReport:
    report = HarnessReport()
    prefix = nonce + " "
    for line in stdout.splitlines():
        if not line.startswith(prefix):
            continue
        try:
            msg = json.loads(line[len(prefix):])
        except ValueError:
            continue
        event = msg.get("event")
        if event == "plan":
            report.planned = list(msg.get("tests", []))
        elif event == "result":
            report.results.append(msg)
        elif event == "solution_error":
            report.solution_error = str(msg.get("error", ""))
        elif event == "done":
            report.done = True
            report.violations = list(msg.get("violations", []))
    return report


class PythonCodeVerifier:
    """`verify(record)`: run `record.tests` against `record.answer` in the sandbox.

    `ok` means the run finished, at least one test ran and every test passed; `score` is the
    fraction of tests that passed (partial results survive a timeout)."""

    name = "python_tests"

    def __init__(self, timeout_s: float = 5.0, memory_mb: int = 512) -> None:
        self.limits = SandboxLimits(timeout_s=timeout_s, memory_mb=memory_mb)

    def verify(self, record: Record) -> Verdict:
        solution, tests = strip_fences(record.answer), strip_fences(record.tests)
        problem = self._static_problem(solution, tests)
        if problem:
            return self._verdict(False, 0.0, problem)
        nonce = secrets.token_hex(8)
        result = run_sandboxed(_HARNESS, files={"solution.py": solution, "tests.py": tests}, args=[nonce], limits=self.limits)
        report = read_report(result.stdout, nonce)
        score = report.passed / report.total if report.total else 0.0
        reason = self._failure(result, report)
        return self._verdict(not reason, score, reason or f"passed: {report.passed}/{report.total} tests")

    def _verdict(self, ok: bool, score: float, reason: str) -> Verdict:
        return Verdict(stage="verify", name=self.name, ok=ok, score=score, reason=reason)

    @staticmethod
    def _static_problem(solution: str, tests: str) -> str:
        """Reasons found without running anything: empty, unparsable, or test-free input."""
        if not solution.strip():
            return "no_solution: record.answer has no code"
        for label, source in (("solution", solution), ("tests", tests)):
            try:
                tree = ast.parse(source)
            except SyntaxError as e:
                return f"syntax_error: {label} line {e.lineno}: {e.msg}"
            if label == "tests" and count_tests(tree) == 0:
                return "no_tests: record.tests has no `def test_*` function, `Test*` class or top-level `assert`"
        return ""

    def _failure(self, result: SandboxResult, report: HarnessReport) -> str:
        """The first reason, in order of how much it says; empty when everything passed."""
        violations = report.violations or result.violations
        if violations:
            return violations[0]
        if result.killed_by == "time":
            done = len(report.results)
            return f"timeout: exceeded {self.limits.timeout_s:g} s ({done}/{report.total} tests finished)"
        memory = [r for r in report.failures if str(r.get("error", "")).startswith("MemoryError")]
        if result.killed_by == "memory" or memory or report.solution_error.startswith("MemoryError"):
            where = f" in {memory[0]['name']}" if memory else ""
            return f"memory: exceeded {self.limits.memory_mb} MB{where}"
        if report.solution_error:
            return f"solution_error: importing the solution raised {report.solution_error}"
        if not report.done:
            tail = result.stderr.strip().splitlines()[-1:] or ["no output"]
            return f"crashed: exit code {result.returncode} ({result.killed_by or 'no signal'}): {tail[0][:200]}"
        if report.failures:
            first = report.failures[0]
            return f"tests_failed: {len(report.failures)}/{report.total} failed; {first['name']}: {first.get('error', '')}"
        if report.passed < report.total:
            return f"incomplete: only {report.passed}/{report.total} tests reported a result"
        return ""


__all__ = ["HarnessReport", "PythonCodeVerifier", "count_tests", "read_report", "strip_fences"]
