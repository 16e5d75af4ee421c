"""The Ray engine: the same accepted set as the local engine, spend totalled across workers, a cap
that holds across workers, and resume after a worker or the driver is killed.

Ray listens on every interface even when told 127.0.0.1, so the tests that start it run inside a
loopback-only network namespace: `test_ray_in_a_loopback_namespace` re-runs this file under
`unshare -rn` (an unprivileged user + network namespace: nothing but `lo` exists there), and the
Ray tests run only in that inner run. The other tests here need no Ray.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synthloop.backends.base import Response
from synthloop.backends.cache import Entry, RequestCache
from synthloop.engines import make_engine
from synthloop.engines.ray import Ledger, worker_recipe
from synthloop.errors import RecipeError
from synthloop.recipe import Recipe, recipe_from_dict
from synthloop.rounds import Run
from synthloop.storage import RunDir, read_records, recipe_hash

IN_NETNS = os.environ.get("SYNTHLOOP_RAY_NETNS") == "1"
ROOT = Path(__file__).parent.parent
needs_netns = pytest.mark.skipif(not IN_NETNS, reason="runs inside the loopback-only namespace that "
                                 "test_ray_in_a_loopback_namespace starts (pytest -m slow runs it)")

FAKE = {
    "name": "ray-fake",
    "seed": 11,
    "plan": {"topics": ["itertools", "pathlib", "f-strings", "re", "dict.get", "sorted"], "personas": ["a beginner", "an expert"],
             "difficulties": ["easy", "hard"], "max_records": 24},
    "teacher": {"backend": "fake", "model": "fake-teacher"},
    "output": {"shard_size": 3},
}


def fake_recipe(tmp_path: Path, **sections: dict[str, Any]) -> Recipe:
    data = json.loads(json.dumps(FAKE))
    data["output"]["runs_dir"] = str(tmp_path)
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    return recipe_from_dict(data)


# -- no Ray needed ------------------------------------------------------------------------------

def test_engine_section_is_validated(tmp_path: Path) -> None:
    assert fake_recipe(tmp_path).engine.name == "local"
    with pytest.raises(RecipeError, match="'engine.name'"):
        fake_recipe(tmp_path, engine={"name": "spark"})
    with pytest.raises(RecipeError, match="engine.address is read only by the ray engine"):
        fake_recipe(tmp_path, engine={"address": "auto"})
    with pytest.raises(RecipeError, match="Ray Client"):
        fake_recipe(tmp_path, engine={"name": "ray", "address": "ray://head:10001"})
    with pytest.raises(RecipeError, match="needs the run"):
        make_engine("ray")


def test_the_engine_is_not_part_of_the_recipes_identity(tmp_path: Path) -> None:
    """Switching engines resumes the same run (the engine decides where, never what)."""
    local = fake_recipe(tmp_path)
    ray = fake_recipe(tmp_path, engine={"name": "ray", "workers": 4, "address": "auto"})
    assert recipe_hash(local) == recipe_hash(ray)


def test_each_worker_gets_its_share_of_the_rate_limits(tmp_path: Path) -> None:
    r = fake_recipe(tmp_path, teacher={"requests_per_minute": 600, "tokens_per_minute": 90000, "concurrency": 8})
    w = worker_recipe(r, 3)
    assert (w.teacher.requests_per_minute, w.teacher.tokens_per_minute, w.teacher.concurrency) == (200, 30000, 8)
    assert r.teacher.requests_per_minute == 600  # the driver's copy is untouched


def test_the_ledger_holds_one_cap_for_every_worker(tmp_path: Path) -> None:
    """Reservations from all workers count against one cap; a restarted worker's are dropped;
    stored answers count as spent once durable."""
    path = tmp_path / "cache.sqlite"
    with RequestCache(path) as cache:
        cache.put_many([Entry("old", Response("x", 10, 20, "stop"), None)])  # an earlier session: 30 tokens
    ledger = Ledger(str(path), None, 100)
    assert ledger.totals() == (30, 0.0)
    a, why = ledger.reserve(0, 40, 0.0)
    assert a > 0 and why == ""
    b, why = ledger.reserve(1, 30, 0.0)  # 30 + 40 + 30 = 100: fits exactly
    assert b > 0
    refused, why = ledger.reserve(1, 1, 0.0)
    assert refused == -1 and "budget.max_tokens = 100" in why
    ledger.worker_started(0)  # worker 0 died and came back: its 40 are free again
    c, _ = ledger.reserve(1, 40, 0.0)
    assert c > 0
    ledger.release(1, b)
    ledger.put_many([Entry("new", Response("y", 5, 15, "stop"), None)])
    assert ledger.totals() == (50, 0.0) and ledger.spent().tokens == 50
    ledger.close()


def test_dry_run_rehearses_a_ray_recipe_on_the_local_engine(tmp_path: Path) -> None:
    """The rehearsal must call no model: Ray workers would build the recipe's real backends."""
    from synthloop.engines.dryrun import dry_run

    r = fake_recipe(tmp_path, engine={"name": "ray", "address": "127.0.0.1:9"})
    assert "rehearsal on the fake backend" in dry_run(r)


