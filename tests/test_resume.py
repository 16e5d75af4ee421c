"""Crash safety: `kill -9` in the middle of a run, then the same command again, finishes with the
same accepted set as an uninterrupted run, and re-sends no answered request."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from synthloop.storage import RunDir, read_records
from synthloop.testing.openai_stub import Fault, OpenAIStub
from textbook_answers import answer_for

RECIPE = """
name = "resume"
seed = 3
[plan]
topics = ["itertools", "pathlib", "f-strings", "collections.Counter", "dict.get", "re"]
personas = ["a beginner", "an expert"]
max_records = 12
[teacher]
backend = "openai_compat"
base_url = "{url}"
model = "stub-model"
concurrency = 4
[output]
shard_size = 3
# The fake teacher's answers are one template with the topic and a variant number swapped, about
# 10% of their words apart: near-duplicates to the default near dedup (word similarity 0.82).
[curate.near]
threshold = 0.97
"""


def run_cli(recipe: Path, runs: Path) -> subprocess.Popen[str]:
    # this checkout's src first: the CLI under test, not whichever tree is installed editable
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent.parent / "src"), str(Path(__file__).parent)])}
    return subprocess.Popen(
        [sys.executable, "-m", "synthloop.cli", "run", str(recipe), "--runs-dir", str(runs), "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        # A test suite started in the background by a non-interactive shell inherits SIGINT ignored
        # (POSIX), and so would the CLI: give it the default, as a terminal would.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for_a_committed_chunk(manifest: Path, timeout_s: float = 60, round: int = 0) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if manifest.exists():
            rounds = json.loads(manifest.read_text()).get("rounds", [])
            if any(r["round"] == round and r["completed_chunks"] for r in rounds):
                return
        time.sleep(0.05)
    raise AssertionError(f"no chunk of round {round} was committed within {timeout_s} s")


@contextmanager
def slow_stub_recipe(tmp_path: Path, extra: str = "", delay_s: float = 0.15) -> Iterator[tuple[OpenAIStub, Path]]:
    """A stub that answers every request after `delay_s`, and the recipe pointed at it."""
    slow = Fault("slow", delay_s=delay_s)
    with OpenAIStub(responder=answer_for, fault_fn=lambda body: slow) as stub:
        recipe = tmp_path / "r.toml"
        recipe.write_text(RECIPE.format(url=stub.base_url) + extra)
        yield stub, recipe


def accepted(runs: Path) -> list[str]:
    return sorted(r.content_hash for r in read_records(RunDir(runs / "resume").accepted_dir))


def accepted_by_round(runs: Path) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for r in RunDir(runs / "resume").records("accepted"):
        out.setdefault(r.round, []).append(r.content_hash)
    return {k: sorted(v) for k, v in out.items()}


def test_kill_9_mid_run_then_resume(tmp_path: Path) -> None:
    with slow_stub_recipe(tmp_path) as (stub, recipe):
        ref = run_cli(recipe, tmp_path / "ref")
        assert ref.wait(timeout=120) == 0, ref.stderr.read() if ref.stderr else ""
        reference_requests = len(stub.requests)
        reference = accepted(tmp_path / "ref")
        assert len(reference) >= 4  # the canned answers are similar: near-dedup removes some

        stub.requests.clear()
        proc = run_cli(recipe, tmp_path / "runs")
        manifest = tmp_path / "runs" / "resume" / "manifest.json"
        wait_for_a_committed_chunk(manifest)
        time.sleep(0.2)  # land somewhere inside the next chunk
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        done = json.loads(manifest.read_text())["rounds"][0]["completed_chunks"]
        assert 1 <= len(done) < 4, done
        first_session = len(stub.requests)

        resumed = run_cli(recipe, tmp_path / "runs")
        out, err = resumed.communicate(timeout=120)
        assert resumed.returncode == 0, err
        second_session = len(stub.requests) - first_session

    assert accepted(tmp_path / "runs") == reference
    assert "reused from the cache" in out
    # Only requests in flight at the kill (at most `concurrency`) may be sent twice.
    assert first_session + second_session <= reference_requests + 4
    assert second_session < reference_requests
    manifest_data = json.loads(manifest.read_text())
    assert manifest_data["finished"] is True and manifest_data["rounds"][0]["completed_chunks"] == [0, 1, 2, 3]


def test_ctrl_c_stops_cleanly_and_keeps_committed_chunks(tmp_path: Path) -> None:
    # 48 records (16 chunks): the streaming engine has several chunks in flight at once and their
    # requests interleave, so with 4 chunks they all commit at the very end, and the run could
    # finish between the first commit and the signal.
    with slow_stub_recipe(tmp_path, "[rounds]\nrecords_per_round = 48\n", delay_s=0.3) as (_, recipe):
        proc = run_cli(recipe, tmp_path / "runs")
        manifest = tmp_path / "runs" / "resume" / "manifest.json"
        wait_for_a_committed_chunk(manifest)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted; everything finished so far is saved" in err
    assert "Traceback" not in err
    data = json.loads(manifest.read_text())
    assert data["finished"] is False and data["stopped_reason"] == "interrupted"
    assert len(data["rounds"][0]["completed_chunks"]) >= 1
    card = (tmp_path / "runs" / "resume" / "README.md").read_text()
    assert "not finished (interrupted)" in card


def test_kill_9_in_round_2_of_3_then_resume(tmp_path: Path) -> None:
    with slow_stub_recipe(tmp_path, "[rounds]\ncount = 3\n") as (stub, recipe):
        ref = run_cli(recipe, tmp_path / "ref")
        assert ref.wait(timeout=180) == 0, ref.stderr.read() if ref.stderr else ""
        reference_requests = len(stub.requests)
        reference = accepted_by_round(tmp_path / "ref")
        assert set(reference) == {0, 1, 2}

        stub.requests.clear()
        proc = run_cli(recipe, tmp_path / "runs")
        manifest = tmp_path / "runs" / "resume" / "manifest.json"
        wait_for_a_committed_chunk(manifest, round=2, timeout_s=120)
        time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        state = json.loads(manifest.read_text())
        assert [r["finished"] for r in state["rounds"]] == [True, True, False]
        first_session = len(stub.requests)

        resumed = run_cli(recipe, tmp_path / "runs")
        out, err = resumed.communicate(timeout=120)
        assert resumed.returncode == 0, err
        second_session = len(stub.requests) - first_session

    assert accepted_by_round(tmp_path / "runs") == reference
    assert first_session + second_session <= reference_requests + 4
    assert second_session < reference_requests / 3  # rounds 0 and 1 were not touched
    final = json.loads(manifest.read_text())
    assert final["finished"] is True and [r["completed_chunks"] for r in final["rounds"]] == [[0, 1, 2, 3]] * 3
