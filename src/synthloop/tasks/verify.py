"""The verifier of recipe-defined tasks: the checks a task lists in `verify`, all of which must pass.

- a checker name (`verifiers/checkers.py`: final_answer, program_of_thought, exact_match, regex,
  json_schema): it must apply to the record and pass; one that finds nothing to check fails
  (`not_checkable:`), since the task said its records are checkable;
- `faithfulness`: the answer's support in its seed chunk (`seeds.support_score`) is at least
  `seeds.min_support`;
- `execute`: the task's `program` property runs in the sandbox (twice: output that changes between
  runs is no answer); its stdout becomes `{{ output }}` in the task's fields and messages. The
  truth of such a record is the execution, not the teacher.

With `preference = "verifier"`, every sample is checked: the first that passes is chosen, the first
that fails is rejected, and `meta["preference"]` holds the pair (exported to `export/dpo.jsonl`).
Registered first, for records of spec tasks only; every other record goes on to the built-in verifiers.
"""

from __future__ import annotations

import copy
from typing import Any

from synthloop.records import Record, Verdict
from synthloop.verifiers.checkers import CHECKERS, Checked
from synthloop.verifiers.sandbox import SandboxLimits, run_sandboxed

MAX_OUTPUT_CHARS = 400


class TaskVerifier:
    name = "task"
    parallel = True  # each check is its own sandboxed subprocess: safe on several threads at once

    def __init__(self, timeout_s: float = 5.0, memory_mb: int = 512, min_support: float = 0.6) -> None:
        self.limits = SandboxLimits(timeout_s=timeout_s, memory_mb=memory_mb)
        self.min_support = min_support

    def applies(self, record: Record) -> bool:
        task = _spec_task(record)
        return task is not None and bool(task.spec.verify)

    def verify(self, record: Record) -> Verdict:
        task = _spec_task(record)
        assert task is not None  # `applies` routed it here
        candidates: list[dict[str, Any]] = record.meta.get("candidates") or []
        if not candidates:
            ok, reason = self.check(task, record)
            return self._verdict(ok, reason)
        return self._prefer(task, record, candidates)

    def check(self, task: Any, record: Record) -> tuple[bool, str]:
        """Every check of the task in order; the first failure decides."""
        reasons: list[str] = []
        for name in task.spec.verify:
            outcome = self._one(name, task, record)
            if not outcome.ok:
                return False, outcome.reason
            reasons.append(outcome.reason)
        return True, "; ".join(reasons)

    def _one(self, name: str, task: Any, record: Record) -> Checked:
        if name == "faithfulness":
            return self._faithful(record)
        if name == "execute":
            return self._execute(task, record)
        outcome = CHECKERS[name].check(record, self.limits)
        return outcome if outcome is not None else Checked(False, f"not_checkable: checker {name} found nothing to check in the answer")

    def _faithful(self, record: Record) -> Checked:
        from synthloop.seeds.support import support_score

        chunk = (record.meta.get("seed_chunk") or {}).get("text", "")
        if not chunk:
            return Checked(False, "no_chunk: the record names no seed chunk")
        answer = record.answer or record.text or "\n".join(m["content"] for m in record.messages if m.get("role") == "assistant")
        score, missing = support_score(answer, chunk)
        if score < self.min_support:
            return Checked(False, f"unsupported: {score:.0%} of the answer's content words are in its chunk < {self.min_support:.0%} "
                                  f"(seeds.min_support); not in it: {', '.join(missing[:6])}")
        return Checked(True, f"supported: {score:.0%} of the answer's content words are in its chunk")

    def _execute(self, task: Any, record: Record) -> Checked:
        output = dict(record.meta.get("output") or {})
        code = str(output.get(task.spec.program, ""))
        runs = [run_sandboxed(code, limits=self.limits) for _ in range(2)]
        first = runs[0]
        if first.violations:
            return Checked(False, f"sandbox_violation: {first.violations[0][:160]}")
        if first.killed_by:
            return Checked(False, f"timeout: the program ran over its {first.killed_by} limit" if first.killed_by == "time"
                           else f"memory: the program exceeded {self.limits.memory_mb} MB")
        if first.returncode != 0:
            tail = (first.stderr.strip().splitlines() or ["no output"])[-1]
            return Checked(False, f"program_error: {tail[:160]}")
        printed = first.stdout.rstrip()
        if not printed.strip():
            return Checked(False, "no_output: the program prints nothing to predict")
        if len(printed) > MAX_OUTPUT_CHARS:
            return Checked(False, f"output_too_long: {len(printed)} chars > {MAX_OUTPUT_CHARS}")
        if runs[1].stdout.rstrip() != printed:
            return Checked(False, "nondeterministic: two runs printed different output")
        set_fields(record, task.refill(record, output, {"output": printed}))
        return Checked(True, f"answer_by_execution: the sandbox ran the program; its {len(printed.splitlines())}-line output is the answer")

    def _prefer(self, task: Any, record: Record, candidates: list[dict[str, Any]]) -> Verdict:
        """Check each sample on its own copy; the pair is (first passing, first failing)."""
        from synthloop.tasks.spec import set_candidate

        results: list[tuple[bool, str, Record]] = []
        for cand in candidates:
            trial = copy.deepcopy(record)
            trial.meta.pop("candidates", None)
            trial.meta["output"] = cand["output"]
            set_candidate(trial, cand)
            ok, reason = self.check(task, trial)
            results.append((ok, reason, trial))
        chosen = next((r for r in results if r[0]), None)
        rejected = next((r for r in results if not r[0]), None)
        if chosen is None:
            return self._verdict(False, f"no_sample_passed: all {len(results)} samples failed; first: {results[0][1]}")
        _adopt(record, chosen[2])
        passed = sum(r[0] for r in results)
        if rejected is None:
            return self._verdict(True, f"{chosen[1]}; no_pair: all {len(results)} samples passed")
        record.meta["preference"] = {
            "prompt": _prompt(chosen[2]),
            "chosen": _assistant(chosen[2]), "rejected": _assistant(rejected[2]),
            "decided_by": f"verifier: chosen passed ({chosen[1][:80]}); rejected failed ({rejected[1][:120]})",
            "passed": passed, "samples": len(results),
        }
        return self._verdict(True, f"{chosen[1]}; pair: {passed} of {len(results)} samples passed")

    def _verdict(self, ok: bool, reason: str) -> Verdict:
        return Verdict(stage="verify", name=self.name, ok=ok, score=1.0 if ok else 0.0, reason=reason)


