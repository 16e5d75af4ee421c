"""Client + OpenAICompatBackend throughput and client CPU per request, against the stub server.

The stub (synthloop.testing.openai_stub) runs in a separate process and answers instantly, so the
CPU time measured here (time.process_time of this process) is the client's own cost. The baseline,
measured in the same run, is a naive client that opens a new httpx.Client (a new connection) for
every request; a bare reused `httpx.AsyncClient` with no policy shows what the policy layer costs.
Run:  python bench/bench_client.py [--requests 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from synthloop.backends import Client, Request, RequestCache
from synthloop.backends.openai_compat import OpenAICompatBackend


def start_stub() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "synthloop.testing.openai_stub", "--port", "0"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "serving http://127.0.0.1:PORT/v1 (Ctrl-C to stop)"
    return proc, line.split()[1]


def requests_for(n: int) -> list[Request]:
    return [Request.chat([{"role": "user", "content": f"question {i}"}], model="stub", seed=i) for i in range(n)]


def measure(fn: Callable[[], None], n: int) -> tuple[float, float]:
    """(requests per second, client CPU ms per request)."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return n / wall, 1000 * cpu / n


def naive(base_url: str, reqs: list[Request]) -> None:
    for r in reqs:
        with httpx.Client(timeout=30) as http:
            http.post(f"{base_url}/chat/completions", json={"model": "stub", "messages": r.message_dicts()}).raise_for_status()


def bare(base_url: str, reqs: list[Request]) -> None:
    """Lower bound: one reused httpx.AsyncClient, sequential, no cache key, no policy at all."""

    async def go() -> None:
        async with httpx.AsyncClient(timeout=30) as http:
            for r in reqs:
                reply = await http.post(f"{base_url}/chat/completions", json={"model": "stub", "messages": r.message_dicts()})
                reply.json()["choices"][0]

    asyncio.run(go())


def ours(base_url: str, reqs: list[Request], concurrency: int, cache: Path | None) -> None:
    client = Client(
        OpenAICompatBackend(base_url, "stub", max_connections=concurrency),
        concurrency=concurrency,
        cache=RequestCache(cache) if cache else None,
    )
    answers = client.complete_sync(reqs)
    assert client.usage.requests == len(reqs) and all(not isinstance(a, Exception) for a in answers)
    if client.cache is not None:
        client.cache.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    n = parser.parse_args().requests
    proc, url = start_stub()
    try:
        reqs = requests_for(n)
        naive(url, reqs[:20])  # warm up both paths
        ours(url, reqs[:20], 8, None)
        with tempfile.TemporaryDirectory() as tmp:
            rows = {
                "naive: new httpx.Client per request": measure(lambda: naive(url, reqs), n),
                "bare reused httpx.AsyncClient": measure(lambda: bare(url, reqs), n),
                "Client+OpenAICompat, concurrency 1": measure(lambda: ours(url, reqs, 1, None), n),
                "Client+OpenAICompat, concurrency 8": measure(lambda: ours(url, reqs, 8, None), n),
                "... concurrency 8 + SQLite cache": measure(lambda: ours(url, reqs, 8, Path(tmp) / "c.sqlite"), n),
            }
    finally:
        proc.terminate()
        proc.wait()
    base_rps, base_cpu = rows["naive: new httpx.Client per request"]
    print(f"{n} requests each, stub server in its own process answering instantly")
    print(f"{'':38} {'req/s':>8} {'CPU ms/req':>11} {'req/s x':>8} {'CPU x':>7}")
    for name, (rps, cpu) in rows.items():
        print(f"{name:38} {rps:8.0f} {cpu:11.3f} {rps / base_rps:8.2f} {cpu / base_cpu:7.2f}")
    print(json.dumps({k: {"req_per_s": round(v[0], 1), "cpu_ms_per_req": round(v[1], 3)} for k, v in rows.items()}))


if __name__ == "__main__":
    main()
