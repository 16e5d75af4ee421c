"""Targeted vs uniform steering of a real student, at equal example budgets, on paired seeds.

Task family: the arithmetic skills of `synthloop.student.skills` (exact, program-checked answers;
evaluation items disjoint from training by construction). Per seed: round 0 trains on a uniform
mix (shared by both arms: same seed, same data); from round 1 the `uniform` arm keeps uniform
budgets and the `targeted` arm asks the `expected_gain` allocator. Every round adds `--examples`
new training problems (never seen by that arm before) and continues from the previous checkpoint.
Reported: per-skill, mean and worst-skill accuracy per round and arm, and the paired difference
(targeted - uniform) at the last round with a 95% t interval over seeds, plus an item-level
interval (pairs each held-out item within a seed; narrower, as it ignores training-seed noise).

    nice -n 10 python bench/bench_classroom.py --seeds 1 2 --rounds 2 --examples 160 --eval-items 50

Checkpoints and evaluations are cached under --out, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from synthloop.student import skills as sk  # noqa: E402
from synthloop.student.config import EvalConfig, SteerConfig, StudentConfig  # noqa: E402
from synthloop.student.evaluate import EvalItem, EvalResult, evaluate_checkpoint  # noqa: E402
from synthloop.student.steer import (  # noqa: E402
    History,
    RoundOutcome,
    _with_floor,
    allocate,
    marginal_response,
    register_allocator,
)
from synthloop.student.train import train  # noqa: E402

ARMS = ("uniform", "targeted")


@register_allocator("floor_only")
def floor_only(history: History, total: int, cfg: SteerConfig) -> dict[str, int]:
    """Ablation: a skill that did not rise gets its floor, every other skill the same share (no
    error, no rate): separates what cutting the unresponsive skill does from what the weights do."""
    rates = {s: marginal_response(history, s, cfg.response_min_gain) for s in history.all_skills()}
    return _with_floor({s: 0.0 if r == 0.0 else 1.0 for s, r in rates.items()}, total, cfg.floor_examples)


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--examples", type=int, default=400, help="training examples per round (all skills)")
    p.add_argument("--eval-items", type=int, default=200, help="held-out items per skill")
    p.add_argument("--skills", default="add,mul,frac,units")
    p.add_argument("--model", default="smollm2-135m", help="the pretrained student (--student pretrained)")
    p.add_argument("--student", choices=("pretrained", "tiny"), default="pretrained",
                   help="tiny: a Llama trained from scratch per seed (full fine-tuning, digits split), "
                        "small enough for 5+ seeds on 2 CPU cores")
    p.add_argument("--hidden", type=int, default=128, help="tiny student: hidden size")
    p.add_argument("--layers", type=int, default=4, help="tiny student: layers")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--answer-only", action="store_true",
                   help="train replies of 'Answer: N' alone (no reasoning line): ~10x cheaper to examine")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (SYNTHLOOP_TORCH_THREADS); 1 on a machine shared with other jobs")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--allocator", default="expected_gain", help="the targeted arm's allocator (steer.ALLOCATORS)")
    p.add_argument("--floor", type=int, default=None, help="floor examples per skill (default: half the uniform share)")
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--out", type=Path, default=Path("bench/out/classroom"))
    p.add_argument("--doc", type=Path, default=None, help="write the markdown table (and PNG beside it) here")
    return p.parse_args()


class Curriculum:
    """Fresh training problems per skill: a seeded permutation of each skill's training pool,
    consumed in order, so no arm sees the same problem twice."""

    def __init__(self, skills: list[str], seed: int, reasoning: bool = True) -> None:
        self.reasoning = reasoning
        self.pool = {s: random.Random(f"{s}|{seed}").sample(sk.problems(s, "train"), len(sk.problems(s, "train")))
                     for s in skills}
        self.used = {s: 0 for s in skills}

    def take(self, budget: dict[str, int]) -> list[dict[str, Any]]:
        """`budget[s]` problems per skill, continuing where the last call stopped; a pool smaller than
        what the rounds ask for (mul has 567 training problems) is cycled, so every example asked
        for is trained on (a repeat is a new pass over that problem, as an epoch would be)."""
        rows = []
        for s, n in budget.items():
            pool = self.pool[s]
            chosen = [pool[(self.used[s] + k) % len(pool)] for k in range(n)]
            self.used[s] += n
            rows += [{"id": f"{p.id}-{(self.used[s] - n + k) // len(pool)}", "skill": s, "source": "synthetic",
                      "messages": p.messages(self.reasoning)} for k, p in enumerate(chosen)]
        return rows


def run_round(cfg: StudentConfig, out: Path, rows: list[dict[str, Any]], previous: Path | None,
              items: list[EvalItem], seed: int) -> tuple[EvalResult, int]:
    """Train (or resume) one round and evaluate it (or read the cached evaluation); with the
    round's new assistant (teacher) tokens."""
    out.mkdir(parents=True, exist_ok=True)
    mix = out / "mix.jsonl"
    if not mix.is_file():
        random.Random(seed).shuffle(rows)
        mix.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    started = time.monotonic()
    result = train(cfg, mix, out / "student", previous=previous)
    teacher_tokens = result.trained_tokens // max(1, cfg.epochs)
    cached = out / "eval.json"
    if cached.is_file():
        return EvalResult.from_dict(json.loads(cached.read_text())), teacher_tokens
    ev = evaluate_checkpoint(cfg, out / "student", items)
    ev.write(cached)
    print(f"  {out.parent.name}/{out.name}: trained {result.examples} ex in {result.seconds:.0f} s, total "
          f"{time.monotonic() - started:.0f} s; acc {ev.accuracy()} worst {ev.worst}", flush=True)
    return ev, teacher_tokens


