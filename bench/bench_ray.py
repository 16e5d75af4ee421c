"""The Ray engine against the local engine, measured in the same run: wall, records per second,
the speed-up from 1 to 2 workers, and what bounds scaling beyond that on paper.

One recipe, one seed, three arms: the local engine, Ray with 1 worker, Ray with 2 workers (one
local Ray cluster with `--cpus` CPUs, started once; each worker reserves 1 CPU). The teacher and the
judge are an OpenAI-compatible stub on 127.0.0.1 (`--slots` requests at once, each held
`--latency-ms`), answering well-formed textbook lessons, exercises (their code runs in the
verifier's sandbox) and judgements. Every arm must give the same accepted set, or the bench fails.

Ray listens on every interface, so the bench re-runs itself in a loopback-only network namespace
(`unshare -rn`), as the tests do.

Also measured, for the paper scaling: the driver's time per chunk (the ordered tail, dedup, plus
the commit: shards, stats, manifest), which every chunk of every worker passes through, one at a
time; and the head's time per chunk on a worker. N workers keep up while N x (driver time per
chunk) < (worker time per chunk), and the teacher server keeps up while N x concurrency <= its slots.

Run:  python bench/bench_ray.py [--records 48] [--latency-ms 100] [--slots 64] [--cpus 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # textbook_answers: the stub's well-formed answers

RECIPE = """
name = "bench-ray"
seed = 7
[plan]
topics = ["itertools", "pathlib", "f-strings", "collections.Counter", "dict.get", "re", "sorted", "zip",
          "enumerate", "functools.partial", "dataclasses", "typing.Optional"]
