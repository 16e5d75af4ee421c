"""Does the client saturate the server? Throughput, client CPU per request and fault handling.

The stub server (synthloop.testing.openai_stub) runs in its own process with `--slots 64`: it
works on 64 requests at once, each holding its slot for the latency, so its limit is
64 / latency (320 req/s at 200 ms, 1280 req/s at 50 ms). It runs on a CPU of its own, the clients
on the others, as a model server has its own machine (`--no-pin`: both anywhere). The CPU time
measured here (time.process_time of this process) is the client's own. In the same run, as the baseline: raw
aiohttp (one session, a semaphore, nothing else) and plain httpx (what synthloop used before).

Rows: synthloop (make_client's Client + OpenAICompatBackend, SQLite cache on) at 64 and 256 in
flight, at 200 and 50 ms; then the same with 20% mixed faults (429 + Retry-After, 500, hangs past
the client timeout, malformed and truncated bodies): every prompt answered, duplicates after
success (read from the stub), retries, and wall against its own fault-free wall. Last, what
grouping cache writes into one transaction per event-loop tick saves.

Then a whole streaming run (`synthloop.run` on a textbook recipe: generate, sandboxed verify,
dedup, commit) against an in-process stub (200 ms, 64 slots) at concurrency 32 with 8 records a
chunk: requests in flight sampled every 5 ms over the run, the local engine (streaming) against
the old per-chunk barrier (each chunk through every stage and committed before the next starts),
measured in the same run.

Run:  python bench/bench_client.py [--requests 2000] [--quick] [--only throughput|faults|stream|phases|turnaround] [--runs 3]
      [--seeds 0,0,0 --widths 256]  (the fault rows: which fault sequences, at which widths)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from synthloop.backends import Client, Request, RequestCache, Response
from synthloop.backends.cache import Entry
from synthloop.backends.openai_compat import OpenAICompatBackend
from synthloop.engines.base import Chunk, Commit
from synthloop.engines.local import LocalEngine
from synthloop.pipeline.stage import Stage, VerifierStage, split_stages

SLOTS = 64
#: Which CPU the out-of-process stub runs on, and which the client; None: both anywhere (`--no-pin`).
PIN: tuple[set[int], set[int]] | None = None


@dataclass
class Row:
    name: str
    latency_ms: float
    in_flight: int
    ok: int
    wall_s: float
    cpu_ms_per_req: float
    sent: int = 0
    duplicates: int = 0
    worked: int = 0  # requests that held a server slot (the server's real work)

    def limit(self) -> float:
        return SLOTS / (self.latency_ms / 1000)

    def rps(self) -> float:
        return self.ok / self.wall_s


@contextlib.contextmanager
def stub(latency_ms: float, fault_rate: float = 0.0, hang_s: float = 30.0, retry_after: float = 1.0, seed: int = 0) -> Iterator[str]:
    cmd = [sys.executable, "-m", "synthloop.testing.openai_stub", "--port", "0", "--slots", str(SLOTS), "--latency-ms", str(latency_ms)]
    if fault_rate:
        cmd += ["--fault-rate", str(fault_rate), "--hang-s", str(hang_s), "--retry-after", str(retry_after), "--fault-seed", str(seed)]
    pin = (lambda: os.sched_setaffinity(0, PIN[0])) if PIN else None
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, preexec_fn=pin)
    assert proc.stdout is not None
    try:
        yield proc.stdout.readline().split()[1]  # "serving http://127.0.0.1:PORT/v1 (Ctrl-C to stop)"
    finally:
        proc.terminate()
        proc.wait()


def pin(on: bool) -> None:
    """The stub on a CPU of its own, as a model server has its own machine: sharing 2 cores, the
    scheduler now and then runs both on one, and a stub's answers wait for the client's CPU
    (raw aiohttp at 64 in flight and 50 ms: 0.82-0.89 of the limit shared, 0.89-0.90 pinned)."""
    global PIN
    cpus = sorted(os.sched_getaffinity(0))
    if on and len(cpus) >= 2:
        PIN = ({cpus[-1]}, set(cpus[:-1]))
        os.sched_setaffinity(0, PIN[1])
    print(f"stub on CPU {sorted(PIN[0])}, client on CPU {sorted(PIN[1])}" if PIN else "stub and client share every CPU")


def stats(base_url: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{base_url}/stats") as reply:  # 127.0.0.1 only
        return dict(json.loads(reply.read()))


def requests_for(n: int, tag: str) -> list[Request]:
    return [Request.chat([{"role": "user", "content": f"{tag} question {i}"}], model="stub", seed=i, max_tokens=64) for i in range(n)]


def timed(fn: Callable[[], Awaitable[int]]) -> tuple[int, float, float]:
    """(answers, wall s, client CPU ms per answer) of one fresh event loop running `fn`."""
    wall, cpu = time.perf_counter(), time.process_time()
    ok = asyncio.run(fn())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return ok, wall, 1000 * cpu / max(ok, 1)


async def raw_aiohttp(url: str, reqs: list[Request], in_flight: int) -> int:
    """The baseline: one session, a semaphore, json in and out, nothing else."""
    sem = asyncio.Semaphore(in_flight)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=in_flight)) as http:

        async def one(r: Request) -> int:
            async with sem, http.post(f"{url}/chat/completions", json={"model": "stub", "messages": r.message_dicts()}) as reply:
                return int(bool((await reply.json())["choices"]))

        return sum(await asyncio.gather(*(one(r) for r in reqs)))


async def plain_httpx(url: str, reqs: list[Request], in_flight: int) -> int:
    """What the backend used before: one httpx.AsyncClient with a pool of `in_flight`."""
    sem = asyncio.Semaphore(in_flight)
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    async with httpx.AsyncClient(limits=limits, timeout=30) as http:

        async def one(r: Request) -> int:
            async with sem:
                reply = await http.post(f"{url}/chat/completions", json={"model": "stub", "messages": r.message_dicts()})
                return int(bool(reply.json()["choices"]))

        return sum(await asyncio.gather(*(one(r) for r in reqs)))


def bench_client(backend: OpenAICompatBackend, in_flight: int, cache: RequestCache) -> Client:
    """The client every synthloop row measures: the cache on, 8 retries, 50 ms backoff base."""
    return Client(backend, concurrency=in_flight, cache=cache, max_retries=8, backoff_base=0.05, backoff_max=1.0)


async def synthloop(url: str, reqs: list[Request], in_flight: int, cache: Path, timeout_s: float, counts: dict[str, int] | None = None) -> int:
    """The real path: Client (cache, window, retries, accounting) + OpenAICompatBackend."""
    backend = OpenAICompatBackend(url, "stub", timeout_s=timeout_s, max_connections=in_flight)
    client = bench_client(backend, in_flight, RequestCache(cache))
    async with client:
        answers = await client.complete(reqs)
    if counts is not None:
        counts.update(stalled=client.stalled_sends, hedged=client.hedged_sends, hedge_wins=client.hedge_wins, window_low=client.window.low)
    return sum(isinstance(a, Response) for a in answers)


class TimedBackend(OpenAICompatBackend):
    """Records when the first request went out and the last answer came in."""

    first = last = 0.0

    async def _one(self, request: Request) -> Response | Any:
        self.first = self.first or time.perf_counter()
        answer = await super()._one(request)
        self.last = time.perf_counter()
        return answer


def phases(n: int, latency: float, width: int, tmp: Path, runs: int = 3) -> None:
    """Where a short run's fixed costs go: the client's real path (cache, window, accounting),
    its phases timed in-process against the stub."""
    with stub(latency) as url:
        timed(lambda: raw_aiohttp(url, requests_for(50, "warm"), 8))
        for k in range(runs):
            async def one(k: int = k) -> str:
                t0 = time.perf_counter()
                backend = TimedBackend(url, "stub", timeout_s=10 * latency / 1000 + 1, max_connections=width)
                cache = RequestCache(tmp / f"phases{k}.sqlite")
                t1 = time.perf_counter()
                client = bench_client(backend, width, cache)
                await client.complete(requests_for(n, f"phases{k}"))
                t2 = time.perf_counter()
                await backend.aclose()
                t3 = time.perf_counter()
                cache.close()
                t4 = time.perf_counter()
                ms = lambda a, b: f"{1000 * (b - a):.0f} ms"  # noqa: E731
                return (f"phases at {latency:.0f} ms, {width} in flight, {n} prompts: cache open {ms(t0, t1)}, to the first send "
                        f"{ms(t1, backend.first)}, sending {ms(backend.first, backend.last)} (at the limit: {1000 * n / (SLOTS / latency * 1000):.0f} ms), "
                        f"complete() returns {ms(backend.last, t2)} after the last answer, connections closed in {ms(t2, t3)}, cache closed in {ms(t3, t4)}")

            print(asyncio.run(one()), flush=True)


def turnaround(n: int, latency: float, width: int, tmp: Path, runs: int = 2) -> None:
    """Why the closed loop (as many requests in flight as the stub has slots) stays under the
    limit: the stub's own timer lateness, and the turnaround it sees on each connection (its reply
    written -> that connection's next request read), for raw aiohttp and synthloop, each on a fresh stub."""

    async def lateness() -> list[float]:
        out = []
        for _ in range(40):
            t = time.perf_counter()
            await asyncio.sleep(latency / 1000)
            out.append(1000 * (time.perf_counter() - t) - latency)
        return sorted(out)

    late = asyncio.run(lateness())
    print(f"asyncio.sleep({latency / 1000:g}) here wakes {late[len(late) // 2]:.2f} ms late (median; worst {late[-1]:.2f} ms)")
    for k in range(runs):
        for name in ("raw aiohttp", "synthloop"):
            with stub(latency) as url:
                reqs = requests_for(n, f"turn-{name}-{k}")
                cache = tmp / f"turn{k}.sqlite"
                ok, wall, _ = timed(lambda r=reqs, c=cache, raw=name == "raw aiohttp":
                                    raw_aiohttp(url, r, width) if raw else synthloop(url, r, width, c, 10 * latency / 1000 + 1))
                s = stats(url)
            print(f"{name:12} {latency:.0f} ms, {width} in flight, {n} prompts: {ok / wall / (SLOTS / latency * 1000):.3f} of the limit; "
                  f"the stub saw a turnaround of {s['turnaround_ms_p50']:.1f} ms median, {s['turnaround_ms_p90']:.1f} ms at the 90th percentile")


