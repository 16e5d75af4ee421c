"""`kill -9` in the middle of a student's training, then the same command again: the finished round
is neither retrained nor re-examined, the killed round is retrained from its start, and the run
ends where an uninterrupted one does (same losses, same per-skill results)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

RECIPE = """
name = "kill"
seed = 1
[plan]
topics = ["sums"]
skills = ["add", "mul"]
tasks = ["instruction"]
per_cell = 2
[teacher]
backend = "fake"
[curate]
near_dedup = false
[rounds]
count = 2
[output]
runs_dir = "{runs}"
[student]
base_model = "{model}"
epochs = 80
batch_size = 2
max_seq_len = 128
device = "cpu"
[student.eval]
sets = ["arithmetic"]
items_per_skill = 3
max_new_tokens = 8
[student.steer]
floor_examples = 1
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from synthloop.student.tiny import tiny_model

    return tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def start(tmp_path: Path, tiny: Path, runs: str) -> tuple[subprocess.Popen[str], Path]:
    recipe = tmp_path / f"{runs}.toml"
    recipe.write_text(RECIPE.format(runs=tmp_path / runs, model=tiny))
    proc = subprocess.Popen([sys.executable, "-m", "synthloop.cli", "run", str(recipe), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, tmp_path / runs / "kill"


def wait_until_training(run_dir: Path, rnd: int, timeout_s: float = 120) -> None:
    """Round `rnd`'s student directory exists (training started) and has no COMPLETE marker yet."""
    student = run_dir / "student" / f"round-{rnd:03d}"
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if student.is_dir() and not (student / "COMPLETE").exists():
            return
        time.sleep(0.02)
    raise AssertionError(f"round {rnd} did not start training within {timeout_s} s")


def results(run_dir: Path) -> tuple[list[list[float]], list[dict[str, float]]]:
    losses = [json.loads((run_dir / "student" / f"round-{r:03d}" / "train.json").read_text())["losses"] for r in (0, 1)]
    rounds = json.loads((run_dir / "manifest.json").read_text())["rounds"]
    return losses, [r["extra"]["student"]["per_skill"] for r in rounds]


@pytest.mark.slow  # ~30 s quiet: three runs of a student trained long enough to be killed mid-way
def test_kill_9_mid_training_then_resume(tmp_path: Path, tiny: Path) -> None:
    ref, ref_dir = start(tmp_path, tiny, "ref")
    assert ref.wait(timeout=300) == 0, ref.stderr.read() if ref.stderr else ""

    proc, run_dir = start(tmp_path, tiny, "runs")
    wait_until_training(run_dir, 1)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    round0 = run_dir / "student" / "round-000"
    assert (round0 / "COMPLETE").is_file() and (round0 / "eval.json").is_file()
    assert not (run_dir / "student" / "round-001" / "COMPLETE").exists(), "the kill came after training"
    finished = {p: p.stat().st_mtime_ns for p in (round0 / "COMPLETE", round0 / "eval.json", round0 / "train.json")}

    again, _ = start(tmp_path, tiny, "runs")
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert {p: p.stat().st_mtime_ns for p in finished} == finished  # round 0: not retrained, not re-examined
    assert (run_dir / "student" / "round-001" / "COMPLETE").is_file()
    assert json.loads((run_dir / "manifest.json").read_text())["finished"] is True
    assert results(run_dir) == results(ref_dir)