# -- the namespace run --------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.timeout(900)
def test_ray_in_a_loopback_namespace() -> None:
    """Runs the Ray tests below in a network namespace where only loopback exists, so a Ray that
    listens on every interface is reachable from nowhere else."""
    if IN_NETNS:
        pytest.skip("this is the namespace run")
    unshare, ip = shutil.which("unshare"), shutil.which("ip") or "/usr/sbin/ip"
    probe = subprocess.run([unshare or "unshare", "-rn", "true"], capture_output=True, text=True) if unshare else None
    if probe is None or probe.returncode != 0:
        pytest.fail("the Ray tests need an unprivileged network namespace (`unshare -rn true` failed: "
                    f"{probe.stderr.strip() if probe else 'no unshare'}); enable user namespaces "
                    "(sysctl kernel.unprivileged_userns_clone=1) or run them on a machine that has them")
    ray_tmp = tempfile.mkdtemp(prefix="slray-", dir="/tmp")  # short: Ray's socket paths have a length limit
    env = {**os.environ, "SYNTHLOOP_RAY_NETNS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")]),
           "RAY_USAGE_STATS_ENABLED": "0", "RAY_TMPDIR": ray_tmp}
    inner = f"{ip} link set lo up && exec {sys.executable} -m pytest {__file__} -m slow -k 'not loopback_namespace' -q -p no:cacheprovider -x --durations=6"
    try:
        proc = subprocess.run([unshare or "unshare", "-rn", "sh", "-c", inner], capture_output=True, text=True, env=env,
                              cwd=ROOT, timeout=870)
    finally:
        stop_leftovers(ray_tmp)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    print(proc.stdout[-4000:])
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert "4 passed" in last and "skipped" not in last, last


