"""Curation speed and accuracy on a planted corpus, against baselines measured in the same run.

    python bench/bench_curation.py            # 20k ~1 KB documents, a few minutes on one core
    python bench/bench_curation.py --n 2000   # quick look

Per stage: documents/s and MB/s on one core (rensa's thread pool pinned to 1 thread), peak traced
memory (tracemalloc, a separate untimed pass), recall/precision against the planted truth, and the
baseline: datasketch for MinHash and LSH, a plain-Python loop for the rest.
"""

from __future__ import annotations

import os

os.environ.setdefault("RAYON_NUM_THREADS", "1")  # one core: rensa must not fan out
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from datasketch import MinHash, MinHashLSH  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from synthloop.curation import Decontaminate, ExactDedup, NearDedup, PIIStage, QualityFilter  # noqa: E402
from synthloop.curation.config import DecontamConfig, NearDedupConfig, QualityConfig  # noqa: E402
from synthloop.curation.decontam import OverlapIndex  # noqa: E402
from synthloop.curation.minhash import MinHashIndex, shingles, signatures_and_keys  # noqa: E402
from synthloop.curation.pii import DETECTORS, PIIScrubber  # noqa: E402
from synthloop.curation.planted import PlantedCorpus, make_planted_corpus  # noqa: E402
from synthloop.pipeline import RunContext, Stage, run_stages  # noqa: E402
from synthloop.records import Record  # noqa: E402

CHUNK = 256
Row = dict[str, Any]


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def peak_mb(fn: Callable[[], Any]) -> float:
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 1e6


def run_stage(make: Callable[[], Stage], docs: Sequence[str]) -> tuple[list[str], RunContext]:
    """Stream `docs` through a fresh stage in chunks, as the engine and the CLI do."""
    stage, ctx, kept = make(), RunContext(), []
    for i in range(0, len(docs), CHUNK):
        chunk = [Record(id=str(j), text=t) for j, t in enumerate(docs[i : i + CHUNK], start=i)]
        kept.extend(r.id for r in run_stages(chunk, [stage], ctx))
    return kept, ctx


def rejected_ids(ctx: RunContext) -> set[int]:
    return {int(r.id) for r in ctx.rejected}


def pr(found: set[Any], truth: set[Any]) -> tuple[float, float]:
    tp = len(found & truth)
    return tp / len(truth) if truth else 1.0, tp / len(found) if found else 1.0


# -- baselines ------------------------------------------------------------------------------------
def baseline_exact(docs: Sequence[str]) -> set[int]:
    seen, dup = set(), set()
    for i, d in enumerate(docs):
        key = hashlib.md5(" ".join(d.lower().split()).encode()).digest()
        if key in seen:
            dup.add(i)
        seen.add(key)
    return dup


def datasketch_sigs(sets: Sequence[list[str]], num_perm: int) -> list[MinHash]:
    return MinHash.bulk([[s.encode() for s in ss] for ss in sets], num_perm=num_perm)


def datasketch_lsh(sigs: np.ndarray, threshold: float) -> set[tuple[int, int]]:
    """datasketch MinHashLSH (its own band/row choice) over the same signatures: insert + query."""
    lsh = MinHashLSH(threshold=threshold, num_perm=sigs.shape[1])
    pairs = set()
    for i, row in enumerate(sigs):
        m = MinHash(num_perm=sigs.shape[1], hashvalues=row.astype(np.uint64), scheme="legacy")
        hits = [int(k) for k in lsh.query(m)]
        if hits:
            pairs.add((min(hits), i))
        else:
            lsh.insert(str(i), m)
    return pairs


def baseline_decontam(docs: Sequence[str], items: Sequence[tuple[str, str]], n: int = 13) -> set[int]:
    index = set()
    for _, text in items:
        w = re.findall(r"\w+", text.lower())
        index.update(tuple(w[i : i + n]) for i in range(len(w) - n + 1))
    hits = set()
    for k, d in enumerate(docs):
        w = re.findall(r"\w+", d.lower())
        if any(tuple(w[i : i + n]) in index for i in range(len(w) - n + 1)):
            hits.add(k)
    return hits


