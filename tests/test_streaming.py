"""The local engine streams: several chunks' heads at once, the ordered tail and the commits in
chunk order. Requests in flight stay at the client's concurrency across chunk boundaries, the
accepted set does not depend on which request finished first, a kill loses only uncommitted
chunks, and parallel verification gives the serial verdicts."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from synthloop.engines.base import Chunk, ChunkResult
from synthloop.engines.local import LocalEngine
from synthloop.engines.stream import BudgetGate, chunks_in_flight
from synthloop.pipeline import RunContext, Stage
from synthloop.pipeline.stage import Filter, VerifierStage
from synthloop.recipe import load_recipe
from synthloop.records import Record
from synthloop.rounds import run
from synthloop.storage import RunDir, read_records
from synthloop.testing.openai_stub import Fault, OpenAIStub
from textbook_answers import answer_for

SRC = Path(__file__).parent.parent / "src"
RECIPE = """
name = "stream"
seed = 3
[plan]
topics = ["itertools", "pathlib", "f-strings", "collections.Counter", "dict.get", "re", "json", "argparse"]
personas = ["a beginner", "an expert"]
max_records = {n}
[teacher]
backend = "openai_compat"
base_url = "{url}"
model = "stub-model"
concurrency = {concurrency}
[judge]
enabled = false
[verify]
code = {verify}
[output]
shard_size = {shard}
[curate.near]
threshold = 0.97
"""


def write(tmp_path: Path, url: str, *, n: int = 16, concurrency: int = 8, shard: int = 4, verify: bool = False) -> Path:
    """The recipe; sandboxed verification off unless asked for (it is the slow part of a run here)."""
    path = tmp_path / "r.toml"
    path.write_text(RECIPE.format(url=url, n=n, concurrency=concurrency, shard=shard, verify=str(verify).lower()))
    return path


def accepted(runs: Path, name: str = "stream") -> list[str]:
    """Accepted content hashes in commit order (shard by shard), the order the tail saw them."""
    return [r.content_hash for r in read_records(RunDir(runs / name).accepted_dir)]


class Sampler:
    """Samples the stub's requests in flight every few ms while a run goes on."""

    def __init__(self, stub: OpenAIStub) -> None:
        self.stub, self.samples, self._stop = stub, list[int](), threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self.stub.in_flight)
            time.sleep(0.002)

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def busy(self) -> list[int]:
        """Samples from the first request in flight to the last (start-up and shut-down left out)."""
        idx = [i for i, s in enumerate(self.samples) if s]
        return self.samples[idx[0] : idx[-1] + 1] if idx else []


def in_flight_run(tmp_path: Path, engine: LocalEngine, name: str) -> tuple[int, list[int]]:
    (tmp_path / name).mkdir()
    with OpenAIStub(responder=answer_for, latency_s=0.05) as stub:
        recipe = load_recipe(write(tmp_path / name, stub.base_url, n=32, shard=2))
        with Sampler(stub) as sampler:
            run(recipe, runs_dir=tmp_path / name / "runs", engine=engine)
        return stub.peak_in_flight, sampler.busy()


def test_requests_in_flight_stay_at_the_concurrency_across_chunk_boundaries(tmp_path: Path) -> None:
    # 2 records a chunk (2 requests each), concurrency 8: a per-chunk barrier never has more than
    # 4 in flight, and none while a chunk is verified, deduplicated and committed.
    barrier_peak, barrier = in_flight_run(tmp_path, LocalEngine(chunks_in_flight=1), "barrier")
    peak, streaming = in_flight_run(tmp_path, LocalEngine(), "streaming")
    assert barrier_peak <= 4
    assert peak == 8
    full = sum(s == 8 for s in streaming) / len(streaming)
    assert full > 0.5, (full, streaming)  # most of the run at the full concurrency, not only at a peak
    assert sum(streaming) / len(streaming) > 1.5 * sum(barrier) / len(barrier)


def jitter(rng: random.Random) -> Callable[[dict[str, object]], Fault]:
    """A `fault_fn` delaying each answer by a random 0-80 ms: completions come in any order."""
    lock = threading.Lock()

    def slow(body: dict[str, object]) -> Fault:
        with lock:
            return Fault("slow", delay_s=rng.uniform(0.0, 0.08))

    return slow