def run_seed(args: argparse.Namespace, seed: int, items: list[EvalItem]) -> dict[str, list[dict[str, Any]]]:
    """Both arms for one seed: [{budget, accuracy}] per round."""
    skills = args.skills.split(",")
    base = args.out / f"seed{seed}"
    cfg = StudentConfig(base_model=student_base(args, base, seed), seed=seed, epochs=args.epochs, lr=args.lr,
                        init="continue", method="full" if args.student == "tiny" else "lora",
                        batch_size=args.batch_size, system_prompt="" if args.student == "tiny" else StudentConfig().system_prompt,
                        eval=EvalConfig(sets=["arithmetic"], max_new_tokens=args.max_new_tokens,
                                        batch_size=64 if args.student == "tiny" or args.answer_only else 16))
    steer = SteerConfig(allocator=args.allocator, floor_examples=args.floor if args.floor is not None
                        else args.examples // (2 * len(skills)))
    budget0 = {s: n for s, n in zip(skills, _even(args.examples, len(skills)))}
    shared = Curriculum(skills, seed, not args.answer_only)
    r0, tokens0 = run_round(cfg, base / "round0", shared.take(budget0), None, items, seed)
    trace: dict[str, list[dict[str, Any]]] = {}
    for arm in ARMS:
        cur = Curriculum(skills, seed, not args.answer_only)
        cur.take(budget0)  # the same round-0 data as the shared run
        outcomes = [RoundOutcome(budget0, r0.accuracy())]
        prev, results, tokens = base / "round0" / "student", [r0], [tokens0]
        for rnd in range(1, args.rounds):
            history = History(outcomes, baseline={s: 0.0 for s in skills}, cumulative=True, skills=skills)
            arm_steer = steer if arm == "targeted" else steer.model_copy(update={"allocator": "uniform"})
            budget = allocate(history, args.examples, arm_steer)
            name = f"targeted-{args.allocator}" if arm == "targeted" else arm
            ev, used = run_round(cfg, base / f"{name}-round{rnd}", cur.take(budget), prev, items, seed * 100 + rnd)
            outcomes.append(RoundOutcome(budget, ev.accuracy()))
            prev = base / f"{name}-round{rnd}" / "student"
            results.append(ev)
            tokens.append(used)
        trace[arm] = [{"budget": o.budget, "accuracy": o.accuracy, "worst": r.worst, "teacher_tokens": t,
                       "correct": {i.id: i.correct for i in r.items}} for o, r, t in zip(outcomes, results, tokens)]
    return trace


def student_base(args: argparse.Namespace, seed_dir: Path, seed: int) -> str:
    """The pretrained model's name, or a fresh tiny model for this seed (its own initialisation)."""
    if args.student == "pretrained":
        return str(args.model)
    from synthloop.student.tiny import tiny_model

    base = seed_dir / "base"
    if not (base / "config.json").is_file():
        tiny_model(base, hidden=args.hidden, layers=args.layers, seed=seed, split_digits=True)
    return str(base)


def _even(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


# -- statistics ---------------------------------------------------------------------------------------
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def t_interval(diffs: list[float]) -> tuple[float, float, float]:
    """Mean and 95% t interval of paired differences (over seeds)."""
    m = statistics.fmean(diffs)
    if len(diffs) < 2:
        return m, float("nan"), float("nan")
    half = T95.get(len(diffs) - 1, 1.96) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    return m, m - half, m + half


def item_interval(traces: dict[int, dict[str, list[dict[str, Any]]]], rnd: int, skill: str | None) -> tuple[float, float, float]:
    """Mean paired item difference (targeted - uniform) over seeds x items of `skill` (None: all)."""
    d = []
    for tr in traces.values():
        u, t = tr["uniform"][rnd]["correct"], tr["targeted"][rnd]["correct"]
        d += [float(t[i]) - float(u[i]) for i in u if skill is None or i.startswith(skill + "-")]
    m = statistics.fmean(d)
    half = 1.96 * statistics.stdev(d) / math.sqrt(len(d)) if len(d) > 1 else float("nan")
    return m, m - half, m + half


def table(traces: dict[int, dict[str, list[dict[str, Any]]]], skills: list[str], rounds: int) -> str:
    lines = ["| round | arm | budget " + "/".join(skills) + " | teacher tokens | " + " | ".join(skills) + " | mean | worst |",
             "|---|---|---|---|" + "---|" * (len(skills) + 2)]
    for rnd in range(rounds):
        for arm in ARMS:
            rows = [tr[arm][rnd] for tr in traces.values()]
            acc = {s: statistics.fmean(r["accuracy"][s] for r in rows) for s in skills}
            mean = statistics.fmean(statistics.fmean(r["accuracy"].values()) for r in rows)
            worst = statistics.fmean(min(r["accuracy"].values()) for r in rows)
            budget = "/".join(str(round(statistics.fmean(r["budget"][s] for r in rows))) for s in skills)
            toks = round(statistics.fmean(r.get("teacher_tokens", 0) for r in rows))
            lines.append(f"| {rnd} | {arm} | {budget} | {toks:,} | " + " | ".join(f"{100 * acc[s]:.1f}" for s in skills)
                         + f" | {100 * mean:.1f} | {100 * worst:.1f} |")
    return "\n".join(lines)


def differences(traces: dict[int, dict[str, list[dict[str, Any]]]], skills: list[str], rnd: int) -> str:
    def per_seed(f: Any) -> list[float]:
        return [f(tr["targeted"][rnd]["accuracy"]) - f(tr["uniform"][rnd]["accuracy"]) for tr in traces.values()]

    lines = ["| metric (targeted - uniform, points) | per-seed diffs | mean [95% t, over seeds] | item-paired [95%] |",
             "|---|---|---|---|"]
    rows: list[tuple[str, Any, str | None]] = [("mean accuracy", lambda a: statistics.fmean(a.values()), None),
                                               ("worst-skill accuracy", lambda a: min(a.values()), "")]
    rows += [(s, (lambda a, s=s: a[s]), s) for s in skills]
    for name, f, skill in rows:
        d = per_seed(f)
        m, lo, hi = t_interval(d)
        item = "-" if skill == "" else "{:+.1f} [{:+.1f}, {:+.1f}]".format(*(100 * x for x in item_interval(traces, rnd, skill)))
        lines.append(f"| {name} | {', '.join(f'{100 * x:+.1f}' for x in d)} | {100 * m:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}] | {item} |")
    return "\n".join(lines)


def plot(traces: dict[int, dict[str, list[dict[str, Any]]]], skills: list[str], rounds: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(skills) + 1, figsize=(3 * (len(skills) + 1), 3), sharey=True)
    for ax, skill in zip(axes, [*skills, "worst"]):
        for arm, style in zip(ARMS, ("--o", "-s")):
            ys = [statistics.fmean((min(tr[arm][r]["accuracy"].values()) if skill == "worst"
                                    else tr[arm][r]["accuracy"][skill]) for tr in traces.values()) for r in range(rounds)]
            ax.plot(range(rounds), [100 * y for y in ys], style, label=arm)
        ax.set_title(skill)
        ax.set_xlabel("round")
        ax.set_xticks(range(rounds))
    axes[0].set_ylabel("accuracy (%), mean over seeds")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    args = parse()
    if args.threads is not None:
        os.environ["SYNTHLOOP_TORCH_THREADS"] = str(args.threads)
    logging.basicConfig(level=logging.WARNING)
    skills = args.skills.split(",")
    items = [EvalItem.from_row(r) for r in sk.eval_rows(skills, per_skill=args.eval_items, seed=0)]
    started = time.monotonic()
    traces = {}
    for seed in args.seeds:
        print(f"seed {seed}", flush=True)
        traces[seed] = run_seed(args, seed, items)
    minutes = (time.monotonic() - started) / 60
    report = (f"{table(traces, skills, args.rounds)}\n\nLast round ({args.rounds - 1}):\n\n"
              f"{differences(traces, skills, args.rounds - 1)}\n\n"
              f"{len(args.seeds)} seeds, {args.rounds} rounds, {args.examples} examples per round, "
              f"{args.eval_items} eval items per skill; wall time {minutes:.1f} min.")
    print(report)
    (args.out / f"results-{args.allocator}.json").write_text(json.dumps({str(k): v for k, v in traces.items()}) + "\n")
    if args.doc is not None:
        plot(traces, skills, args.rounds, args.doc.with_name(f"{args.doc.stem}-{args.allocator}.png"))
        args.doc.with_name(f"{args.doc.stem}-{args.allocator}.table.md").write_text(report + "\n")


if __name__ == "__main__":
    main()
