"""The snippet verifier: the Python examples shown in prose must run."""

from __future__ import annotations

import pytest

from synthloop.records import Record
from synthloop.verifiers import PythonSnippetVerifier, python_blocks


def answer(*blocks: str) -> Record:
    body = "\n\nThen:\n\n".join(f"```python\n{b}\n```" for b in blocks)
    return Record(id="x", text=f"Use it like this.\n\n{body}\n\nThat is all.")


@pytest.mark.parametrize(
    ("record", "ok", "category"),
    [
        (answer("xs = [3, 1]", "print(sorted(xs))"), True, "examples_run"),  # later blocks see earlier names
        (Record(id="x", text="Just prose, no code."), True, "unchecked"),  # never called verified
        (answer("def f(:\n    pass"), False, "syntax_error"),
        (answer("print(undefined_name)"), False, "example_error"),
        (answer("while True:\n    pass"), False, "timeout"),
    ],
)
def test_snippet_verdicts(record: Record, ok: bool, category: str) -> None:
    verdict = PythonSnippetVerifier(timeout_s=1.0).verify(record)
    assert verdict.ok is ok
    assert verdict.reason.split(":", 1)[0] == category
    assert verdict.name == "python_snippets" and verdict.stage == "verify"


def test_example_error_names_the_exception() -> None:
    verdict = PythonSnippetVerifier().verify(answer("{}['missing']"))
    assert "KeyError" in verdict.reason


def test_python_blocks_ignores_other_languages() -> None:
    text = "```bash\nls\n```\n```python\nx = 1\n```\n```py\ny = 2\n```"
    assert python_blocks(text) == ["x = 1\n", "y = 2\n"]


@pytest.mark.parametrize(
    ("after", "ok"),
    [
        ("\n\nOutput: [2, 4]", True),
        ("\n\nOutput:\n```\n[2, 4]\n```", True),
        ("\n\nOutput: [1, 2, 3, 4]", False),
        ("\n\nThis is a filter.", True),  # no claim, nothing to compare
    ],
)
def test_stated_output_must_match(after: str, ok: bool) -> None:
    text = "Keep the even numbers:\n\n```python\nprint([x for x in [1, 2, 3, 4] if x % 2 == 0])\n```" + after
    verdict = PythonSnippetVerifier().verify(Record(id="x", text=text))
    assert verdict.ok is ok, verdict.reason
    if not ok:
        assert verdict.reason.startswith("output_mismatch") and "[2, 4]" in verdict.reason