def test_accepted_set_does_not_depend_on_completion_order(tmp_path: Path) -> None:
    """Random per-request latencies reorder completions; near-dedup (ordered) still sees the
    chunks in plan order, so the accepted records, and their order, are the same."""
    results = []
    for trial, width in ((0, None), (1, 1)):
        with OpenAIStub(responder=answer_for, fault_fn=jitter(random.Random(trial))) as stub:
            recipe = load_recipe(write(tmp_path, stub.base_url, n=24, shard=3))
            run(recipe, runs_dir=tmp_path / f"t{trial}", engine=LocalEngine(chunks_in_flight=width))
        results.append(accepted(tmp_path / f"t{trial}"))
    assert len(results[0]) >= 4
    assert results[0] == results[1]


# -- the engine alone, on stages that record what they see --------------------------------------

class Slow(Filter):
    """A head filter whose speed depends on the chunk: later chunks finish first."""

    name = "slow"

    def keep(self, record: Record) -> bool:
        time.sleep(0.02 * (3 - int(record.meta["chunk"])))
        return True


class Ordered(Stage):
    name = "ordered"
    ordered = True

    def __init__(self) -> None:
        self.seen: list[int] = []

    def run(self, records: Iterable[Record], ctx: RunContext) -> Iterator[Record]:
        for r in records:
            self.seen.append(int(r.meta["chunk"]))
            yield r


class Boom(Filter):
    name = "boom"

    def keep(self, record: Record) -> bool:
        if record.meta["chunk"] == 2:
            raise RuntimeError("chunk 2 fails")
        return True


def chunks(n: int = 4) -> list[Chunk]:
    return [Chunk(0, i, [Record(id=f"c{i}-{j}", meta={"chunk": i}) for j in range(2)]) for i in range(n)]


def test_tail_and_commit_run_in_chunk_order_while_heads_overlap() -> None:
    tail, committed = Ordered(), list[int]()
    engine = LocalEngine(chunks_in_flight=4)
    try:
        engine.run_chunks(chunks(), [Slow(), tail], lambda res: committed.append(res.chunk.index))
    finally:
        engine.close()
    assert committed == [0, 1, 2, 3]
    assert tail.seen == [0, 0, 1, 1, 2, 2, 3, 3]


def test_a_failing_chunk_stops_the_round_after_the_chunks_before_it() -> None:
    committed: list[ChunkResult] = []
    engine = LocalEngine(chunks_in_flight=4)
    try:
        with pytest.raises(RuntimeError, match="chunk 2 fails"):
            engine.run_chunks(chunks(), [Slow(), Boom()], committed.append)
    finally:
        engine.close()
    assert [c.chunk.index for c in committed] == [0, 1]
    assert all(len(c.accepted) == 2 and c.stats["slow"].seen == 2 for c in committed)


def test_window_fills_twice_the_client_concurrency() -> None:
    class Talks(Stage):
        def requests_in_flight(self) -> int:
            return 32

    assert chunks_in_flight([Talks()], chunks(100)) == 32  # 2 x 32 / 2 records a chunk
    assert chunks_in_flight([], chunks(100)) == 2
    assert chunks_in_flight([Talks()], chunks(3)) == 3


def test_budget_gate_runs_the_first_chunk_alone_then_what_the_budget_left_covers() -> None:
    from synthloop.backends import Budget

    budget = Budget(max_tokens=10_000)
    gate = BudgetGate(budget)
    assert gate.allows(0) and not gate.allows(1)
    done = chunks(1)[0]
    for r in done.records:
        r.usage.prompt_tokens, r.usage.completion_tokens = 500, 500
    gate.learn(ChunkResult(done, done.records, []))  # a chunk costs 2000 tokens
    budget.spent_tokens = 4_000
    assert gate.allows(2) and not gate.allows(3)  # 6000 left: 3 chunks, not 4
    assert BudgetGate(Budget()).allows(10)  # no cap: no gate


# -- verification -----------------------------------------------------------------------------

