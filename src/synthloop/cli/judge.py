"""`synthloop judge calibrate RECIPE` measures the recipe's judge on the calibration set of each
rubric it uses and prints the figures (balanced accuracy, score distribution, share right per kind,
long vs short correct answers, agreement with the worked examples shuffled) and whether the judge
may gate.

Results are kept in the run directory (`judge_calibration.json`, and the judge's answers in
`cache.sqlite`), so the run that follows reuses them. Exits 0 when every judge may gate or is
allowed as advisory, 1 when the run would refuse it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from synthloop.recipe import Recipe, load_recipe


def add_parser(sub: Any) -> None:
    p = sub.add_parser("judge", help="measure the recipe's judge before it gates", description=__doc__)
    cmds = p.add_subparsers(dest="judge_command", metavar="SUBCOMMAND", required=True)
    c = cmds.add_parser("calibrate", help="the judge's figures on each rubric's labelled calibration set")
    c.add_argument("recipe", help="path to a recipe TOML file, e.g. examples/python-textbook.toml")
    c.add_argument("--runs-dir", type=Path, default=None, help="where run directories go (default: the recipe's output.runs_dir)")
    c.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value, e.g. --set judge.calibration=my-set.jsonl (VALUE is TOML)")
    c.add_argument("--no-order-check", action="store_true", help="skip the second pass with the worked examples shuffled")
    c.set_defaults(func=cmd_calibrate)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from synthloop.cli.run import _parse_overrides

    recipe = load_recipe(args.recipe, overrides=_parse_overrides(args.overrides))
    cfg = recipe.judge_backend
    print(f"judge calibration: {cfg.backend}:{cfg.model}, min_score {recipe.judge.min_score:g}, "
          f"min_balanced_accuracy {recipe.judge.min_balanced_accuracy:.2f}")
    rows = asyncio.run(_calibrate(recipe, args.runs_dir, order_check=not args.no_order_check))
    for row in rows:
        print(_describe(row))
    refused = [row["error"] for row in rows if row["error"]]
    for line in refused:
        print(f"synthloop: error: {line}", file=sys.stderr)
    return 1 if refused else 0


def _describe(row: dict[str, Any]) -> str:
    """A few lines per rubric: the summary and the decision, the score distribution, per kind."""
    cal = row["calibration"]
    if cal is None:
        return f"{row['rubric']}: not measured ([judge] calibration = \"none\") -> {row['mode']}"
    length = cal.length
    return "\n".join([
        f"{row['rubric']}: {cal.summary()} -> {row['mode']}",
        f"  scores: good {cal.scores['good']}, bad {cal.scores['bad']}",
        "  right per kind: " + ", ".join(f"{k} {v:.2f}" for k, v in cal.by_kind.items()),
        f"  correct answers accepted: long {_num(length.get('long_accepted'))}, short {_num(length.get('short_accepted'))}; "
        f"mean score long {_num(length.get('long_mean_score'))}, short {_num(length.get('short_mean_score'))}",
    ])


async def _calibrate(recipe: Recipe, runs_dir: Path | None, *, order_check: bool) -> list[dict[str, Any]]:
    """Calibrate the judge of each rubric the recipe uses, as the engine would build it."""
    from synthloop.backends import make_backend, make_client
    from synthloop.backends.cache import RequestCache
    from synthloop.verifiers.calibration import CALIBRATION_FILE, JudgeNotCalibrated, calibrate_judge, gate_mode
    from synthloop.verifiers.judge import LLMJudge

    cfg = recipe.judge_backend
    run_dir = recipe.run_dir(runs_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    cache = RequestCache(run_dir / "cache.sqlite")
    client = make_client(cfg, backend=make_backend(cfg), cache=cache)
    panel = [(make_client(b, cache=cache), b.model) for b in recipe.judge.panel]
    rows: list[dict[str, Any]] = []
    try:
        from synthloop.tasks import judge_rubric

        rubrics = {judge_rubric(t) if recipe.judge.rubric == "auto" else recipe.judge.rubric for t in recipe.plan.tasks}
        for rubric in sorted(rubrics - {"none"}):
            judge = LLMJudge(client, rubric=rubric, min_score=recipe.judge.min_score, model=cfg.model,
                             max_tokens=cfg.max_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
                             samples=recipe.judge.samples, panel=panel)
            cal = await calibrate_judge(judge, recipe.judge, cache_path=run_dir / CALIBRATION_FILE, order_check=order_check)
            mode: str
            try:
                mode, error = gate_mode(cal, recipe.judge), ""
            except JudgeNotCalibrated as e:
                mode, error = "refused", str(e)
            rows.append({"rubric": judge.rubric.name, "calibration": cal, "mode": mode, "error": error})
    finally:
        for member, _ in panel:
            await member.backend.aclose()
        await client.aclose()
    return rows


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


__all__ = ["add_parser", "cmd_calibrate"]
