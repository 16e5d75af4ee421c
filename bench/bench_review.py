"""How fast the review app pages through a big run: a 50-record page over 100,000 records.

    PYTHONPATH=src python bench/bench_review.py [--records 100000] [--shard 1000]

Builds a synthetic run directory (write_shard, 100 shards of 1,000 records; a quarter rejected,
judge scores 1-5), builds the review index once, then times page queries (first page, a deep
page, facet filters, a score range, full-text search, "not reviewed") against the baseline a
reviewer would get without the index: a pyarrow scan of every shard's summary columns, filtered
and sliced to the same page. Reports median and p95 in ms and the speed-up.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from synthloop.records import Record, Teacher, Verdict
from synthloop.review import Filters, Review
from synthloop.storage import Manifest, RoundState, RunDir, write_shard
from synthloop.storage.manifest import ChunkCounts

TOPICS = [f"topic-{i}" for i in range(40)]
SKILLS = ["explain", "debug", "refactor", "test", "document"]
WORDS = "list dict set tuple iterator generator closure decorator context manager pathlib regex async".split()


def make_run(root: Path, n: int, shard: int) -> RunDir:
    rd = RunDir(root / "bench-run")
    state = RoundState(round=0, inputs_hash="bench", planned=n, chunks=(n + shard - 1) // shard)
    for c in range(state.chunks):
        acc, rej = [], []
        for i in range(c * shard, min(n, (c + 1) * shard)):
            score = 1 + (i * 7919) % 5
            words = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(12))
            rec = Record(id=f"r0-{i:08d}", task="instruction", topic=TOPICS[i % 40], skill=SKILLS[i % 5], persona="a beginner",
                         messages=[{"role": "user", "content": f"Question {i} about {words}?"}, {"role": "assistant", "content": f"Answer {i}: {words}."}],
                         teacher=Teacher(backend="fake", model="bench"), verdicts=[Verdict("judge", "judge", score >= 3, float(score), "judge_score")])
            if score < 2:
                rej.append(rec.reject("judge", f"judge_score_low: {score}/5 < 3"))
            else:
                acc.append(rec)
        rd.write_chunk(0, c, acc, rej)
        state.completed_chunks.append(c)
        state.chunk_counts[str(c)] = ChunkCounts(accepted=len(acc), rejected=len(rej))
    state.finished = True
    rd.write_manifest(Manifest(name="bench", recipe_hash="v1:bench", seed=0, created="now", rounds=[state], status="finished"))
    return rd


def baseline_page(rd: RunDir, topic: str | None, offset: int, limit: int = 50) -> tuple[int, list[dict[str, object]]]:
    """Without the index: scan every shard's summary columns, filter, count, slice one page."""
    cols = ["id", "task", "topic", "skill", "persona", "round", "rejected_stage", "rejected_reason"]
    tables = [pq.read_table(p, columns=cols) for k in ("accepted", "rejected") for p in rd.shards(k)]  # type: ignore[arg-type]
    t = pa.concat_tables(tables)
    if topic:
        t = t.filter(pc.equal(t["topic"], topic))
    return t.num_rows, t.slice(offset, limit).to_pylist()


def timed(fn, repeat: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    ms = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1000)
    ms.sort()
    return statistics.median(ms), ms[min(len(ms) - 1, int(0.95 * len(ms)))]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--shard", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        rd = make_run(Path(tmp), args.records, args.shard)
        t1 = time.perf_counter()
        review = Review(rd, reviewer="bench")
        t2 = time.perf_counter()
        print(f"{args.records:,} records in {len(rd.shards('accepted')) + len(rd.shards('rejected'))} shards: written in {t1 - t0:.1f} s; index built in {t2 - t1:.1f} s")
        review.bulk(Filters(topic="topic-3"), "accept")  # 2,500 decisions, so "not reviewed" is a real join
        cases = {
            "first page": (Filters(), 0),
            "page 1000 (offset 50,000)": (Filters(), 50_000),
            "topic filter": (Filters(topic="topic-7"), 0),
            "topic + skill + score range": (Filters(topic="topic-7", skill="debug", min_score=2, max_score=4), 0),
            "rejection reason": (Filters(reason="judge_score_low"), 0),
            "full-text search": (Filters(q="decorator closure"), 0),
            "not reviewed": (Filters(reviewed="no"), 0),
        }
        print(f"{'query':32} {'median ms':>10} {'p95 ms':>8}")
        worst = 0.0
        for name, (f, off) in cases.items():
            med, p95 = timed(lambda f=f, off=off: review.index.page(f, offset=off), args.repeat)
            worst = max(worst, p95)
            print(f"{name:32} {med:10.2f} {p95:8.2f}")
        b_med, b_p95 = timed(lambda: baseline_page(rd, "topic-7", 0), max(3, args.repeat // 5))
        i_med, _ = timed(lambda: review.index.page(Filters(topic="topic-7")), args.repeat)
        rec_med, _ = timed(lambda: review.record_view("r0-00054321"), args.repeat)
        print(f"{'record view (full record)':32} {rec_med:10.2f}")
        print(f"baseline (pyarrow scan of all shards, topic filter): median {b_med:.1f} ms, p95 {b_p95:.1f} ms")
        print(f"index vs baseline, topic page: {b_med / i_med:.0f}x faster; worst p95 of any page query {worst:.1f} ms (target < 200 ms)")
        review.index.close()
        return 0 if worst < 200 else 1


if __name__ == "__main__":
    sys.exit(main())
