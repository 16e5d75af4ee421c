"""Precision and recall of each code/claim gate on the labelled set in bench/data/gates.jsonl.

A gate's job is to reject bad records, so "positive" = rejected. Precision: of the records the
gate rejected, the fraction that were bad; recall: of the bad records, the fraction it rejected.
Per kind (correct, wrong, hostile, vacuous, weak; true/false stated outputs; right/wrong answers)
the rejection rate is shown too, with the reason categories seen.

    PYTHONPATH=src /work/main/.venv/bin/python bench/bench_gates.py
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from synthloop.records import Record, Verdict
from synthloop.verifiers import PythonCodeVerifier, PythonSnippetVerifier, isolation_layers

DATA = Path(__file__).with_name("data") / "gates.jsonl"
CODE = PythonCodeVerifier(timeout_s=2.0, memory_mb=256)
SNIPPETS = PythonSnippetVerifier(timeout_s=2.0, memory_mb=256,
                                 checkers=["final_answer", "program_of_thought", "exact_match", "regex", "json_schema"])


def judge(row: dict[str, Any]) -> Verdict:
    if row["gate"] == "code":
        return CODE.verify(Record(id="b", answer=row["answer"], tests=row["tests"]))
    return SNIPPETS.verify(Record(id="b", text=row["text"], meta=row.get("meta", {})))


def main() -> int:
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    print(f"isolation layers: {', '.join(isolation_layers()) or 'none'}; {len(rows)} labelled rows from {DATA.name}")
    by_gate: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    by_kind: dict[tuple[str, str, bool], list[bool]] = defaultdict(list)
    reasons: dict[tuple[str, str, bool], Counter[str]] = defaultdict(Counter)
    misses = []
    t0 = time.perf_counter()
    for row in rows:
        v = judge(row)
        rejected = not v.ok
        by_gate[row["gate"]].append((row["bad"], rejected))
        key = (row["gate"], row["kind"], row["bad"])
        by_kind[key].append(rejected)
        reasons[key][v.reason.split(":", 1)[0]] += 1
        if rejected != row["bad"]:
            misses.append(f"  {row['gate']}/{row['kind']} bad={row['bad']}: {v.reason[:110]}")
    wall = time.perf_counter() - t0
    print(f"\n{'gate':8} {'n':>4} {'precision':>9} {'recall':>7}  (positive = rejected)")
    for gate, pairs in by_gate.items():
        tp = sum(1 for bad, rej in pairs if bad and rej)
        fp = sum(1 for bad, rej in pairs if not bad and rej)
        fn = sum(1 for bad, rej in pairs if bad and not rej)
        precision = tp / (tp + fp) if tp + fp else float("nan")
        recall = tp / (tp + fn) if tp + fn else float("nan")
        print(f"{gate:8} {len(pairs):>4} {precision:>9.2f} {recall:>7.2f}")
    print(f"\n{'gate/kind':28} {'label':6} {'n':>3} {'rejected':>8}  reasons")
    for (gate, kind, bad), rej in sorted(by_kind.items()):
        label = "bad" if bad else "good"
        cats = ", ".join(f"{c} {n}" for c, n in reasons[(gate, kind, bad)].most_common())
        print(f"{gate + '/' + kind:28} {label:6} {len(rej):>3} {sum(rej) / len(rej):>8.2f}  {cats}")
    print(f"\n{len(rows)} rows in {wall:.1f} s ({wall / len(rows) * 1000:.0f} ms/row)")
    if misses:
        print("misclassified:")
        print("\n".join(misses))
    return 0


if __name__ == "__main__":
    sys.exit(main())
