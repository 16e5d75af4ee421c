"""Cost of the sandbox: one `run_sandboxed` vs a bare `python -I -c` subprocess, measured in the same
run; and the code verifier on a small record, serially and with 4 threads.

    /work/main/.venv/bin/python bench/bench_sandbox.py [runs]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

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


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
