"""The classroom loop: with a `[student]` section, every round ends with a student trained on the
round's mix and examined skill by skill on held-out human data, and the next round's plan goes
where the student is weak (by the student's allocator: `expected_gain` by default).

    round r:  ... mix -> student_hook: train (checkpoint per round) -> examine (per-skill accuracy,
              95% intervals, worst skill) -> plan for round r+1 (budget per skill, failed items as
              seeds) -> collapse check (golden held-out perplexity under the student)
    round r+1: the "student" steer turns that plan into cell weights and seed items

Everything a round learns is in `student/round-RRR/` (checkpoint, `eval.json`) and
`student/round-RRR-train.jsonl` (the training file when there is no mix) and in the manifest (`rounds[r].extra["student"]`), so a resumed run redoes neither
a finished training (its `COMPLETE` marker) nor a finished round.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthloop.pipeline.plan import SeedItem, cells, round_size, weights_by_axis
from synthloop.recipe import Recipe
from synthloop.rounds import RoundSummary, SteerResult, register_steer
from synthloop.storage import RoundState, atomic_write_text

if TYPE_CHECKING:
    from synthloop.rounds import Run
    from synthloop.student.config import StudentConfig
    from synthloop.student.evaluate import EvalItem, EvalResult

EVAL_JSON = "eval.json"
TRAIN_JSONL = "train.jsonl"


def student_hook(run: "Run", state: RoundState) -> None:
    """Train on the round's mix, examine, plan the next round; record it all in the manifest."""
    from synthloop.student.train import merged_dir, train_round

    cfg = _cfg(run.recipe)
    out = run.rd.student_dir(state.round)
    mix = training_file(run, state)
    previous = run.rd.student_dir(state.round - 1) if state.round > 0 else None
    train_round(cfg, mix, out, previous=previous)
    items, dropped = eval_items(run, mix)
    result = examine(cfg, out, items)
    state.extra["student"] = {
        **summarise(result), "decontaminated": len(dropped), "checkpoint": str(out),
        "trained_on": examples_per_skill(mix), "next": plan_next(run, state, result),
    }
    if run.recipe.collapse is not None:
        from synthloop.student.evaluate import student_logprob

        run.student_logprob = student_logprob(merged_dir(out))


def training_file(run: "Run", state: RoundState) -> Path:
    """The round's mix (`[grounding]`), else its accepted records as chat JSONL."""
    from synthloop.grounding.mix import MIX_JSONL, chat_row

    mix = run.rd.mix_dir(state.round) / MIX_JSONL
    if mix.is_file():
        return mix
    out = run.rd.student_dir(state.round)
    path = out.with_name(f"{out.name}-{TRAIN_JSONL}")  # beside the checkpoint: the trainer owns its folder
    rows = [json.dumps(chat_row(r), ensure_ascii=False) for r in run.rd.records("accepted", rounds=[state.round])]
    atomic_write_text(path, "".join(row + "\n" for row in rows))
    return path


def eval_items(run: "Run", mix: Path) -> tuple[list["EvalItem"], list[str]]:
    """The configured evaluation sets, decontaminated against what the student trained on."""
    from synthloop.grounding.mix import chat_row
    from synthloop.student.evaluate import decontaminate, load_eval_items

    cfg = _cfg(run.recipe)
    golden = [chat_row(r) for r in run.golden.heldout] if run.golden is not None else []
    items = load_eval_items(cfg.eval, golden_rows=golden, seed=run.recipe.seed)
    training = [json.loads(line) for line in mix.read_text(encoding="utf-8").splitlines() if line.strip()]
    return decontaminate(items, training)


def examine(cfg: "StudentConfig", out: Path, items: list["EvalItem"]) -> "EvalResult":
    """The round's evaluation, reused once written (a resumed run does not examine twice)."""
    from synthloop.student.evaluate import EvalResult, evaluate_checkpoint

    path = out / EVAL_JSON
    if path.is_file():
        return EvalResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
    result = evaluate_checkpoint(cfg, out, items)
    result.write(path)
    return result


def summarise(result: "EvalResult") -> dict[str, Any]:
    return {
        "per_skill": {k: round(s.accuracy, 4) for k, s in result.skills.items()},
        "intervals": {k: [round(s.low, 4), round(s.high, 4)] for k, s in result.skills.items()},
        "n": {k: s.n for k, s in result.skills.items()},
        "worst": result.worst,
        "mean": round(result.mean, 4),
    }


def examples_per_skill(mix: Path) -> dict[str, int]:
    """Synthetic training examples per skill in a mix (what the allocator counts as budget)."""
    counts: Counter[str] = Counter()
    for line in mix.read_text(encoding="utf-8").splitlines():
        row = json.loads(line) if line.strip() else {}
        if row and row.get("source", "synthetic") != "golden":
            counts[str(row.get("skill") or "")] += 1
    return dict(counts)


def plan_next(run: "Run", state: RoundState, result: "EvalResult") -> dict[str, Any]:
    """The allocator's plan for the next round, from every round's budget and accuracy so far."""
    from synthloop.student.steer import History, RoundOutcome, steer_round

    cfg = _cfg(run.recipe)
    rounds = []
    for s in run.manifest.rounds:
        done = s.extra.get("student") if s.round < state.round else None
        if done:
            rounds.append(RoundOutcome(budget=dict(done["trained_on"]), accuracy=dict(done["per_skill"])))
    mix = training_file(run, state)
    rounds.append(RoundOutcome(budget=examples_per_skill(mix), accuracy=result.accuracy()))
    history = History(rounds=rounds, cumulative=cfg.init == "continue", skills=list(run.recipe.plan.skills))
    plan = steer_round(history, round_size(run.recipe), cfg.steer, last_eval=result)
    seeds = [{"id": s.parent_id, "skill": s.skill, "text": s.question} for group in plan.seeds.values() for s in group]
    return {"budget": plan.budget, "weights": plan.weights, "seeds": seeds}


def student_steer(recipe: Recipe, summary: RoundSummary) -> SteerResult:
    """The "student" steer: the plan the student hook made at the end of the previous round."""
    nxt = (summary.extra.get("student") or {}).get("next")
    if not nxt:
        from synthloop.pipeline.plan import uniform_weights

        return SteerResult(uniform_weights(recipe))  # no examination recorded: the control arm's plan
    skills = {s: float(w) for s, w in nxt["weights"].items() if s in recipe.plan.skills}
    if not any(skills.values()):
        skills = dict.fromkeys(recipe.plan.skills, 1.0)
    return SteerResult(weights_by_axis(recipe, "skill", skills), seed_items(recipe, nxt.get("seeds") or []))


def seed_items(recipe: Recipe, seeds: list[dict[str, str]]) -> list[SeedItem]:
    """Failed evaluation items as seeds, spread over the cells of their skill (round robin)."""
    by_skill: dict[str, list[str]] = {}
    for c in cells(recipe):
        by_skill.setdefault(c.skill, []).append(c.key)
    out, used = [], Counter[str]()
    for s in seeds:
        keys = by_skill.get(s["skill"])
        if keys:
            out.append(SeedItem(s["id"], s["text"], keys[used[s["skill"]] % len(keys)]))
            used[s["skill"]] += 1
    return out


def _cfg(recipe: Recipe) -> "StudentConfig":
    assert recipe.student is not None, "the classroom needs a [student] section"
    return recipe.student


register_steer("student", student_steer)

__all__ = ["EVAL_JSON", "TRAIN_JSONL", "examine", "plan_next", "seed_items", "student_hook", "student_steer", "training_file"]