def baseline_pii(docs: Sequence[str]) -> set[int]:
    found = set()
    for k, d in enumerate(docs):
        for det in DETECTORS:
            if any(det.valid is None or det.valid(m.group(0)) for m in det.pattern.finditer(d)):
                found.add(k)
    return found


# -- the bench ------------------------------------------------------------------------------------
def bench(corpus: PlantedCorpus) -> list[Row]:
    docs = corpus.docs
    mb = sum(len(d.encode()) for d in docs) / 1e6
    n = len(docs)
    rows: list[Row] = []

    def row(stage: str, impl: str, seconds: float, peak: float | None = None, rec: float | None = None,
            prec: float | None = None, count: int = n) -> None:
        rows.append({"stage": stage, "impl": impl, "docs_s": count / seconds, "mb_s": mb * count / n / seconds,
                     "peak_mb": peak, "recall": rec, "precision": prec})

    exact_truth = {c for _, c in corpus.exact_pairs}
    t, (_, ctx) = timed(lambda: run_stage(ExactDedup, docs))
    row("exact dedup", "synthloop (xxh3-128, NFKC)", t, peak_mb(lambda: run_stage(ExactDedup, docs)), *pr(rejected_ids(ctx), exact_truth))
    t, dup = timed(lambda: baseline_exact(docs))
    row("exact dedup", "baseline (md5, lower)", t, None, *pr(dup, exact_truth))

    cfg = NearDedupConfig()
    t_sh, sets = timed(lambda: [shingles(d, cfg.ngram) for d in docs])
    row(f"  {cfg.ngram}-gram shingling", "python (shared by both)", t_sh)
    import rensa

    t, sigs = timed(lambda: np.asarray(rensa.RMinHash.digest_matrix_from_token_sets(sets, cfg.num_perm, cfg.seed).to_rows(), dtype=np.uint32))
    row("MinHash signatures", f"rensa, {cfg.num_perm} perm (shingling incl.)", t + t_sh)
    sub = min(n, 4000)
    t_ds, _ = timed(lambda: datasketch_sigs(sets[:sub], cfg.num_perm))
    row("MinHash signatures", f"datasketch bulk, {cfg.num_perm} perm", t_ds + t_sh * sub / n, count=sub)

    near_truth = corpus.near_pairs | corpus.exact_pairs

    _, wkeys = signatures_and_keys(docs, cfg)

    def ours_lsh() -> set[tuple[int, int]]:
        index = MinHashIndex(cfg)
        matches = index.add_many([str(i) for i in range(n)], sigs, wkeys)
        return {(m[0], i) for i, m in enumerate(matches) if m is not None}

    t, pairs = timed(ours_lsh)
    row("LSH insert+query", f"synthloop {cfg.bands}x{cfg.num_perm // cfg.bands}, word sim>={cfg.threshold}", t, peak_mb(ours_lsh), *pr(pairs, near_truth))
    t, pairs = timed(lambda: datasketch_lsh(sigs, cfg.threshold))
    row("LSH insert+query", f"datasketch MinHashLSH t={cfg.threshold}", t, None, *pr(pairs, near_truth))
    t, (_, ctx) = timed(lambda: run_stage(lambda: NearDedup(cfg), docs))
    near_rej = {(int(r.rejected_reason.rsplit(" ", 1)[1]), int(r.id)) for r in ctx.rejected}
    row("near dedup stage (all)", "synthloop NearDedup", t, peak_mb(lambda: run_stage(lambda: NearDedup(cfg), docs)), *pr(near_rej, near_truth))

    items = corpus.eval_items
    contaminated = set(corpus.contaminated)
    ngram_only = OverlapIndex(13)
    for item_id, text in items:
        ngram_only.add(item_id, text)
    t, hits = timed(lambda: {i for i, d in enumerate(docs) if ngram_only.match(d) is not None})
    row("13-gram decontam", "synthloop (numpy rolling hash)", t, None, *pr(hits, contaminated))
    t, (_, ctx) = timed(lambda: run_stage(lambda: Decontaminate(items, DecontamConfig()), docs))
    row("13-gram + 50-char decontam", "synthloop Decontaminate", t,
        peak_mb(lambda: run_stage(lambda: Decontaminate(items, DecontamConfig()), docs)), *pr(rejected_ids(ctx), contaminated))
    t, hits = timed(lambda: baseline_decontam(docs, items))
    row("13-gram decontam", "baseline (tuple set)", t, None, *pr(hits, contaminated))

    pii_truth = set(corpus.pii)
    t, _ = timed(lambda: run_stage(PIIStage, docs))
    scrubber = PIIScrubber()  # which documents the stage redacts, found again outside the timing
    found = {i for i, d in enumerate(docs) if scrubber.find(d)}
    row("pattern PII", "synthloop PIIStage (redact)", t, peak_mb(lambda: run_stage(PIIStage, docs)), *pr(found, pii_truth))
    t, found = timed(lambda: baseline_pii(docs))
    row("pattern PII", "baseline (every regex, finditer)", t, None, *pr(found, pii_truth))

    t, _ = timed(lambda: run_stage(lambda: QualityFilter(QualityConfig()), docs))
    row("quality filters", "synthloop QualityFilter", t, peak_mb(lambda: run_stage(lambda: QualityFilter(QualityConfig()), docs)))
    return rows


