"""Cost of the sandbox: one `run_sandboxed` vs a bare `python -I -c` subprocess, measured in the same
run; the code verifier on a small record, serially and with 4 threads; and the verify stage
(`VerifierStage`) on a chunk of records, one check at a time (workers=1, the old way) vs one
check per core (the default), in verified records per second.

    /work/main/.venv/bin/python bench/bench_sandbox.py [runs]
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from synthloop.pipeline import RunContext
from synthloop.pipeline.stage import VerifierStage
from synthloop.records import Record
from synthloop.verifiers import PythonCodeVerifier, isolation_layers, run_sandboxed

RECORD = Record(id="b", answer="def double(x):\n    return 2 * x\n", tests="assert double(2) == 4\ndef test_neg():\n    assert double(-1) == -2\n")


def median_s(fn: object, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(runs: int) -> None:
    print(f"isolation layers: {', '.join(isolation_layers()) or 'none'}")
    bare = median_s(lambda: subprocess.run([sys.executable, "-I", "-B", "-c", "pass"], check=True), runs)
    sandboxed = median_s(lambda: run_sandboxed("pass"), runs)
    verifier = PythonCodeVerifier()
    verify = median_s(lambda: verifier.verify(RECORD), runs)
    print(f"bare python -I -c pass : {bare * 1000:6.1f} ms (baseline)")
    print(f"run_sandboxed('pass')  : {sandboxed * 1000:6.1f} ms ({sandboxed / bare:.2f}x baseline)")
    print(f"verify(2-test record)  : {verify * 1000:6.1f} ms ({verify / bare:.2f}x baseline)")
    t0 = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        verdicts = list(pool.map(verifier.verify, [RECORD] * (4 * runs)))
    wall = time.perf_counter() - t0
    assert all(v.ok for v in verdicts)
    print(f"4 threads: {len(verdicts) / wall:.1f} records/s vs serial {1 / verify:.1f} records/s ({verify * len(verdicts) / wall:.2f}x)")
    stage_rates(verifier, 4 * runs)


def stage_rates(verifier: PythonCodeVerifier, n: int) -> None:
    """Verified records per second through the verify stage: serial vs one check per core."""
    rates = {}
    for workers in (1, os.cpu_count() or 1):
        records = [dataclasses.replace(RECORD, id=f"r{i}", verdicts=[]) for i in range(n)]
        t0 = time.perf_counter()
        kept = list(VerifierStage(verifier, workers=workers).run(records, RunContext()))
        rates[workers] = len(records) / (time.perf_counter() - t0)
        assert len(kept) == n
    serial, parallel = rates[1], rates[max(rates)]
    print(f"verify stage, {n} records: serial {serial:.1f} records/s, {max(rates)} workers {parallel:.1f} records/s "
          f"({parallel / serial:.2f}x; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
