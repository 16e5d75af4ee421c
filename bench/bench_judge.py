"""Judge calibration figures on the built-in sets, against trivial baselines measured in the same run.

    PYTHONPATH=src nice -n 10 python bench/bench_judge.py                      # fake judge + baselines
    PYTHONPATH=src nice -n 10 python bench/bench_judge.py --smollm-pairs 6     # + the embedded SmolLM2-135M

Judges, each on the `textbook` and `instruction` sets (40 good/bad pairs each):
- fake: the fake backend's judge, a test double holding the sets' answer key (measures plumbing);
- always-accept: every record scores 5 (balanced accuracy 0.5 by construction);
- length: 5 when the answer is at least the set's median answer length, else 2;
- smollm2-135m: the embedded model through the real client, on a seeded subset of `--smollm-pairs`
  pairs per rubric (it runs at a few seconds to half a minute per judgement on 2 shared cores).
A record is accepted when its score is at least `--min-score` (the quickstart uses 2, the default 3).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from synthloop.backends import FakeBackend, make_backend, make_client
from synthloop.backends.cache import RequestCache
from synthloop.backends.client import Client
from synthloop.recipe import BackendConfig
from synthloop.verifiers.calibration import (
    BUILTIN_SETS,
    CalibrationItem,
    accepted,
    load_calibration_set,
    measure,
    score_items,
    shuffled_examples,
)
from synthloop.verifiers.judge import LLMJudge, register_fake_judge


def answer_length(item: CalibrationItem) -> int:
    return len(item.record.messages[-1]["content"]) if item.record.messages else len(item.record.text)


def baseline_scores(name: str, items: Sequence[CalibrationItem]) -> list[float | None]:
    if name == "always-accept":
        return [5.0] * len(items)
    cut = statistics.median(answer_length(i) for i in items)
    return [5.0 if answer_length(i) >= cut else 2.0 for i in items]


def subset(items: Sequence[CalibrationItem], pairs: int, seed: int = 0) -> list[CalibrationItem]:
    """Both items of `pairs` seeded-random pairs (all when `pairs` is 0)."""
    ids = sorted({i.pair for i in items})
    if pairs:
        ids = sorted(random.Random(seed).sample(ids, min(pairs, len(ids))))
    return [i for i in items if i.pair in set(ids)]


async def judge_figures(client: Client, rubric: str, items: list[CalibrationItem], min_score: float, order: bool) -> dict[str, object]:
    judge = LLMJudge(client, rubric=rubric, min_score=min_score)
    scores = await score_items(judge, items)
    figures = measure(items, scores, min_score)
    if order and (examples := shuffled_examples(judge)) is not None:
        again = await score_items(judge.with_examples(examples), items)
        figures["order_agreement"] = sum(accepted(a, min_score) == accepted(b, min_score) for a, b in zip(scores, again)) / len(items)
    return figures


def row(judge: str, rubric: str, f: dict[str, object], seconds: float) -> str:
    length = f["length"]
    assert isinstance(length, dict)
    gap = length.get("accept_gap")
    order = f.get("order_agreement")
    return (
        f"| {judge} | {rubric} | {f['n_good']}/{f['n_bad']} | {f['balanced_accuracy']:.2f} | {f['good_accepted']:.2f} | "
        f"{f['bad_rejected']:.2f} | {f['unparseable']} | {'-' if gap is None else f'{gap:+.2f}'} | "
        f"{'-' if order is None else f'{order:.2f}'} | {seconds:.1f} |"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--min-score", type=float, default=3.0)
    p.add_argument("--smollm-pairs", type=int, default=0, help="pairs per rubric for the embedded model (0: skip it)")
    p.add_argument("--smollm-order", action="store_true", help="also measure the embedded model's order agreement (doubles its time)")
    p.add_argument("--cache", type=Path, help="request cache for the embedded model (a re-run is then instant)")
    args = p.parse_args(argv)

    print("| judge | rubric | good/bad | balanced acc. | good accepted | bad rejected | unparseable | long-short acceptance | order agreement | seconds |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    register_fake_judge()
    sets = {r: list(load_calibration_set("builtin", r).items) for r in BUILTIN_SETS}
    for rubric, items in sets.items():
        for name in ("always-accept", "length"):
            t = time.perf_counter()
            print(row(name, rubric, measure(items, baseline_scores(name, items), args.min_score), time.perf_counter() - t))
        t = time.perf_counter()
        figures = asyncio.run(judge_figures(Client(FakeBackend()), rubric, items, args.min_score, order=True))
        print(row("fake (answer key)", rubric, figures, time.perf_counter() - t))
    if args.smollm_pairs:
        with tempfile.TemporaryDirectory() as tmp:
            cache = RequestCache(args.cache or Path(tmp) / "cache.sqlite")
            cfg = BackendConfig(backend="local", model="smollm2-135m", temperature=0.0, max_tokens=96)
            client = make_client(cfg, backend=make_backend(cfg), cache=cache)
            for rubric, items in sets.items():
                part = subset(items, args.smollm_pairs)
                t = time.perf_counter()
                figures = asyncio.run(judge_figures(client, rubric, part, args.min_score, order=args.smollm_order))
                print(row("smollm2-135m", rubric, figures, time.perf_counter() - t), flush=True)
                print(f"  scores {figures['scores']}; right per kind {figures['by_kind']}", file=sys.stderr, flush=True)
            cache.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
