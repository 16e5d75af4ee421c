"""Verifiers: `verify(record) -> Verdict(stage, name, ok, score, reason)`.

- `PythonCodeVerifier`: runs a record's unit tests against its reference solution in the sandbox.
- `PythonSnippetVerifier`: runs the ```python examples shown in prose (instruction answers).
- `LLMJudge`: a model grades the record 1-5 against a rubric file.
- `run_sandboxed`: the sandbox itself, for anything else that must run untrusted Python.

A reason starts with its category (`tests_failed: ...`, `timeout: ...`, `judge_score_low: ...`);
the part before ':' is what the run report counts.
"""

from synthloop.verifiers.code import PythonCodeVerifier
from synthloop.verifiers.judge import LLMJudge, load_rubric, parse_judgement
from synthloop.verifiers.snippets import PythonSnippetVerifier, python_blocks
from synthloop.verifiers.sandbox import SandboxLimits, SandboxResult, isolation_layers, run_sandboxed
from synthloop.verifiers.registry import register_verifier
from synthloop.recipe import Recipe
from synthloop.records import Record


def _limits(recipe: Recipe) -> dict[str, float]:
    return {"timeout_s": recipe.verify.timeout_s, "memory_mb": recipe.verify.memory_mb}


def _has_tests(record: Record) -> bool:
    return bool(record.answer and record.tests)


# The built-in verifiers, in the order a record is offered to them.
register_verifier("python_tests", lambda r: PythonCodeVerifier(**_limits(r)) if r.verify.code else None, applies=_has_tests)  # type: ignore[arg-type]
register_verifier("python_snippets", lambda r: PythonSnippetVerifier(**_limits(r)) if r.verify.code else None)  # type: ignore[arg-type]

__all__ = [
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
