"""Run the Python examples inside prose (an instruction answer, a textbook explanation).

A record without unit tests still has a ground truth worth checking: the code it shows a student
must at least be valid Python that runs without raising. The ```python blocks are joined in order
(later examples often use names from earlier ones) and run once in the sandbox. This catches
syntax errors, undefined names, wrong calls and crashing examples. When the prose states what the
last example prints (`Output: ...` right after it, inline or as a block), the printed output must
match it, whitespace aside. Other claims in the prose are not checked. Records with no Python block
pass with reason `no_code`.
"""

from __future__ import annotations

import ast
import re

from synthloop.records import Record, Verdict
from synthloop.verifiers.sandbox import SandboxLimits, run_sandboxed

_BLOCK = re.compile(r"```(?:python|py)[ \t]*\n(.*?)```", re.S)
_CLAIM = re.compile(
    r"\s*\**(?:output|this prints|prints|result)\**\s*:?\**[ \t]*(?:\n\s*```[^\n]*\n(.*?)```|`?([^\n`]+)`?)", re.I | re.S
)


def python_blocks(text: str) -> list[str]:
    return [m.group(1) for m in _BLOCK.finditer(text)]


def claimed_output(text: str) -> str | None:
    """What the prose says the last example prints, if it says so right after that example."""
    blocks = list(_BLOCK.finditer(text))
    if not blocks:
        return None
    m = _CLAIM.match(text, blocks[-1].end())
    if m is None:
        return None
    return (m.group(1) if m.group(1) is not None else m.group(2)).strip()


def _same_output(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


class PythonSnippetVerifier:
    name = "python_snippets"

    def __init__(self, timeout_s: float = 5.0, memory_mb: int = 512) -> None:
        self.limits = SandboxLimits(timeout_s=timeout_s, memory_mb=memory_mb)

    def verify(self, record: Record) -> Verdict:
        prose = "\n\n".join(p for p in (record.explanation, record.text) if p)
        blocks = python_blocks(prose)
        if not blocks:
            return self._verdict(True, None, "no_code: the record shows no ```python block")
        code = "\n\n".join(blocks)
        try:
            ast.parse(code)
        except SyntaxError as e:
            return self._verdict(False, 0.0, f"syntax_error: example line {e.lineno}: {e.msg}")
        result = run_sandboxed(code, limits=self.limits)
        if result.violations:
            return self._verdict(False, 0.0, result.violations[0])
        if result.killed_by == "time":
            return self._verdict(False, 0.0, f"timeout: the example ran over {self.limits.timeout_s:g} s")
        if result.killed_by == "memory":
            return self._verdict(False, 0.0, f"memory: the example exceeded {self.limits.memory_mb} MB")
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            return self._verdict(False, 0.0, f"example_error: {last[:200]}")
        claim = claimed_output(prose)
        if claim is not None and not _same_output(claim, result.stdout):
            printed = " ".join(result.stdout.split())[:80] or "nothing"
            return self._verdict(False, 0.0, f"output_mismatch: the text says {claim[:80]!r}, the example prints {printed!r}")
        return self._verdict(True, 1.0, f"examples_run: {len(blocks)} block(s) ran cleanly")

    def _verdict(self, ok: bool, score: float | None, reason: str) -> Verdict:
        return Verdict(stage="verify", name=self.name, ok=ok, score=score, reason=reason)


__all__ = ["PythonSnippetVerifier", "python_blocks"]