def bench_semantic(corpus: PlantedCorpus, n: int) -> list[Row]:
    from synthloop.curation.config import SemanticDedupConfig
    from synthloop.curation.semantic import SemanticDedup, load_embedder

    t_load, embed = timed(lambda: load_embedder())
    docs = corpus.docs[:n]
    t, (_, ctx) = timed(lambda: run_stage(lambda: SemanticDedup(SemanticDedupConfig(), embed=embed), docs))
    mb = sum(len(d.encode()) for d in docs) / 1e6
    return [{"stage": "semantic dedup", "impl": f"MiniLM-L6 (+{t_load:.1f}s load), {n} docs", "docs_s": n / t,
             "mb_s": mb / t, "peak_mb": None, "recall": None, "precision": None}]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20_000, help="documents (default 20000)")
    ap.add_argument("--semantic", type=int, default=0, metavar="N", help="also time semantic dedup on N documents")
    args = ap.parse_args()
    t, corpus = timed(lambda: make_planted_corpus(args.n))
    console = Console(width=150)
    console.print(f"corpus: {args.n} docs, {sum(map(len, corpus.docs)) / args.n:.0f} chars avg, built in {t:.1f}s; planted: "
                  f"{len(corpus.near_pairs)} near-dup, {len(corpus.exact_pairs)} exact-dup, "
                  f"{len(corpus.contaminated)} contaminated, {len(corpus.pii)} PII")
    rows = bench(corpus) + (bench_semantic(corpus, args.semantic) if args.semantic else [])
    table = Table(title="curation, one core")
    for col in ("stage", "implementation", "docs/s", "MB/s", "peak MB", "recall", "precision"):
        table.add_column(col, justify="left" if col in ("stage", "implementation") else "right")
    fmt = lambda v, spec: "" if v is None else format(v, spec)  # noqa: E731
    for r in rows:
        table.add_row(r["stage"], r["impl"], fmt(r["docs_s"], ",.0f"), fmt(r["mb_s"], ".1f"), fmt(r["peak_mb"], ".1f"),
                      fmt(r["recall"], ".3f"), fmt(r["precision"], ".3f"))
    console.print(table)


if __name__ == "__main__":
    main()
