"""Check what prose shows and says: its Python examples run, and what it claims they print is true.

A record without unit tests still has a ground truth worth checking. The prose is the record's
explanation, its text and its assistant messages (an instruction answer), each once. Every
```python block (and every `>>>` session, in any fence) runs once in the sandbox, in order, in one
shared namespace (later examples use names from earlier ones). Output claims are checked against
what runs:

- inline comments: `print(x)  # Output: 3`, `x + 1  # -> 4`, `# Output:` on the lines after;
- `>>>` sessions: each example's expected output (a doctest, whitespace-normalised);
- prose right after a block: `Output: X` (inline or as a fenced block), and sentences such as
  "this prints `X`", "it will output `X`", "prints X." — compared with that block's output.

Records whose prose has no block fall through to the task's checkers (`verifiers/checkers.py`:
final answer, program of thought, exact match, regex, JSON schema). What nothing checked is said
so: the reason starts with `unchecked:`, or ends `; unchecked: ...`. See docs/verifiers.md.
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
from synthloop.verifiers.sandbox import SandboxLimits, SandboxResult, run_sandboxed

_RUNNER = Path(__file__).with_name("_claims.py").read_text(encoding="utf-8")
_BLOCK = re.compile(r"```(?:python3?|py)[ \t]*\n(.*?)```", re.S | re.I)
_ANY_FENCE = re.compile(r"```[^\n]*\n(.*?)```", re.S)
_AFTER = re.compile(
    r"\s*\**(?:output|this prints|prints|result)\**\s*:?\**[ \t]*(?:\n\s*```[^\n]*\n(.*?)```|`?([^\n`]+)`?)", re.I | re.S
)
_SENTENCE = re.compile(
    r"\b(?:prints?|outputs?|will (?:print|output|display|show))\s*(?:out\s*)?:?\s*"
    r"(?:`([^`\n]+)`|(\[[^\]\n]{0,80}\]|\{[^}\n]{0,80}\}|\(\S[^)\n]{0,80}\)|-?\d[\d,]*(?:\.\d+)?(?=\s*(?:[.;,]\s|[.;]?$|\n))"
    r"|True\b|False\b|None\b|'[^'\n]{0,60}'|\"[^\"\n]{0,60}\"))",
    re.I,
)


def python_blocks(text: str) -> list[str]:
    return [m.group(1) for m in _BLOCK.finditer(text)]


@dataclass
class Block:
    code: str
    doctest: bool
    end: int  # where the block ends in the prose (claims after it refer to it)
    stated: list[str] = field(default_factory=list)  # claims the prose makes about its output


def prose_of(record: Record) -> str:
    """Explanation, text and assistant turns, each distinct piece once."""
    parts: list[str] = []
    for piece in [record.explanation, record.text, record.reasoning] + [
        m.get("content", "") for m in record.messages if m.get("role") == "assistant"
    ]:
        if piece and not any(piece in p for p in parts):
            parts = [p for p in parts if p not in piece] + [piece]
    return "\n\n".join(parts)


def find_blocks(prose: str) -> list[Block]:
    """Python blocks and `>>>` sessions, each with the claims the prose after it makes."""
    found: list[Block] = []
    for m in _ANY_FENCE.finditer(prose):
        body, head = m.group(1), prose[m.start(): prose.index("\n", m.start())].lower()
        is_python = bool(_BLOCK.match(prose, m.start()))
        if ">>>" in body:
            found.append(Block(body, True, m.end()))
        elif is_python:
            found.append(Block(body, False, m.end()))
        del head
    for i, block in enumerate(found):
        nxt = prose.find("```", block.end)
        tail = prose[block.end: nxt if nxt >= 0 and i + 1 < len(found) else len(prose)]
        block.stated = stated_claims(prose, block.end, tail)
    return found


def stated_claims(prose: str, end: int, tail: str) -> list[str]:
    """`Output: X` right after the block, and "prints `X`" sentences before the next block."""
    claims = []
    m = _AFTER.match(prose, end)
    if m is not None:
        claims.append((m.group(1) if m.group(1) is not None else m.group(2)).strip())
    else:
        for s in _SENTENCE.finditer(tail[:600]):
            claims.append((s.group(1) or s.group(2)).strip())
    return [c for c in claims if c]


def _norm(text: str) -> str:
    return " ".join(text.split()).strip("`'\" .")


def _printed_matches(claim: str, printed: str) -> bool:
    want = _norm(claim)
    return want == _norm(printed) or any(want == _norm(line) for line in printed.splitlines() if line.strip())


@dataclass
class ClaimReport:
    ran: int = 0
    checked: int = 0
    mismatch: str = ""
    error: str = ""


class PythonSnippetVerifier:
    """`verify(record)`: the record's examples run and its output claims hold; else its checkers."""

    name = "python_snippets"
    parallel = True  # each check is its own sandboxed subprocess: safe on several threads at once

    def __init__(self, timeout_s: float = 5.0, memory_mb: int = 512, *, checkers: tuple[str, ...] | list[str] = ("final_answer", "program_of_thought")) -> None:
        from synthloop.verifiers.checkers import resolve

        self.limits = SandboxLimits(timeout_s=timeout_s, memory_mb=memory_mb)
        self.checkers = resolve(list(checkers))

    @classmethod
    def from_config(cls, cfg: Any) -> "PythonSnippetVerifier":
        """From a recipe's [verify] section (`VerifyConfig`)."""
        return cls(cfg.timeout_s, cfg.memory_mb, checkers=cfg.checkers)

    def verify(self, record: Record) -> Verdict:
        prose = prose_of(record)
        blocks = find_blocks(prose)
        if not blocks:
            return self._by_checkers(record)
        verdict = self.verify_blocks(blocks)
        if verdict.ok and verdict.reason.startswith("examples_run"):
            checked = self._by_checkers(record)  # e.g. program of thought: the blocks are the computation
            if not checked.reason.startswith("unchecked"):
                return checked
        return verdict

    def verify_prose(self, prose: str) -> Verdict:
        """The same checks on a piece of prose alone (the code verifier's explanation check)."""
        blocks = find_blocks(prose)
        if not blocks:
            return self._verdict(True, None, "unchecked: no runnable claim (no ```python block)")
        return self.verify_blocks(blocks)

    def verify_blocks(self, blocks: list[Block]) -> Verdict:
        for b in blocks:
            if not b.doctest:
                try:
                    ast.parse(b.code)
                except SyntaxError as e:
                    return self._verdict(False, 0.0, f"syntax_error: example line {e.lineno}: {e.msg}")
        nonce = secrets.token_hex(8)
        files = {"blocks.json": json.dumps([{"code": b.code, "doctest": b.doctest} for b in blocks])}
        result = run_sandboxed(_RUNNER, files=files, args=[nonce], limits=self.limits)
        problem = self._sandbox_problem(result)
        if problem:
            return self._verdict(False, 0.0, problem)
        report = self._read(result.stdout, nonce, blocks)
        if report.error:
            return self._verdict(False, 0.0, f"example_error: {report.error}")
        if report.mismatch:
            return self._verdict(False, 0.0, f"output_mismatch: {report.mismatch}")
        if report.ran < len(blocks):
            tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
            return self._verdict(False, 0.0, f"example_error: {tail[:200]}")
        if report.checked:
            return self._verdict(True, 1.0, f"claims_checked: {len(blocks)} block(s) ran; {report.checked} output claim(s) match")
        return self._verdict(True, 1.0, f"examples_run: {len(blocks)} block(s) ran cleanly; unchecked: no output claim")

    def _sandbox_problem(self, result: SandboxResult) -> str:
        if result.violations:
            return result.violations[0]
        if result.killed_by == "time":
            return f"timeout: the example ran over {self.limits.timeout_s:g} s"
        if result.killed_by == "memory":
            return f"memory: the example exceeded {self.limits.memory_mb} MB"
        return ""

    @staticmethod
    def _read(stdout: str, nonce: str, blocks: list[Block]) -> ClaimReport:
        report = ClaimReport()
        for line in stdout.splitlines():
            if not line.startswith(nonce + " "):
                continue
            msg = json.loads(line[len(nonce) + 1:])
            if "block" not in msg:
                continue
            report.ran += 1
            if msg["error"]:
                report.error = report.error or msg["error"]
            for lineno, claim, actual, ok in msg["claims"]:
                report.checked += 1
                if not ok and not report.mismatch:
                    report.mismatch = f"line {lineno} says {claim[:80]!r}, it gives {actual[:80]!r}"
            block = blocks[msg["block"]]
            if not msg["error"]:
                for claim in block.stated:
                    report.checked += 1
                    if not _printed_matches(claim, msg["stdout"]) and not report.mismatch:
                        printed = " ".join(msg["stdout"].split())[:80] or "nothing"
                        report.mismatch = f"the text says {claim[:80]!r}, the example prints {printed!r}"
        return report

    def _by_checkers(self, record: Record) -> Verdict:
        """No example to run: the task's checkers, or an honest `unchecked`."""
        for checker in self.checkers:
            outcome = checker.check(record, self.limits)
            if outcome is not None:
                return self._verdict(outcome.ok, 1.0 if outcome.ok else 0.0, outcome.reason)
        return self._verdict(True, None, "unchecked: no runnable claim (no ```python block, no checkable answer)")

    def _verdict(self, ok: bool, score: float | None, reason: str) -> Verdict:
        return Verdict(stage="verify", name=self.name, ok=ok, score=score, reason=reason)


__all__ = ["Block", "PythonSnippetVerifier", "find_blocks", "prose_of", "python_blocks"]