personas = ["a beginner", "an expert"]
difficulties = ["easy", "hard"]
max_records = {records}
[teacher]
backend = "openai_compat"
base_url = "{url}"
model = "stub-model"
concurrency = {concurrency}
[output]
shard_size = {shard}
[curate.near]
threshold = 0.97
"""


@dataclass
class Arm:
    name: str
    wall_s: float
    accepted: list[str]
    planned: int
    driver_s_per_chunk: float = 0.0
    chunks_by_worker: dict[int, int] = field(default_factory=dict)
    start_s: float = 0.0


def run_arm(name: str, recipe_path: Path, runs: Path, engine: str, workers: int, concurrency: int | None = None) -> Arm:
    """One run from an empty run directory, timed from its first chunk (the judge's calibration and
    the workers' start are timed apart); the driver's per-chunk tail + commit time is timed too."""
    from synthloop.recipe import load_recipe
    from synthloop.rounds import Run
    from synthloop.storage import RunDir, read_records

    overrides: dict[str, Any] = {"engine.name": engine} | ({"engine.workers": workers} if engine == "ray" else {})
    if concurrency:
        overrides["teacher.concurrency"] = concurrency
    recipe = load_recipe(recipe_path, overrides)
    with Run(recipe, runs_dir=runs) as run:
        start_s = 0.0
        run.stages()  # the driver calibrates the judge first, as a run does (the workers then read the cache)
        if engine == "ray":  # the workers' start (imports, their stages) apart
            t0 = time.perf_counter()
            run.engine.start()  # type: ignore[attr-defined]
            run.engine.worker_pids()  # type: ignore[attr-defined]  # waits until every worker is up
            start_s = time.perf_counter() - t0
        driver = time_the_driver(run)
        t0 = time.perf_counter()
        result = run.execute()
        wall = time.perf_counter() - t0
        by_worker = dict(getattr(run.engine, "chunks_by_worker", {}))
    assert result.finished, result.stopped_reason
    accepted = [r.content_hash for r in read_records(RunDir(result.run_dir).accepted_dir)]
    return Arm(name, wall, accepted, result.planned, sum(driver) / max(1, len(driver)), by_worker, start_s)


def time_the_driver(run: Any) -> list[float]:
    """Seconds the driver spends per chunk in the ordered tail and the commit (wraps `_commit` and
    the tail's stats: dedup's `seconds`)."""
    spent: list[float] = []
    commit = run._commit

    def timed(state: Any, res: Any) -> None:
        t0 = time.perf_counter()
        commit(state, res)
        tail = sum(st.seconds for name, st in res.stats.items() if name.startswith("dedup"))
        spent.append(time.perf_counter() - t0 + tail)

    run._commit = timed
    return spent


def bench(args: argparse.Namespace) -> dict[str, Any]:
    import ray

    from synthloop.testing.openai_stub import OpenAIStub
    from textbook_answers import answer_for

    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    ray.init(address="local", num_cpus=args.cpus, object_store_memory=96 * 1024 * 1024, include_dashboard=False,
             _node_ip_address="127.0.0.1", configure_logging=False, log_to_driver=False)
    try:
        with OpenAIStub(responder=answer_for, slots=args.slots, latency_s=args.latency_ms / 1000) as stub:
            recipe = tmp / "recipe.toml"
            recipe.write_text(RECIPE.format(records=args.records, url=stub.base_url, concurrency=args.concurrency, shard=args.shard))
            ledger_ms = ledger_round_trip_ms(tmp / "ledger.sqlite")
            arms = [run_arm("local", recipe, tmp / "local", "local", 1),
                    run_arm("ray x1", recipe, tmp / "ray1", "ray", 1),
                    run_arm("ray x2", recipe, tmp / "ray2", "ray", 2),
                    # the same requests in flight as 2 workers, on the local engine: what Ray adds beyond concurrency
                    run_arm("local c2", recipe, tmp / "local2", "local", 1, concurrency=2 * args.concurrency)]
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    return report(args, arms, ledger_ms)


def ledger_round_trip_ms(path: Path, n: int = 300) -> dict[str, float]:
    """Milliseconds per call to the ledger actor, as a worker makes them: a reservation, and a
    write of one answer (committed before it returns)."""
    import ray

    from synthloop.backends.base import Response
    from synthloop.backends.cache import Entry
    from synthloop.engines.ray import Ledger

    ledger = ray.remote(Ledger).options(num_cpus=0).remote(str(path), None, 10**12)
    ray.get(ledger.totals.remote())
    t0 = time.perf_counter()
    for _ in range(n):
        ray.get(ledger.reserve.remote(0, 10, 0.0))
    reserve = (time.perf_counter() - t0) / n * 1000
    t0 = time.perf_counter()
    for i in range(n):
        ray.get(ledger.put_many.remote([Entry(f"k{i}", Response("x", 1, 1, "stop"))]))
    put = (time.perf_counter() - t0) / n * 1000
    ray.kill(ledger)
    return {"reserve_ms": round(reserve, 2), "put_one_ms": round(put, 2)}


def report(args: argparse.Namespace, arms: list[Arm], ledger_ms: dict[str, float]) -> dict[str, Any]:
    local = arms[0]
    same = all(a.accepted == local.accepted for a in arms)
    chunks = -(-local.planned // args.shard)
    print(f"{local.planned} records in {chunks} chunks of {args.shard}; stub: {args.slots} slots x {args.latency_ms} ms; "
          f"concurrency {args.concurrency} per worker; {args.cpus} CPUs; same accepted set in every arm: {same}")
    print(f"{'arm':8} {'wall s':>7} {'rec/s':>6} {'vs local':>8} {'worker start s':>14} {'driver ms/chunk':>15}  chunks by worker")
    for a in arms:
        print(f"{a.name:8} {a.wall_s:7.2f} {a.planned / a.wall_s:6.2f} {local.wall_s / a.wall_s:8.2f} {a.start_s:14.1f} "
              f"{a.driver_s_per_chunk * 1000:15.1f}  {sorted(a.chunks_by_worker.values())}")
    one, two = arms[1], arms[2]
    worker_s_per_chunk = one.wall_s / chunks  # one worker (its chunks W at once): how often it delivers one
    driver = max(a.driver_s_per_chunk for a in arms[1:3])
    out = {
        "records": local.planned, "same_accepted_set": same,
        "wall_s": {a.name: round(a.wall_s, 2) for a in arms},
        "speedup_2_over_1_worker": round(one.wall_s / two.wall_s, 2),
        "speedup_2_workers_over_local": round(local.wall_s / two.wall_s, 2),
        "speedup_2_workers_over_local_at_2x_concurrency": round(arms[3].wall_s / two.wall_s, 2),
        "worker_s_per_chunk": round(worker_s_per_chunk, 3), "driver_s_per_chunk": round(driver, 4),
        "workers_bound_by_driver": int(worker_s_per_chunk / driver) if driver else None,
        "workers_bound_by_server": args.slots // args.concurrency,
        "ledger": ledger_ms,
    }
    print(f"speed-up 1 -> 2 workers: {out['speedup_2_over_1_worker']}x; 2 workers vs local: {out['speedup_2_workers_over_local']}x; "
          f"vs local at 2x concurrency: {out['speedup_2_workers_over_local_at_2x_concurrency']}x")
    print(f"on paper: a worker needs {worker_s_per_chunk:.2f} s per chunk, the driver {driver * 1000:.1f} ms -> the driver keeps up "
          f"with ~{out['workers_bound_by_driver']} workers; the stub's {args.slots} slots / {args.concurrency} per worker -> "
          f"{out['workers_bound_by_server']} workers before the server queues")
    print(f"ledger actor, per call from this process: a reservation {ledger_ms['reserve_ms']} ms, "
          f"a one-answer write {ledger_ms['put_one_ms']} ms")
    assert same, "the engines disagree on the accepted set"
    return out


def in_namespace(argv: list[str]) -> int:
    """Re-run this script in a loopback-only network namespace (Ray listens on every interface)."""
    ray_tmp = tempfile.mkdtemp(prefix="slray-", dir="/tmp")
    env = {**os.environ, "SYNTHLOOP_RAY_NETNS": "1", "RAY_TMPDIR": ray_tmp, "RAY_USAGE_STATS_ENABLED": "0",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    ip = shutil.which("ip") or "/usr/sbin/ip"
    cmd = f"{ip} link set lo up && exec {sys.executable} {Path(__file__).resolve()} " + " ".join(argv)
    try:
        return subprocess.run(["unshare", "-rn", "sh", "-c", cmd], env=env).returncode
    finally:
        for proc in Path("/proc").iterdir():  # Ray's agents can outlive it: stop ours, by pid
            try:
                if proc.name.isdigit() and ray_tmp in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    os.kill(int(proc.name), signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(ray_tmp, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=48)
    p.add_argument("--shard", type=int, default=4)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--latency-ms", type=float, default=100.0)
    p.add_argument("--slots", type=int, default=64)
    p.add_argument("--cpus", type=int, default=2)
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args()
    if os.environ.get("SYNTHLOOP_RAY_NETNS") != "1":
        return in_namespace(sys.argv[1:])
    out = bench(args)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