def code_records() -> list[Record]:
    good = ("def inc(x):\n    return x + 1\n", "def test_inc():\n    assert inc(1) == 2\n")
    bad = ("def inc(x):\n    return x\n", "def test_inc():\n    assert inc(1) == 2\n")
    hangs = ("def inc(x):\n    while True:\n        pass\n", "def test_inc():\n    assert inc(1) == 2\n")
    none = ("def inc(x):\n    return x + 1\n", "")
    kinds = [good, bad, hangs, none, good, bad]
    return [Record(id=f"v{i}", task="code", answer=a, tests=t) for i, (a, t) in enumerate(kinds)]


def test_parallel_verification_gives_the_serial_verdicts() -> None:
    from synthloop.verifiers import PythonCodeVerifier

    outcomes = []
    for workers in (1, 4):
        stage = VerifierStage(PythonCodeVerifier(timeout_s=0.5), stage="verify", workers=workers)
        ctx = RunContext()
        records = code_records()
        kept = [r.id for r in stage.run(records, ctx)]
        verdicts = [(r.id, [(v.ok, v.reason.split(":")[0]) for v in r.verdicts]) for r in records]
        outcomes.append((kept, verdicts, {k: (s.seen, s.kept, s.rejected, dict(s.reasons)) for k, s in ctx.stats.items()}))
    assert outcomes[0] == outcomes[1]
    kept, verdicts, _ = outcomes[0]
    assert kept == ["v0", "v4"]


# -- crash safety under streaming -------------------------------------------------------------

def run_cli(recipe: Path, runs: Path) -> subprocess.Popen[str]:
    """The CLI of *this* tree (not the editable install)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(Path(__file__).parent)])}
    return subprocess.Popen([sys.executable, "-m", "synthloop.cli", "run", str(recipe), "--runs-dir", str(runs), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.slow
def test_kill_9_during_a_streaming_run_then_resume_is_exact(tmp_path: Path) -> None:
    slow = Fault("slow", delay_s=0.1)
    with OpenAIStub(responder=answer_for, fault_fn=lambda body: slow) as stub:
        recipe = write(tmp_path, stub.base_url, n=32, concurrency=8, shard=2, verify=True)
        ref = run_cli(recipe, tmp_path / "ref")
        assert ref.wait(timeout=120) == 0, ref.stderr.read() if ref.stderr else ""
        reference_requests, reference = len(stub.requests), accepted(tmp_path / "ref")
        all_chunks = json.loads((tmp_path / "ref" / "stream" / "manifest.json").read_text())["rounds"][0]["completed_chunks"]
        assert len(all_chunks) >= 6
        stub.requests.clear()
        proc = run_cli(recipe, tmp_path / "runs")
        manifest = tmp_path / "runs" / "stream" / "manifest.json"
        deadline = time.time() + 60
        while time.time() < deadline and not (manifest.exists() and json.loads(manifest.read_text())["rounds"]
                                               and json.loads(manifest.read_text())["rounds"][0]["completed_chunks"]):
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        done = json.loads(manifest.read_text())["rounds"][0]["completed_chunks"]
        assert 1 <= len(done) < len(all_chunks) and done == list(range(len(done))), done  # committed in order, no gap
        first = len(stub.requests)
        resumed = run_cli(recipe, tmp_path / "runs")
        out, err = resumed.communicate(timeout=120)
        assert resumed.returncode == 0, err
        second = len(stub.requests) - first
    assert accepted(tmp_path / "runs") == reference
    # Finished-but-uncommitted chunks come back from the cache: only requests in flight at the
    # kill (at most the concurrency) are sent twice.
    assert first + second <= reference_requests + 8
    assert json.loads(manifest.read_text())["rounds"][0]["completed_chunks"] == all_chunks


def test_a_verify_stage_that_has_run_still_pickles() -> None:
    """Engines that ship stages to other processes (Ray) pickle them: the thread pool is not sent."""
    import pickle

    from synthloop.verifiers import PythonCodeVerifier

    stage = VerifierStage(PythonCodeVerifier(timeout_s=2.0), workers=2)
    assert [r.id for r in stage.run(code_records()[:1], RunContext())] == ["v0"]
    copy = pickle.loads(pickle.dumps(stage))
    assert [r.id for r in copy.run(code_records()[:2], RunContext())] == ["v0"]
