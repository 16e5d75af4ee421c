"""Check a record's reference solution against its own unit tests, in the sandbox.

The teacher writes both; a solution that fails its tests (or tests that cannot run) means the record
is wrong somewhere, and it should not become training data. Reasons, by category:

`no_solution`, `syntax_error`, `no_tests`, `vacuous_tests` (found without running anything);
`network_blocked`, `fs_blocked`, `spawn_blocked`, `signal_blocked`, `limits_blocked`,
`ctypes_blocked` (the sandbox refused something); `timeout`, `memory`, `solution_error` (importing
the solution raised), `tests_failed`, `crashed` (the child died without reporting), `incomplete`
(results went missing); `weak_tests` (the tests pass on too many mutants of the solution).

Passing tests prove something only if they fail on wrong code: after the suite passes, up to
`max_mutants` mutants of the solution (`verifiers/mutation.py`) run against it in the same sandbox
process, and the verdict's `score` is the fraction killed (the mutation score). Below
`min_mutation_score` the record is rejected as `weak_tests`. The explanation's examples and output
claims are checked too (`PythonSnippetVerifier`), so one verdict covers the whole record.
"""

from __future__ import annotations

import ast
import json
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthloop.records import Record, Verdict
from synthloop.verifiers.mutation import Mutant, mutants
from synthloop.verifiers.sandbox import SandboxLimits, SandboxResult, run_sandboxed
from synthloop.verifiers.vacuity import vacuous_reason

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
        if isinstance(stmt, ast.Assert) or isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name.startswith("test"):
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
    mutants: dict[int, tuple[bool, str]] = field(default_factory=dict)  # id -> (killed, by what)

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
        elif event == "mutant":
            report.mutants[int(msg.get("id", -1))] = (bool(msg.get("killed")), str(msg.get("by", "")))
        elif event == "solution_error":
            report.solution_error = str(msg.get("error", ""))
        elif event == "done":
            report.done = True
            report.violations = list(msg.get("violations", []))
    return report


#: a mutant gets at most this long (a wrong loop bound can make it spin): a timeout counts as killed
MUTANT_TIMEOUT_S = 1.0


class PythonCodeVerifier:
    """`verify(record)`: run `record.tests` against `record.answer` in the sandbox, then against
    mutants of the answer, then the explanation's examples and claims.

    `ok` means the run finished, at least one test ran, every test passed, the mutation score is at
    least `min_mutation_score` (0 turns the mutation run off) and the examples check out. `score`
    is the mutation score when mutants ran, else the fraction of tests that passed."""

    name = "python_tests"
    parallel = True  # each check is its own sandboxed subprocess: safe on several threads at once

    def __init__(self, timeout_s: float = 5.0, memory_mb: int = 512, *, min_mutation_score: float = 0.5,
                 max_mutants: int = 8, check_explanation: bool = True) -> None:
        self.limits = SandboxLimits(timeout_s=timeout_s, memory_mb=memory_mb)
        self.min_mutation_score = min_mutation_score
        self.max_mutants = max_mutants if min_mutation_score > 0 else 0
        self.snippets = None
        if check_explanation:
            from synthloop.verifiers.snippets import PythonSnippetVerifier

            self.snippets = PythonSnippetVerifier(timeout_s=timeout_s, memory_mb=memory_mb)

    @classmethod
    def from_config(cls, cfg: Any) -> "PythonCodeVerifier":
        """From a recipe's [verify] section (`VerifyConfig`)."""
        return cls(cfg.timeout_s, cfg.memory_mb, min_mutation_score=cfg.min_mutation_score, max_mutants=cfg.max_mutants)

    def verify(self, record: Record) -> Verdict:
        solution, tests = strip_fences(record.answer), strip_fences(record.tests)
        problem = self._static_problem(solution, tests)
        if problem:
            return self._verdict(False, 0.0, problem)
        # A vacuous suite still runs (without mutants): hostile code should be named as such.
        vacuous = vacuous_reason(ast.parse(solution), ast.parse(tests))
        variants = [] if vacuous else mutants(solution, self.max_mutants)
        nonce = secrets.token_hex(8)
        files = {"solution.py": solution, "tests.py": tests}
        if variants:
            files["mutants.json"] = json.dumps([m.source for m in variants])
        result = run_sandboxed(_HARNESS, files=files, args=[nonce, f"{MUTANT_TIMEOUT_S:g}"], limits=self._limits(len(variants)))
        report = read_report(result.stdout, nonce)
        score = report.passed / report.total if report.total else 0.0
        reason = self._failure(result, report) or vacuous
        if reason:
            return self._verdict(False, 0.0 if vacuous and reason == vacuous else score, reason)
        summary = f"passed: {report.passed}/{report.total} tests"
        if variants:
            killed, weak = self._mutation(variants, report)
            score = killed / len(variants)
            summary += f"; mutation score {killed}/{len(variants)} = {score:.2f}"
            if weak:
                return self._verdict(False, score, f"weak_tests: {summary} < {self.min_mutation_score:g}; {weak}")
        return self._with_claims(record, score, summary)

    def _limits(self, n_mutants: int) -> SandboxLimits:
        """The suite's own time, plus each mutant's at most."""
        extra = n_mutants * MUTANT_TIMEOUT_S
        return SandboxLimits(timeout_s=self.limits.timeout_s + extra, memory_mb=self.limits.memory_mb)

    def _mutation(self, variants: list[Mutant], report: HarnessReport) -> tuple[int, str]:
        """(mutants killed, the weak_tests detail or ""). A mutant that never reported (the run
        hit its wall clock) counts as survived: nothing showed the tests noticed it."""
        killed = sum(1 for i in range(len(variants)) if report.mutants.get(i, (False, ""))[0])
        if killed / len(variants) >= self.min_mutation_score:
            return killed, ""
        survived = [variants[i].describe() for i in range(len(variants)) if not report.mutants.get(i, (False, ""))[0]]
        return killed, "the tests still pass with " + "; ".join(survived[:3])

    def _with_claims(self, record: Record, score: float, summary: str) -> Verdict:
        """The explanation's examples and claims are part of what the record teaches."""
        if self.snippets is None or not record.explanation:
            return self._verdict(True, score, summary)
        claims = self.snippets.verify_prose(record.explanation)
        if not claims.ok:
            return self._verdict(False, score, claims.reason)
        return self._verdict(True, score, f"{summary}; explanation {claims.reason}")

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