def _spec_task(record: Record) -> Any:
    from synthloop.tasks.base import TASKS
    from synthloop.tasks.spec import SpecTask

    cls = TASKS.get(record.task)
    return cls() if cls is not None and issubclass(cls, SpecTask) else None


def set_fields(record: Record, candidate: dict[str, Any]) -> None:
    from synthloop.tasks.spec import set_candidate

    set_candidate(record, candidate)


def _adopt(record: Record, trial: Record) -> None:
    from synthloop.tasks.spec import RECORD_FIELDS

    for f in (*RECORD_FIELDS, "messages"):
        setattr(record, f, getattr(trial, f))
    record.meta["output"] = trial.meta["output"]


def _last_user(r: Record) -> int:
    return max((i for i, m in enumerate(r.messages) if m["role"] == "user"), default=-1)


def _prompt(r: Record) -> list[dict[str, str]]:
    """The turns up to and including the last user turn (what both replies answer)."""
    return [dict(m) for m in r.messages[: _last_user(r) + 1]]


def _assistant(r: Record) -> list[dict[str, str]]:
    """The reply turns after the last user turn (what the pair disagrees on)."""
    return [dict(m) for m in r.messages[_last_user(r) + 1 :]]


def build(recipe: Any) -> TaskVerifier | None:
    """The verifier from the recipe (`[verify]` limits, `[seeds] min_support`); off with verify.code = false."""
    if not recipe.verify.code:
        return None
    support = recipe.seeds.min_support if recipe.seeds is not None else 0.6
    return TaskVerifier(recipe.verify.timeout_s, recipe.verify.memory_mb, support)


def register() -> None:
    from synthloop.verifiers.registry import register_verifier

    register_verifier("task", build, applies=lambda r: TaskVerifier().applies(r), first=True)


__all__ = ["TaskVerifier", "build", "register"]
