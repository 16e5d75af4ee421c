"""`synthloop classroom RECIPE [--control]`: the classroom loop. Rounds of generate -> verify ->
curate -> mix -> train the student -> examine it skill by skill -> steer the next round to its
weaknesses (the recipe needs a [student] section). `--control` also runs a uniform-budget control
arm from the same recipe (run directory `<name>-uniform`) and prints both arms round by round."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from synthloop.errors import RecipeError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("classroom", help="train a student round by round, steered to its weak skills", description=__doc__)
    p.add_argument("recipe", help="a recipe with a [student] section, e.g. examples/classroom.toml")
    p.add_argument("--runs-dir", type=Path, default=None, help="where run directories go (default: the recipe's output.runs_dir)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a recipe value (TOML)")
    p.add_argument("--control", action="store_true", help="also run the uniform-budget control arm, side by side")
    p.set_defaults(func=cmd_classroom)


def cmd_classroom(args: argparse.Namespace) -> int:
    from synthloop.cli.run import _parse_overrides
    from synthloop.recipe import load_recipe
    from synthloop.rounds import run

    recipe = load_recipe(args.recipe, overrides=_parse_overrides(args.overrides))
    if recipe.student is None:
        raise RecipeError(f"{args.recipe} has no [student] section: add one (see docs/classroom.md) or use `synthloop run`")
    arms = [("targeted", recipe)]
    if args.control:
        control = recipe.model_copy(deep=True)
        control.name = f"{recipe.name}-uniform"
        control.rounds.steer = "uniform"
        arms.append(("uniform", control))
    results = {label: run(r, runs_dir=args.runs_dir) for label, r in arms}
    for label, res in results.items():
        print(f"{label}: {res.run_dir} ({'finished' if res.finished else 'stopped: ' + res.stopped_reason})")
    print(format_arms({label: res.run_dir for label, res in results.items()}))
    return 0 if all(r.finished for r in results.values()) else 1


def format_arms(run_dirs: dict[str, Path]) -> str:
    """Per round and arm: accuracy per skill, the mean and the worst skill."""
    from synthloop.storage import RunDir

    lines = []
    for label, path in run_dirs.items():
        for s in RunDir(path).read_manifest().rounds:
            st = s.extra.get("student") or {}
            per = st.get("per_skill") or {}
            skills = ", ".join(f"{k} {v:.2f}" for k, v in sorted(per.items()))
            lines.append(f"{label:9s} round {s.round}: {skills}  mean {st.get('mean', float('nan')):.2f}  worst {st.get('worst', '-')}")
    return "\n".join(lines)


__all__ = ["add_parser", "cmd_classroom", "format_arms"]
