"""`synthloop run RECIPE`: plan, generate, verify, judge, curate and publish; resumes if re-run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from synthloop.errors import RecipeError
from synthloop.recipe import load_recipe


def add_parser(sub: Any) -> None:
    p = sub.add_parser("run", help="run a recipe (resumes an interrupted run)", description=__doc__)
    p.add_argument("recipe", help="path to a recipe TOML file, e.g. examples/python-textbook.toml")
    p.add_argument("--runs-dir", type=Path, default=None, help="where run directories go (default: the recipe's output.runs_dir)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value, e.g. --set teacher.temperature=0.2 (VALUE is TOML)")
    p.add_argument("--dry-run", action="store_true", help="print the plan, request count and cost estimate; call no model (unless --preview N)")
    p.add_argument("--preview", type=int, default=0, metavar="N",
                   help="with --dry-run: send N planned records for real (teacher and judge; cached, and counted in the budget) "
                        "and estimate the cost from their measured output lengths")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs and CI)")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    recipe = load_recipe(args.recipe, overrides=_parse_overrides(args.overrides))
    console = Console(stderr=True)
    if args.preview and not args.dry_run:
        raise RecipeError("--preview N goes with --dry-run: run `synthloop run RECIPE --dry-run --preview N`")
    if args.preview < 0:
        raise RecipeError(f"--preview takes a number of records (at least 1), got {args.preview}")
    if args.dry_run:
        from synthloop.engines.dryrun import dry_run

        print(dry_run(recipe, preview_n=args.preview, runs_dir=args.runs_dir))
        return 0
    from synthloop.pipeline.plan import round_size
    from synthloop.rounds import run

    rounds = recipe.rounds.count
    planned = round_size(recipe) * rounds
    per_round = f" ({rounds} rounds)" if rounds > 1 else ""
    console.print(f"[bold]synthloop[/] run [cyan]{recipe.name}[/]: {planned} records planned{per_round}, teacher {recipe.teacher.backend}:{recipe.teacher.model}")
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[green]accepted {task.fields[acc]}[/] [red]rejected {task.fields[rej]}[/]"),
        TimeElapsedColumn(),
        console=console,
        disable=args.no_progress,
    ) as bar:
        task = bar.add_task("records", total=planned, acc=0, rej=0)

        def progress(acc: int, rej: int, total: int) -> None:
            bar.update(task, completed=acc + rej, acc=acc, rej=rej)

        result = run(recipe, runs_dir=args.runs_dir, progress=progress)
    print(f"run directory: {result.run_dir}")
    if result.rounds > 1:
        print(f"rounds: {result.rounds}, published round {result.published_round}")
    print(f"planned {result.planned}, accepted {result.accepted}, rejected {result.rejected}")
    print(f"requests: {result.requests_sent} sent, {result.requests_reused} reused from the cache")
    if result.stopped_reason.startswith("collapse"):
        print(f"stopped: {result.stopped_reason}; published the last good round ({result.published_round})")
        print(f"synthloop: model collapse detected at round {result.rounds - 1}: {result.stopped_reason}. Raise the golden "
              "share in [grounding], switch the mixing policy to accumulate, or set [collapse] stop_on_fail = false",
              file=sys.stderr)
        return 1
    if not result.finished:
        print(f"stopped before the end: {result.stopped_reason}. Run the same command again to continue.")
        return 1
    return 0


def _parse_overrides(items: list[str]) -> dict[str, Any]:
    import tomllib

    from synthloop.errors import RecipeError

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise RecipeError(f"--set expects KEY=VALUE, got {item!r} (e.g. --set teacher.temperature=0.2)")
        try:
            out[key.strip()] = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = raw  # a bare string
    return out


__all__ = ["add_parser", "cmd_run"]
