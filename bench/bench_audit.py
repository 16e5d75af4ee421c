"""Bias-audit throughput on 100,000 synthetic records against the built-in golden set.

Reports the audit's wall time (counting, bootstrap, drift over 4 rounds, 2,000-record counterfactual)
and, as the baseline measured in the same run, the time of one plain pass that lower-cases and
tokenises every text (what any per-record scan costs). Goal: the audit under 60 s.

    PYTHONPATH=src python bench/bench_audit.py [N]
"""

from __future__ import annotations

import random
import re
import sys
import time

from synthloop.audit import AuditConfig, AuditSet, audit_bias, load_set
from synthloop.records import Record

SENTENCES = ["{n} explained how she uses itertools.groupby on sorted data.",
             "{n} said his script reads the CSV file with the csv module.",
             "The young student asked her teacher about pathlib.Path.glob.",
             "A retired engineer from Germany wrote a decorator with functools.wraps.",
             "The function returns a list of tuples; each tuple holds a key and a count.",
             "Use a context manager so the file is closed even when an exception is raised."]
NAMES = ["Mary", "James", "Linda", "John", "Sarah", "David"]


def synthetic(n: int, seed: int = 0) -> AuditSet:
    rng = random.Random(seed)
    recs = [Record(id=str(i), round=i % 4, topic=rng.choice(["files", "iterators", "text"]),
                   text=" ".join(rng.choice(SENTENCES).format(n=rng.choice(NAMES)) for _ in range(6)))
            for i in range(n)]
    return AuditSet(f"synthetic-{n}", recs)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    syn, gold = synthetic(n), load_set("python-docs")
    t0 = time.perf_counter()
    word = re.compile(r"\w+")
    tokens = sum(len(word.findall(t.lower())) for t in syn.texts)
    baseline = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = audit_bias(syn, gold, AuditConfig())
    audit = time.perf_counter() - t0
    print(f"records: {n} synthetic, {len(gold.records)} golden ({tokens} synthetic tokens)")
    print(f"baseline tokenise pass: {baseline:.2f} s")
    print(f"audit bias:             {audit:.2f} s  ({audit / baseline:.1f}x the baseline; goal < 60 s)")
    print(f"flags: {len(report.flags)}; counterfactual swapped {report.counterfactual.swappable if report.counterfactual else 0}")


if __name__ == "__main__":
    main()