def run_rows(n: int, latencies: list[float], widths: list[int], tmp: Path) -> list[Row]:
    rows: list[Row] = []
    for latency in latencies:
        with stub(latency) as url:
            timed(lambda: raw_aiohttp(url, requests_for(50, "warm"), 8))
            for width in widths:
                w, timeout, cache = width, 10 * latency / 1000 + 1, tmp / f"c{latency}-{width}.sqlite"
                for name, fn in (
                    ("raw aiohttp", lambda w=w: raw_aiohttp(url, requests_for(n, f"raw{w}"), w)),
                    ("plain httpx", lambda w=w: plain_httpx(url, requests_for(n // 4, f"httpx{w}"), w)),  # slow: a quarter
                    ("synthloop", lambda w=w, t=timeout, c=cache: synthloop(url, requests_for(n, f"ours{w}"), w, c, t)),
                ):
                    ok, wall, cpu = timed(fn)
                    rows.append(Row(name, latency, width, ok, wall, cpu))
    return rows


@dataclass
class FaultRun:
    """One round of the fault rows at one width: raw aiohttp and synthloop on a fault-free stub,
    synthloop with 20% mixed faults, each on a fresh stub, run back to back."""

    raw: Row
    clean: Row
    faulty: Row
    counts: dict[str, int]
    load: float  # 1-minute load average when the round ended
    seed: int  # of the fault draws

    def ratio(self) -> float:
        return self.faulty.wall_s / self.clean.wall_s


def fault_rows(n: int, latency: float, widths: list[int], tmp: Path, timeout_s: float, runs: int = 3,
               seeds: list[int] | None = None) -> list[FaultRun]:
    """`runs` rounds per width, interleaved (64, 256, 64, 256, ...); within a round the fault-free
    and the faulty run are back to back, in alternating order, so load drift cancels in the ratio.
    Round i draws its faults with seed i (or `seeds[i]`): each round is another sequence of faults
    (one seed would measure only the timing noise around one sequence; `--seeds 0,0,0` does that
    on purpose)."""
    out: list[FaultRun] = []
    for i, seed in enumerate(seeds if seeds is not None else range(runs)):
        for width in widths:
            # The timeout covers the queueing at the server's 64 slots (256 in flight: 4 deep).
            timeout = max(timeout_s, 2 * width / SLOTS * latency / 1000)
            with stub(latency) as url:
                ok, wall, cpu = timed(lambda w=width, j=i: raw_aiohttp(url, requests_for(n, f"raw{w}-{j}"), w))
                raw = Row("raw aiohttp", latency, width, ok, wall, cpu)
            measured: dict[float, Row] = {}
            counts: dict[str, int] = {}
            for rate in (0.0, 0.2) if i % 2 == 0 else (0.2, 0.0):
                with stub(latency, fault_rate=rate, hang_s=30.0, retry_after=1.0, seed=seed) as url:
                    cache, mine = tmp / f"f{width}-{rate}-{i}.sqlite", {} if rate == 0 else counts
                    ok, wall, cpu = timed(lambda w=width, c=cache, t=timeout, m=mine: synthloop(url, requests_for(n, "f"), w, c, t, m))
                    s = stats(url)
                measured[rate] = Row(f"synthloop, {int(rate * 100)}% faults", latency, width, ok, wall, cpu, int(s["requests"]),
                                     int(s["duplicates_after_success"]), int(s["worked"]))
            out.append(FaultRun(raw, measured[0.0], measured[0.2], counts, os.getloadavg()[0], seed))
    return out


def cache_write_cost(tmp: Path, n: int = 4000, group: int = 16) -> tuple[float, float]:
    """(µs per answer committed alone, µs per answer committed in groups of `group`)."""
    answer = Response(text="x" * 400, prompt_tokens=30, completion_tokens=100)
    out: list[float] = []
    for size in (1, group):
        with RequestCache(tmp / f"w{size}.sqlite") as cache:
            t = time.perf_counter()
            for i in range(0, n, size):
                cache.put_many([Entry(f"k{j}", answer, 0.001) for j in range(i, i + size)])
            out.append(1e6 * (time.perf_counter() - t) / n)
    return out[0], out[1]


class BarrierEngine(LocalEngine):
    """The baseline: the local engine as it was, each chunk through every stage and committed
    before the next one starts, its sandbox checks one at a time."""

    def run_chunks(self, chunks: Sequence[Chunk], stages: Sequence[Stage], commit: Commit) -> None:
        for stage in stages:
            if isinstance(stage, VerifierStage):
                stage.workers = 1
        head, tail = split_stages(stages)
        for chunk in chunks:
            commit(self._tail(self._head(chunk, head, threading.Event()), tail))


def sample_in_flight(server: object, samples: list[int], done: threading.Event) -> None:
    while not done.is_set():
        samples.append(server.in_flight)  # type: ignore[attr-defined]
        time.sleep(0.005)


def stream_rows(records: int, tmp: Path) -> list[dict[str, Any]]:
    """A whole run, streaming vs barrier: wall, mean requests in flight over the run (5 ms samples),
    and the share of samples at the full concurrency."""
    sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
    from synthloop.recipe import load_recipe
    from synthloop.rounds import run
    from synthloop.testing import OpenAIStub
    from textbook_answers import answer_for

    out = []
    runs = [(verify, name, engine) for verify in ("false", "true") for name, engine in (("per-chunk barrier", BarrierEngine), ("streaming", LocalEngine))]
    for verify, name, engine_cls in runs:
        engine = engine_cls()
        with OpenAIStub(responder=answer_for, slots=SLOTS, latency_s=0.2) as server:
            recipe_path = tmp / f"{name[:4]}-{verify}.toml"
            recipe_path.write_text(STREAM_RECIPE.format(url=server.base_url, n=records, verify=verify))
            samples: list[int] = []
            done = threading.Event()
            sampler = threading.Thread(target=sample_in_flight, args=(server, samples, done), daemon=True)
            t0 = time.perf_counter()
            sampler.start()
            result = run(load_recipe(recipe_path), runs_dir=tmp / f"runs-{name[:4]}-{verify}", engine=engine)
            done.set()
            sampler.join()
            wall = time.perf_counter() - t0
        busy = [i for i, x in enumerate(samples) if x]  # first to last request in flight: setup and publish left out
        samples = samples[busy[0] : busy[-1] + 1] if busy else [0]
        out.append({"engine": name, "sandbox_verify": verify == "true", "wall_s": round(wall, 2), "records": result.planned, "accepted": result.accepted,
                    "mean_in_flight": round(sum(samples) / len(samples), 1), "at_full": round(sum(x >= STREAM_CONCURRENCY for x in samples) / len(samples), 2),
                    "verified_per_s": round(result.planned / wall, 1)})
    return out


STREAM_CONCURRENCY = 32
STREAM_RECIPE = """
name = "stream-bench"
seed = 1
[plan]
topics = ["itertools", "pathlib", "f-strings", "collections.Counter", "dict.get", "re", "json", "argparse"]
personas = ["a beginner", "an expert", "a data scientist", "a student"]
difficulties = ["easy", "medium", "hard", "expert"]
max_records = {n}
[teacher]
backend = "openai_compat"
base_url = "{url}"
model = "stub-model"
concurrency = %d
timeout_s = 30
[judge]
enabled = false
[verify]
code = {verify}
[output]
shard_size = 8
[curate.near]
threshold = 0.97
""" % STREAM_CONCURRENCY


def report_stream(rows: list[dict[str, Any]]) -> None:
    for i, r in enumerate(rows):
        base = rows[i - i % 2]  # the barrier run of the same recipe
        verify = "with sandboxed verification" if r["sandbox_verify"] else "generation only"
        print(f"whole run, {verify}, {r['engine']:17}: {r['records']} records in {r['wall_s']:.1f} s ({r['verified_per_s']:.1f} records/s, "
              f"{r['wall_s'] / base['wall_s']:.2f}x the barrier's wall), {r['mean_in_flight']:.1f} requests in flight on average "
              f"of {STREAM_CONCURRENCY} from the first request to the last ({r['at_full']:.0%} of that time at the full concurrency)")
    print(json.dumps({"stream": rows}))


def report(rows: list[Row], pairs: list[FaultRun], writes: tuple[float, float]) -> None:
    print(f"stub: {SLOTS} slots in its own process; limit = {SLOTS} / latency; load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'client':12} {'latency':>8} {'in flight':>9} {'ok':>5} {'req/s':>7} {'of limit':>8} {'vs raw':>6} {'CPU ms/req':>10}")
    raw = {(r.latency_ms, r.in_flight): r for r in rows if r.name == "raw aiohttp"}
    for r in rows:
        base = raw[(r.latency_ms, r.in_flight)]
        print(f"{r.name:12} {r.latency_ms:6.0f}ms {r.in_flight:9} {r.ok:5} {r.rps():7.0f} {r.rps() / r.limit():8.2f} {r.rps() / base.rps():6.2f} {r.cpu_ms_per_req:10.3f}")
    report_faults(pairs)
    print(f"cache writes: {writes[0]:.1f} µs per answer committed alone, {writes[1]:.1f} µs in groups of 16 ({writes[0] / writes[1]:.1f}x)")
    summary = {
        "rows": [{**r.__dict__, "req_per_s": round(r.rps(), 1), "of_limit": round(r.rps() / r.limit(), 3)} for r in rows],
        "faults": fault_summary(pairs),
        "cache_write_us": [round(w, 1) for w in writes],
    }
    print(json.dumps(summary))


def fault_summary(runs: list[FaultRun]) -> list[dict[str, Any]]:
    return [{"in_flight": r.clean.in_flight, "answered": r.faulty.ok, "sent": r.faulty.sent, "duplicates": r.faulty.duplicates,
             "wall_ratio": round(r.ratio(), 3), "work_ratio": round(r.faulty.worked / r.clean.worked, 3), "raw_wall_s": round(r.raw.wall_s, 2),
             "clean_wall_s": round(r.clean.wall_s, 2), "fault_wall_s": round(r.faulty.wall_s, 2), "load": round(r.load, 2), "fault_seed": r.seed, **r.counts} for r in runs]


def report_faults(runs: list[FaultRun]) -> None:
    for r in runs:
        clean, faulty = r.clean, r.faulty
        print(
            f"faults at {clean.latency_ms:.0f} ms, {clean.in_flight} in flight, fault seed {r.seed}: {faulty.ok}/{clean.ok} answered, "
            f"{faulty.sent - faulty.ok} retries and copies, {faulty.duplicates} duplicates after success, "
            f"wall {faulty.wall_s:.2f} s vs {clean.wall_s:.2f} s fault-free = {r.ratio():.2f}x "
            f"(raw aiohttp fault-free {r.raw.wall_s:.2f} s; the server had {faulty.worked / clean.worked:.2f}x the work to do; "
            f"{r.counts.get('hedged', 0)} copies of stalled sends, {r.counts.get('hedge_wins', 0)} of them answered first; load {r.load:.1f})"
        )
    for width in sorted({r.clean.in_flight for r in runs}):
        ratios = [r.ratio() for r in runs if r.clean.in_flight == width]
        print(f"{width} in flight: wall vs fault-free over {len(ratios)} runs: {', '.join(f'{x:.2f}x' for x in ratios)}; "
              f"<= 1.5x in {sum(x <= 1.5 for x in ratios)} of {len(ratios)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="200 ms only, 64 in flight (a smoke run)")
    parser.add_argument("--fault-timeout", type=float, default=1.0, help="client timeout in the fault runs (hangs last 30 s); at least 2x the queueing")
    parser.add_argument("--only", choices=["throughput", "faults", "stream", "phases", "turnaround"],
                        help="only the fault-free throughput matrix, only the fault rows, only the whole streaming run, only "
                             "the phases of synthloop's short runs (50 ms, 256 in flight: where the fixed costs go), or only "
                             "the closed loop's turnaround (50 ms, 64 in flight)")
    parser.add_argument("--runs", type=int, default=3, help="rounds of the fault rows per width (interleaved)")
    parser.add_argument("--seeds", help="the fault rows' seeds, one round each (e.g. 0,0,0: one sequence again); default 0..runs-1")
    parser.add_argument("--widths", default="64,256", help="requests in flight of the fault rows")
    parser.add_argument("--stream-records", type=int, default=256, help="records in the whole streaming run")
    parser.add_argument("--no-pin", action="store_true",
                        help="let the stub and the client share every CPU (default: the stub on the last CPU, the client on the others)")
    args = parser.parse_args()
    pin(not args.no_pin)
    latencies, widths = ([200.0], [64]) if args.quick else ([200.0, 50.0], [64, 256])
    with tempfile.TemporaryDirectory() as tmp:
        if args.only == "phases":
            phases(args.requests, 50.0, 256, Path(tmp))
            return
        if args.only == "turnaround":
            turnaround(args.requests, 50.0, 64, Path(tmp))
            return
        if args.only == "faults":
            load = os.getloadavg()[0]
            seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else None
            widths = [int(x) for x in args.widths.split(",")]
            report_faults(runs := fault_rows(args.requests, 200.0, widths, Path(tmp), args.fault_timeout, args.runs, seeds))
            print(f"load average (1 min): {load:.2f} before the fault rows, {os.getloadavg()[0]:.2f} after, on {os.cpu_count()} CPUs")
            print(json.dumps({"faults": fault_summary(runs)}))
            return
        if args.only != "stream":
            rows = run_rows(args.requests, latencies, widths, Path(tmp))
            pairs = [] if args.only == "throughput" else \
                fault_rows(args.requests, 200.0, [64, 256], Path(tmp), args.fault_timeout, args.runs)
            writes = cache_write_cost(Path(tmp))
            report(rows, pairs, writes)
        if args.only in (None, "stream"):
            os.sched_setaffinity(0, set().union(*PIN) if PIN else os.sched_getaffinity(0))  # its stub is in-process: every CPU
            report_stream(stream_rows(args.stream_records, Path(tmp)))


if __name__ == "__main__":
    main()