def stop_leftovers(ray_tmp: str) -> None:
    """Ray's agents outlive a driver killed with -9 (the driver test does that): stop the processes
    of the clusters this test started, found by their temp dir, by pid."""
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and ray_tmp in (proc / "cmdline").read_bytes().decode(errors="replace"):
                os.kill(int(proc.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    """One local cluster for the in-process tests (a run joins a running one and leaves it up)."""
    import ray

    ray.init(address="local", num_cpus=2, object_store_memory=96 * 1024 * 1024, include_dashboard=False, _node_ip_address="127.0.0.1",
             configure_logging=False)
    yield ray
    ray.shutdown()


def accepted_hashes(run_dir: Path) -> list[str]:
    return [r.content_hash for r in read_records(RunDir(run_dir).accepted_dir)]


def rejected_hashes(run_dir: Path) -> set[str]:
    return {r.content_hash for r in read_records(RunDir(run_dir).rejected_dir)}


def manifest(run_dir: Path) -> dict[str, Any]:
    return dict(json.loads((run_dir / "manifest.json").read_text()))


@pytest.fixture(scope="module")
def fake_reference(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The fake-teacher recipe on the local engine: what Ray must reproduce."""
    with Run(fake_recipe(tmp_path_factory.mktemp("local"))) as run:
        return run.execute()


@pytest.mark.slow
@needs_netns
def test_ray_gives_the_local_accepted_set_with_spend_totalled(tmp_path: Path, ray_cluster: Any, fake_reference: Any) -> None:
    ref = fake_reference
    on_ray = fake_recipe(tmp_path / "ray", engine={"name": "ray", "workers": 2})
    with Run(on_ray) as run:
        got = run.execute()
        by_worker = dict(run.engine.chunks_by_worker)  # type: ignore[attr-defined]
    assert got.finished and (got.planned, got.accepted, got.rejected) == (ref.planned, ref.accepted, ref.rejected)
    assert 0 < ref.accepted < ref.planned  # near dedup (the ordered tail) removed some: order matters
    assert accepted_hashes(got.run_dir) == accepted_hashes(ref.run_dir)
    assert rejected_hashes(got.run_dir) == rejected_hashes(ref.run_dir)
    assert len(by_worker) == 2 and sum(by_worker.values()) == 8  # both workers ran chunks
    m_ref, m_ray = manifest(ref.run_dir), manifest(got.run_dir)
    with RequestCache(RunDir(got.run_dir).cache_path) as cache:
        ledger = cache.spent()
    assert ledger.tokens > 0 and m_ray["spent"]["tokens"] == ledger.tokens == m_ref["spent"]["tokens"]
    assert m_ray["requests"]["sent"] == m_ref["requests"]["sent"] > 0


@pytest.mark.slow
@needs_netns
def test_a_token_cap_holds_across_workers_then_resumes(tmp_path: Path, ray_cluster: Any, fake_reference: Any) -> None:
    full = fake_reference
    total = manifest(full.run_dir)["spent"]["tokens"]
    cap = total // 2
    capped = fake_recipe(tmp_path / "ray", engine={"name": "ray", "workers": 2}, budget={"max_tokens": cap})
    with Run(capped) as run:
        stopped = run.execute()
    assert not stopped.finished and "budget reached" in stopped.stopped_reason
    with RequestCache(RunDir(stopped.run_dir).cache_path) as cache:
        assert 0 < cache.spent().tokens <= cap
    assert manifest(stopped.run_dir)["spent"]["tokens"] <= cap
    more = fake_recipe(tmp_path / "ray", engine={"name": "ray", "workers": 2}, budget={"max_tokens": total * 2})
    with Run(more) as run:
        resumed = run.execute()
    assert resumed.finished and accepted_hashes(resumed.run_dir) == accepted_hashes(full.run_dir)
    with RequestCache(RunDir(resumed.run_dir).cache_path) as cache:
        assert cache.spent().tokens == total  # nothing paid twice across the stop and the resume


# -- kills: a slow stub teacher, so a kill lands inside a chunk ---------------------------------

STUB_RECIPE = """
name = "ray-kill"
seed = 3
[plan]
topics = ["itertools", "pathlib", "f-strings", "collections.Counter", "dict.get", "re"]
personas = ["a beginner", "an expert"]
difficulties = ["easy", "hard"]
max_records = 24
[teacher]
backend = "openai_compat"
base_url = "{url}"
model = "stub-model"
concurrency = 4
[output]
shard_size = 3
[curate.near]
threshold = 0.97
"""
RAY = '\n[engine]\nname = "ray"\nworkers = 2\n'


@pytest.fixture(scope="module")
def slow_stub() -> Iterator[Any]:
    from synthloop.testing.openai_stub import Fault, OpenAIStub
    from textbook_answers import answer_for

    slow = Fault("slow", delay_s=0.15)
    with OpenAIStub(responder=answer_for, fault_fn=lambda body: slow) as stub:
        yield stub


@pytest.fixture(scope="module")
def stub_reference(slow_stub: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], int]:
    """The stub recipe on the local engine: its accepted set and how many requests it sent."""
    from synthloop.recipe import load_recipe

    tmp = tmp_path_factory.mktemp("stub-local")
    slow_stub.requests.clear()
    with Run(load_recipe(stub_recipe(tmp, slow_stub.base_url)), runs_dir=tmp / "runs") as run:
        ref = run.execute()
    sent = len(slow_stub.requests)
    slow_stub.requests.clear()
    return accepted_hashes(ref.run_dir), sent


def stub_recipe(tmp_path: Path, url: str, engine: str = "") -> Path:
    path = tmp_path / f"r{len(list(tmp_path.glob('r*.toml')))}.toml"
    path.write_text(STUB_RECIPE.format(url=url) + engine)
    return path


def cli_run(recipe: Path, runs: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")])}
    return subprocess.Popen([sys.executable, "-m", "synthloop.cli", "run", str(recipe), "--runs-dir", str(runs), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.slow
@needs_netns
def test_a_worker_killed_mid_run_is_restarted_and_the_run_completes(tmp_path: Path, ray_cluster: Any, slow_stub: Any,
                                                                    stub_reference: tuple[list[str], int]) -> None:
    from synthloop.recipe import load_recipe

    reference, reference_requests = stub_reference
    slow_stub.requests.clear()
    killed: list[int] = []
    on_ray = load_recipe(stub_recipe(tmp_path, slow_stub.base_url, RAY))
    with Run(on_ray, runs_dir=tmp_path / "ray") as run:
        engine: Any = run.engine

        def kill_one(accepted: int, rejected: int, planned: int) -> None:
            """After the first commit: the worker that ran it is inside its next chunk."""
            if not killed:
                killed.append(next(iter(engine.chunks_by_worker)))
                os.kill(killed[0], signal.SIGKILL)

        run.progress = kill_one
        got = run.execute()
        after = engine.worker_pids()
        peaks = ray_cluster.get([w.peak_chunks.remote() for w in engine.workers])
    assert killed and got.finished
    # each worker streams: its chunks run at once (3 here: 3 records a chunk x 3 >= 2 x concurrency 4)
    assert max(peaks) == 3 and min(peaks) >= 1, peaks
    assert killed[0] not in after and len(set(after)) == 2  # Ray restarted the killed worker
    assert accepted_hashes(got.run_dir) == reference
    # only the killed worker's requests in flight (at most its concurrency) are asked twice
    assert reference_requests <= len(slow_stub.requests) <= reference_requests + 4


@pytest.mark.slow
@needs_netns
def test_the_driver_killed_then_resumed_gives_the_local_accepted_set(tmp_path: Path, slow_stub: Any,
                                                                     stub_reference: tuple[list[str], int]) -> None:
    """kill -9 of `synthloop run` (and with it the local cluster it started), then the same command."""
    reference, reference_requests = stub_reference
    slow_stub.requests.clear()
    recipe = stub_recipe(tmp_path, slow_stub.base_url, RAY)
    proc = cli_run(recipe, tmp_path / "runs")
    path = tmp_path / "runs" / "ray-kill" / "manifest.json"
    deadline = time.time() + 120
    while time.time() < deadline and not (path.exists() and any(r["completed_chunks"] for r in json.loads(path.read_text())["rounds"])):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    done = json.loads(path.read_text())["rounds"][0]["completed_chunks"]
    assert 1 <= len(done) < 8, done
    first = len(slow_stub.requests)

    resumed = cli_run(recipe, tmp_path / "runs")
    out, err = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, err[-3000:]
    assert "reused from the cache" in out
    assert accepted_hashes(tmp_path / "runs" / "ray-kill") == reference
    final = json.loads(path.read_text())
    assert final["finished"] is True and final["rounds"][0]["completed_chunks"] == list(range(8))
    # answered requests are not asked again; only those in flight at the kill (2 workers x 4)
    assert len(slow_stub.requests) <= reference_requests + 8 and len(slow_stub.requests) - first < reference_requests
