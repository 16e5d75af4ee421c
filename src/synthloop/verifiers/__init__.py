"""Verifiers: `verify(record) -> Verdict(stage, name, ok, score, reason)`.

- `PythonCodeVerifier`: runs a record's unit tests against its reference solution in the sandbox,
  rejects vacuous suites, scores the suite on mutants of the solution, checks the explanation.
- `PythonSnippetVerifier`: runs the ```python examples shown in prose and checks every output claim;
  records without code go to the answer checkers (`CHECKERS`), or are marked `unchecked`.
- `LLMJudge`: a model grades the record 1-5 against a rubric file.
- `run_sandboxed`: the sandbox itself, for anything else that must run untrusted Python.

A reason starts with its category (`tests_failed: ...`, `timeout: ...`, `judge_score_low: ...`);
the part before ':' is what the run report counts.
"""

from synthloop.records import Record
from synthloop.verifiers.checkers import CHECKERS
from synthloop.verifiers.code import PythonCodeVerifier
from synthloop.verifiers.judge import LLMJudge, load_rubric, parse_judgement
from synthloop.verifiers.registry import register_verifier
from synthloop.verifiers.sandbox import SandboxLimits, SandboxResult, isolation_layers, run_sandboxed
from synthloop.verifiers.snippets import PythonSnippetVerifier, python_blocks


def _has_tests(record: Record) -> bool:
    return bool(record.answer and record.tests)


# The built-in verifiers, in the order a record is offered to them.
register_verifier("python_tests", lambda r: PythonCodeVerifier.from_config(r.verify) if r.verify.code else None, applies=_has_tests)
register_verifier("python_snippets", lambda r: PythonSnippetVerifier.from_config(r.verify) if r.verify.code else None)

__all__ = [
    "CHECKERS",
    "LLMJudge",
    "PythonCodeVerifier",
    "PythonSnippetVerifier",
    "SandboxLimits",
    "SandboxResult",
    "isolation_layers",
    "load_rubric",
    "parse_judgement",
    "python_blocks",
    "run_sandboxed",
]
