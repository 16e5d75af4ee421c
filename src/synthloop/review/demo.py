"""A small, real run to review (fake backend, seconds): two rounds, a golden mix, a collapse check,
a judge whose scores vary, a pretend student evaluation per round, and one topic whose name is
hostile HTML, so the app and the report are seen escaping it. Tests, screenshots and docs use it:

    python -m synthloop.review.demo /tmp/demo    # then: synthloop review /tmp/demo/runs/review-demo
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import xxhash

from synthloop.backends.base import Request
from synthloop.backends.fake import FakeBackend, canned_responders
from synthloop.recipe import recipe_from_dict
from synthloop.rounds import Run, RunResult, run
from synthloop.storage import RoundState
from synthloop.verifiers.judge import calibration_label, fake_judgement

HOSTILE_TOPIC = "<script>alert('x')</script><b>bold</b> & <img src=x onerror=alert(1)>"


def varied_judgement(request: Request) -> str:
    """Scores 1-5 spread deterministically over the records (the canned judge always says 4); the
    items of the built-in calibration sets get the canned judge's answers, so the judge may gate."""
    if calibration_label(request) is not None:
        return fake_judgement(request)
    score = 1 + xxhash.xxh3_64_intdigest(request.messages[-1][1].encode()) % 5
    return f"Score: {score}\nReason: Deterministic demo score {score}."


def student_hook(r: Run, state: RoundState) -> None:
    """A pretend student evaluation: per-skill accuracy that climbs round by round."""
    skills = r.recipe.plan.skills
    state.extra["student"] = {"per_skill": {s: round(min(0.95, 0.35 + 0.12 * state.round + 0.07 * i), 3)
                                             for i, s in enumerate(skills)}}


def demo_recipe(root: Path, name: str = "review-demo") -> dict[str, Any]:
    return {
        "name": name, "seed": 7,
        "plan": {"topics": ["itertools", "pathlib", HOSTILE_TOPIC], "skills": ["explain", "debug"],
                 "personas": ["a beginner", "a data analyst"], "tasks": ["textbook", "instruction"], "max_records": 24},
        "teacher": {"backend": "fake", "model": "fake-teacher"},
        "judge": {"enabled": True, "min_score": 3},
        "rounds": {"count": 2},
        "grounding": {"golden": "python-docs"},
        "collapse": {"embedder": "hash", "indicators": ["distinct_2_ratio", "vendi_ratio", "tail_coverage_ratio"], "stop_on_fail": False},
        "curate": {"near_dedup": False},
        "output": {"shard_size": 8, "runs_dir": str(root / "runs")},
    }


def make_demo_run(root: Path, name: str = "review-demo") -> RunResult:
    backend = FakeBackend(responders={**canned_responders(), "judge:": varied_judgement}, model="fake-teacher")
    return run(recipe_from_dict(demo_recipe(Path(root), name)), backend=backend, hooks=[("student", student_hook)])


if __name__ == "__main__":
    result = make_demo_run(Path(sys.argv[1] if len(sys.argv) > 1 else "."))
    print(f"{result.run_dir}: {result.accepted} accepted, {result.rejected} rejected")
