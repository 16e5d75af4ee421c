"""Near-duplicate, semantic-dedup, PII and scaling figures on human paragraphs with planted truth,
each against a baseline (the previous implementation) measured in the same run.

    python bench/bench_dedup.py                      # near dedup on 6000 paragraphs (~1 min)
    python bench/bench_dedup.py --seed 3 --n 9000    # other draw, more documents
    python bench/bench_dedup.py --pii                # planted structured PII in paragraphs
    python bench/bench_dedup.py --semantic 600 --no-near  # MiniLM dedup: embedders and candidate search vs today's
    python bench/bench_dedup.py --cli 600 --no-near  # `synthloop curate --semantic` end to end, today vs defaults
    python bench/bench_dedup.py --scale 20000,200000 # per-stage docs/s and memory growth with n

Paragraphs (250-2000 characters) come from this machine: man pages, the packaged python-docs
snapshot, standard-library docstrings (`synthloop.curation.planted.human_paragraphs`). A share of
them are followed later by a copy with 2%, 5% or 10% of its words edited (replaced, deleted or
inserted), a share by a re-cased, re-spaced exact copy. Recall: planted copies removed (by exact or
near dedup), per edit rate and length; precision: removed documents that are planted copies.
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import rensa
from rich.console import Console
from rich.table import Table

from synthloop.curation import ExactDedup, NearDedup, PIIStage, QualityFilter
from synthloop.curation.config import NearDedupConfig, QualityConfig
from synthloop.curation.minhash import band_keys, shingles
from synthloop.curation.planted import (
    HumanPlanted,
    edit_words,
    human_paragraphs,
    plant_near_duplicates,
)
from synthloop.pipeline import RunContext, Stage, run_stages
from synthloop.records import Record

CHUNK = 256
BINS = ((250, 500), (500, 1000), (1000, 2001))
console = Console(width=160)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def records(docs: Sequence[str]) -> Iterator[list[Record]]:
    for i in range(0, len(docs), CHUNK):
        yield [Record(id=str(j), text=t) for j, t in enumerate(docs[i : i + CHUNK], start=i)]


def run_chain(stages: Sequence[Stage], docs: Sequence[str]) -> RunContext:
    """Stream `docs` through `stages` in chunks of 256, as the engine and `synthloop curate` do."""
    ctx = RunContext()
    for chunk in records(docs):
        for _ in run_stages(chunk, list(stages), ctx):
            pass
    return ctx


def balanced(paragraphs: Sequence[str], n: int, seed: int) -> list[str]:
    """Up to n/3 paragraphs from each length bin (long ones are rare on this machine)."""
    rng = random.Random(seed)
    out: list[str] = []
    for lo, hi in BINS:
        pool = [p for p in paragraphs if lo <= len(p) < hi]
        out += rng.sample(pool, min(len(pool), n // len(BINS)))
    short = [p for p in paragraphs if len(p) < BINS[0][1] and p not in set(out)]
    out += rng.sample(short, min(len(short), n - len(out)))
    return out


# -- the previous implementation, kept here as the baseline -----------------------------------------
class BaselineNear(Stage):
    """Today's NearDedup before this change: word 5-grams, 128 perms, 32x4 bands, a bucket keeps its
    first occupant, estimated Jaccard >= 0.7 decides."""

    name = "dedup_near"

    def __init__(self) -> None:
        self.buckets: list[dict[int, int]] = [{} for _ in range(32)]
        self.sigs: list[np.ndarray] = []

    def run(self, recs: Any, ctx: RunContext) -> Iterator[Record]:
        batch = list(recs)
        sets = [shingles(r.main_text(), 5) for r in batch]
        sigs = np.asarray(rensa.RMinHash.digest_matrix_from_token_sets(sets, 128, 42).to_rows(), dtype=np.uint32) \
            if batch else np.zeros((0, 128), dtype=np.uint32)
        for r, sig, keys in zip(batch, sigs, band_keys(sigs, 32).tolist()):
            slot = len(self.sigs)
            self.sigs.append(sig)
            cands = {h for b, k in zip(self.buckets, keys) if (h := b.setdefault(k, slot)) != slot}
            if any(np.count_nonzero(self.sigs[c] == sig) / 128 >= 0.7 for c in cands):
                ctx.reject(r, self.name, "near_duplicate")
            else:
                yield r


# -- near dedup -------------------------------------------------------------------------------------
def near_report(corpus: HumanPlanted, ctx: RunContext) -> dict[str, float]:
    removed = {int(r.id) for r in ctx.rejected}
    copies = {c for _, c in corpus.near} | {c for _, c in corpus.exact}
    out: dict[str, float] = {}
    for rate in sorted(set(corpus.near.values())):
        for lo, hi in BINS:
            pairs = [c for (o, c), r in corpus.near.items() if r == rate and lo <= len(corpus.docs[o]) < hi]
            out[f"{rate:.0%} {lo}-{hi - 1}"] = len(set(pairs) & removed) / len(pairs) if pairs else float("nan")
        pairs = [c for (_, c), r in corpus.near.items() if r == rate]
        out[f"{rate:.0%} all"] = len(set(pairs) & removed) / len(pairs) if pairs else float("nan")
    exact = {c for _, c in corpus.exact}
    out["exact"] = len(exact & removed) / len(exact) if exact else float("nan")
    out["precision"] = len(removed & copies) / len(removed) if removed else 1.0
    out["false removals"] = len(removed - copies)
    return out


def bench_near(corpus: HumanPlanted) -> None:
    rows: dict[str, dict[str, float]] = {}
    speed: dict[str, float] = {}
    for name, make in (("synthloop (2-gram LSH + word edit similarity)", lambda: NearDedup(NearDedupConfig())),
                       ("baseline (5-gram MinHash, J>=0.7)", BaselineNear)):
        t, ctx = timed(functools.partial(run_chain, [ExactDedup(), make()], corpus.docs))
        rows[name] = near_report(corpus, ctx)
        speed[name] = len(corpus.docs) / t
    table = Table(title=f"near-duplicate recall ({len(corpus.docs)} docs: {len(corpus.near)} edited copies, "
                        f"{len(corpus.exact)} exact copies)")
    table.add_column("measure")
    for name in rows:
        table.add_column(name, justify="right")
    for key in next(iter(rows.values())):
        fmt = "{:.0f}" if key == "false removals" else "{:.3f}"
        table.add_row(key, *(fmt.format(r[key]) for r in rows.values()))
    table.add_row("docs/s (exact + near, one process)", *(f"{speed[n]:,.0f}" for n in rows))
    console.print(table)


# -- semantic dedup ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SemanticRow:
    chain: str
    name: str
    embedder: str  # key into the loaded embedders
    candidates: Literal["lsh", "lexical"]  # "lsh" (embed every record) or "lexical" (the gate)
    near: str = ""  # "" (the stage alone), "baseline" or "synthloop" near dedup before it
    same_pieces: bool = False  # the gate may see the embedder's word pieces (skip texts equal to a kept one's)


#: embedder key -> (load_embedder keyword arguments, calls split into pieces of this size (0: whole))
EMBEDDERS: dict[str, tuple[dict[str, Any], int]] = {
    "today": ({"backend": "sentence-transformers", "batch_size": 64, "max_tokens": 256}, 64),
    "torch 256 b16": ({"backend": "torch", "batch_size": 16, "max_tokens": 256, "padded": True}, 0),
    "onnx 256 b16": ({"backend": "onnx", "batch_size": 16, "max_tokens": 256, "padded": True}, 0),
    "onnx 256 b64": ({"backend": "onnx", "batch_size": 64, "max_tokens": 256, "padded": True}, 0),
    "onnx 128 b16": ({"backend": "onnx", "batch_size": 16, "max_tokens": 128, "padded": True}, 0),
    "onnx unpadded": ({"backend": "onnx"}, 0),  # today's defaults: unpadded passes of <= 256 word pieces
    "onnx unpadded fused": ({"backend": "onnx", "fused_ops": ("SkipLayerNormalization", "BiasGelu")}, 0),
}
SEMANTIC_ROWS = [
    SemanticRow("stage alone", "today: sentence-transformers, b64, 256 tok, embed all", "today", "lsh"),
    SemanticRow("stage alone", "torch, sorted, b16, 256 tok, embed all", "torch 256 b16", "lsh"),
    SemanticRow("stage alone", "onnx, sorted, b16, 256 tok, embed all", "onnx 256 b16", "lsh"),
    SemanticRow("stage alone", "onnx, sorted, b64, 256 tok, embed all", "onnx 256 b64", "lsh"),
    SemanticRow("stage alone", "onnx, sorted, b16, 128 tok, embed all", "onnx 128 b16", "lsh"),
    SemanticRow("stage alone", "onnx, unpadded, 256 tok, embed all", "onnx unpadded", "lsh"),
    SemanticRow("stage alone", "onnx, unpadded + SkipLN/BiasGelu fusions, embed all", "onnx unpadded fused", "lsh"),
    SemanticRow("stage alone", "lexical gate + today's embedder", "today", "lexical"),
    SemanticRow("stage alone", "lexical gate + onnx b16 256 tok (previous default)", "onnx 256 b16", "lexical"),
    SemanticRow("stage alone", "lexical gate + onnx b16 128 tok", "onnx 128 b16", "lexical"),
    SemanticRow("stage alone", "lexical gate + onnx unpadded", "onnx unpadded", "lexical"),
    SemanticRow("stage alone", "lexical gate + onnx unpadded + same-pieces skip (default)", "onnx unpadded", "lexical",
                same_pieces=True),
    SemanticRow("exact+near+semantic", "today (5-gram near, embed all)", "today", "lsh", "baseline"),
    SemanticRow("exact+near+semantic", "synthloop (2-gram near, gate, onnx unpadded, default)", "onnx unpadded", "lexical",
                "synthloop", same_pieces=True),
]


class Counting:
    """An embedder that counts the texts it was given; `token_ids` is the embedder's only when
    `pieces` (else None, as for an embedder without word pieces)."""

    def __init__(self, embed: Callable[[Sequence[str]], np.ndarray], pieces: bool = False) -> None:
        self.embed, self.n = embed, 0
        self.vecs: list[np.ndarray] = []  # every call's output, in order
        self.token_ids = getattr(embed, "token_ids", None) if pieces else None

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.n += len(texts)
        self.vecs.append(np.asarray(self.embed(texts)))
        return self.vecs[-1]


def load_embedders(threads: int) -> tuple[dict[str, Callable[[Sequence[str]], np.ndarray]], dict[str, float]]:
    """Every embedder of EMBEDDERS, loaded once (with its load time); "today" splits each call into
    pieces of 64, as the stage did before (it embedded `batch_size` records at a time)."""
    from synthloop.curation.semantic import load_embedder

    out: dict[str, Callable[[Sequence[str]], np.ndarray]] = {}
    load_s: dict[str, float] = {}
    for key, (kwargs, piece) in EMBEDDERS.items():
        load_s[key], embed = timed(functools.partial(load_embedder, threads=threads, **kwargs))
        out[key] = embed if not piece else functools.partial(_in_pieces, embed, piece)
        out[key](["warm-up: first calls allocate", "a longer warm-up text " * 40])
    return out, load_s


def _in_pieces(embed: Callable[[Sequence[str]], np.ndarray], piece: int, texts: Sequence[str]) -> np.ndarray:
    return np.concatenate([embed(texts[i : i + piece]) for i in range(0, len(texts), piece)])


def bench_semantic(corpus: HumanPlanted, n: int, threads: int) -> None:
    """Each row's embedder and candidate search on the first `n` planted documents, against today's
    path (sentence-transformers in calls of 64, 256 tokens, every record embedded) in the same run:
    the stage alone (the worst case: every planted copy and its original must be embedded), and
    end to end after exact and near dedup (the pipeline's order). `cos to today` is each text's
    embedding against today's (embed-all rows): the cost of truncating or changing the backend;
    `decisions != today` counts documents kept by one and removed by the other, against the first
    row of the same chain."""
    from synthloop.curation import SemanticDedup
    from synthloop.curation.config import SemanticDedupConfig

    embedders, load_s = load_embedders(threads)
    sub = HumanPlanted(docs=corpus.docs[:n], near={k: v for k, v in corpus.near.items() if k[1] < n},
                       exact={k for k in corpus.exact if k[1] < n})
    ref: np.ndarray | None = None  # today's embedding of every document, from the first row
    table = Table(title=f"semantic dedup, {n} planted documents, MiniLM-L6 on {threads} threads "
                        f"(load: {', '.join(f'{k} {v:.1f}s' for k, v in load_s.items())})")
    for col in ("chain", "embedder, candidates", "docs/s", "speed-up", "CPU docs/s", "texts embedded", "cos to today min / p1",
                "recall 2%", "recall 5%", "recall 10%", "precision", "decisions != today"):
        table.add_column(col, justify="left" if col in ("chain", "embedder, candidates") else "right")
    base = base_cpu = 0.0
    first_removed: dict[str, set[str]] = {}  # chain -> the documents its first row removed
    for row in SEMANTIC_ROWS:
        counting = Counting(embedders[row.embedder], row.same_pieces)
        near: list[Stage] = {"": [], "baseline": [ExactDedup(), BaselineNear()], "synthloop": [ExactDedup(), NearDedup()]}[row.near]
        stage = SemanticDedup(SemanticDedupConfig(candidates=row.candidates), embed=counting)
        c0 = time.process_time()
        t, ctx = timed(functools.partial(run_chain, [*near, stage], sub.docs))
        cpu = time.process_time() - c0
        rep = near_report(sub, ctx)
        removed = {r.id for r in ctx.rejected}
        differ = len(removed ^ first_removed.setdefault(row.chain, removed))
        if row.embedder == "today" and row.candidates == "lsh" and not row.near:
            base, base_cpu, ref = n / t, n / cpu, np.concatenate(counting.vecs)
        cos = "" if row.candidates != "lsh" or row.near or ref is None else _cos_to(ref, np.concatenate(counting.vecs))
        table.add_row(row.chain, row.name, f"{n / t:,.1f}", f"{n / t / base:.1f}x", f"{n / cpu:,.1f} ({n / cpu / base_cpu:.1f}x)",
                      str(counting.n), cos, *(f"{rep.get(f'{r:.0%} all', float('nan')):.3f}" for r in (0.02, 0.05, 0.10)),
                      f"{rep['precision']:.3f}", str(differ))
    console.print(table)


def _cos_to(ref: np.ndarray, vecs: np.ndarray) -> str:
    cos = np.sum(ref * vecs, axis=1)
    return f"{cos.min():.4f} / {np.percentile(cos, 1):.4f}"


def bench_cli(corpus: HumanPlanted, n: int) -> None:
    """`synthloop curate --semantic` end to end (a subprocess: start, model load, every stage) on the
    first `n` planted documents, today's semantic settings (a --config file) against the defaults."""
    import json
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    src = str(Path(__file__).resolve().parents[1] / "src")
    table = Table(title=f"synthloop curate --semantic, {n} planted documents, end to end")
    for col in ("settings", "wall s", "docs/s", "speed-up", "accepted"):
        table.add_column(col, justify="left" if col == "settings" else "right")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "in.jsonl"
        data.write_text("".join(json.dumps({"id": str(i), "text": d}) + "\n" for i, d in enumerate(corpus.docs[:n])))
        today = Path(tmp) / "today.toml"
        today.write_text('[curate.semantic]\ncandidates = "lsh"\nbackend = "sentence-transformers"\nbatch_size = 64\n')
        base = 0.0
        for name, extra in (("today: embed all, sentence-transformers (--config)", ["--config", str(today)]),
                            ("defaults: lexical gate, onnx unpadded, same-pieces skip", [])):
            out = Path(tmp) / f"out{len(extra)}"
            cmd = [sys.executable, "-m", "synthloop.cli", "curate", str(data), "--out", str(out), "--semantic", *extra]
            t, _ = timed(functools.partial(subprocess.run, cmd, check=True, capture_output=True,
                                           env={**os.environ, "PYTHONPATH": src}))
            base = base or n / t
            accepted = sum(1 for _ in (out / "accepted.jsonl").open())
            table.add_row(name, f"{t:.1f}", f"{n / t:,.1f}", f"{n / t / base:.1f}x", str(accepted))
    console.print(table)


# -- PII --------------------------------------------------------------------------------------------
def bench_pii(paragraphs: Sequence[str], seed: int) -> None:
    """Every planted value must be gone from the accepted output (separators ignored, so a card
    redacted in part counts as leaked); every documentation-range value must be left as it is."""
    from synthloop.curation.planted import plant_pii

    corpus = plant_pii(paragraphs, n=3000, seed=seed)
    stage, ctx, out = PIIStage(), RunContext(), {}
    t0 = time.perf_counter()
    for chunk in records(corpus.docs):
        out.update({int(r.id): r.main_text() for r in run_stages(chunk, [stage], ctx)})
    dt = time.perf_counter() - t0

    def squash(text: str) -> str:
        return "".join(text.split()).replace("-", "")

    table = Table(title=f"planted PII in {len(corpus.docs)} paragraphs ({len(corpus.docs) / dt:,.0f} docs/s)")
    for col in ("kind", "planted", "leaked"):
        table.add_column(col, justify="right")
    kinds = sorted({k for _, k, _ in corpus.planted})
    for kind in kinds:
        vals = [(d, v) for d, k, v in corpus.planted if k == kind]
        leaked = [v for d, v in vals if squash(v) in squash(out[d])]
        table.add_row(kind, str(len(vals)), str(len(leaked)))
    lost = [v for d, v in corpus.kept if v not in out[d]]
    table.add_row("documentation / private values kept", str(len(corpus.kept)), f"{len(lost)} changed")
    console.print(table)


# -- cost at scale ----------------------------------------------------------------------------------
def synth_corpus(paragraphs: Sequence[str], n: int, seed: int) -> list[str]:
    """`n` documents made by splicing 2-12 random sentences of the human paragraphs (so they are
    distinct), 10% of them followed by a 5%-edited copy: the near index has real work to do."""
    rng = random.Random(seed)
    sentences = [s for p in paragraphs for s in p.split(". ") if len(s) > 30]
    pool = [w for s in sentences[:2000] for w in s.split()]
    docs: list[str] = []
    while len(docs) < n:
        doc = ". ".join(rng.choices(sentences, k=rng.randint(2, 12)))[:2000]
        docs.append(doc)
        if rng.random() < 0.1 and len(docs) < n:
            docs.append(edit_words(doc, 0.05, rng, pool))
    return docs


def _rss_kb() -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS"))


def measure_in_child(make: Callable[[], Stage], docs: Sequence[str]) -> tuple[float, float, str]:
    """Run a fresh stage over `docs` in a forked child: (docs/s, peak RSS growth in MB, note)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: time the stream, report peak resident growth over its starting size
        os.close(r)
        start = _rss_kb()
        stage = make()
        t = time.perf_counter()
        run_chain([stage], docs)
        dt = time.perf_counter() - t
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        index: Any = getattr(stage, "index", None)
        note = f"index {index.nbytes() / len(docs):,.0f} B/doc" if hasattr(index, "nbytes") else ""
        os.write(w, f"{len(docs) / dt}|{(peak - start) / 1024}|{note}".encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as fh:
        docs_s, mb, note = fh.read().split("|")
    os.waitpid(pid, 0)
    return float(docs_s), float(mb), note


def bench_scale(paragraphs: Sequence[str], n: int, seed: int) -> None:
    t, docs = timed(lambda: synth_corpus(paragraphs, n, seed))
    table = Table(title=f"cost per stage at {n:,} documents ({sum(map(len, docs)) / n:.0f} chars avg, built in {t:.0f}s; "
                        "each stage alone, streamed in chunks of 256, one process)")
    for col in ("stage", "docs/s", "peak RSS growth MB", "note"):
        table.add_column(col, justify="left" if col in ("stage", "note") else "right")
    stages: list[tuple[str, Callable[[], Stage]]] = [
        ("quality", lambda: QualityFilter(QualityConfig())), ("pii", PIIStage), ("dedup_exact", ExactDedup),
        ("dedup_near", lambda: NearDedup(NearDedupConfig()))]
    for name, make in stages:
        docs_s, mb, note = measure_in_child(make, docs)
        table.add_row(name, f"{docs_s:,.0f}", f"{mb:,.1f}", note)
    console.print(table)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=6000, help="paragraphs in the planted corpus (default 6000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--near-share", type=float, default=0.15, help="share of documents that are edited copies")
    ap.add_argument("--rates", default="0.02,0.05,0.10", help="edit rates, comma-separated")
    ap.add_argument("--no-near", action="store_true", help="skip the near-dedup table")
    ap.add_argument("--pii", action="store_true", help="also plant and check structured PII")
    ap.add_argument("--semantic", type=int, default=0, metavar="N", help="also time semantic dedup on N documents")
    ap.add_argument("--threads", type=int, default=2, help="embedding threads for --semantic (default 2)")
    ap.add_argument("--cli", type=int, default=0, metavar="N", help="also time `synthloop curate --semantic` on N documents")
    ap.add_argument("--scale", default="", metavar="N,N", help="per-stage cost at these corpus sizes")
    args = ap.parse_args()
    t, paragraphs = timed(human_paragraphs)
    console.print(f"{len(paragraphs)} human paragraphs found on this machine in {t:.1f}s")
    rates = tuple(float(r) for r in args.rates.split(","))
    corpus = plant_near_duplicates(balanced(paragraphs, args.n, args.seed), seed=args.seed, rates=rates,
                                   near_share=args.near_share)
    if not args.no_near:
        bench_near(corpus)
    if args.pii:
        bench_pii(paragraphs, args.seed)
    if args.semantic:
        bench_semantic(corpus, args.semantic, args.threads)
    if args.cli:
        bench_cli(corpus, args.cli)
    for n in (int(x) for x in args.scale.split(",") if x):
        bench_scale(paragraphs, n, args.seed)


if __name__ == "__main__":
    main()
