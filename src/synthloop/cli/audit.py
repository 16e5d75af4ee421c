"""`synthloop audit bias DATA --golden GOLDEN`: attribute distributions of a synthetic set against a
golden set (total variation, Jensen-Shannon, chi-squared, 95% bootstrap intervals), drift round over
round, and a counterfactual flip test of the quality filter. Exits 0 when nothing is flagged, 1 when
something is. Thresholds: flags, over an `[audit]` table in --config, over the defaults."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from synthloop.audit import AUDIT_FILE, BiasReport, audit_bias, load_config, load_set, write_report


def add_parser(sub: Any) -> None:
    p = sub.add_parser("audit", help="audit a generated set (bias)", description=__doc__)
    cmds = p.add_subparsers(dest="audit_command", metavar="SUBCOMMAND", required=True)
    b = cmds.add_parser("bias", help="attribute distributions vs golden, drift, counterfactual flips")
    b.add_argument("data", help="a run directory, or a JSONL/Parquet file")
    b.add_argument("--golden", required=True, help="'python-docs' (built in) or a JSONL/Parquet file")
    b.add_argument("--config", type=Path, help="a TOML file with an [audit] table of thresholds")
    b.add_argument("--max-tv", type=float, help="flag an axis whose total variation vs golden passes this (0.10)")
    b.add_argument("--max-js", type=float, help="flag an axis whose Jensen-Shannon divergence passes this (0.05)")
    b.add_argument("--max-drift-tv", type=float, help="flag drift between consecutive rounds above this (0.10)")
    b.add_argument("--max-flip-rate", type=float, help="flag counterfactual flip rates above this (0.02)")
    b.add_argument("--min-mentions", type=int, help="records per side mentioning an axis before it is judged (30)")
    b.add_argument("--bootstrap", type=int, help="bootstrap replicates (200)")
    b.add_argument("--counterfactual-sample", type=int, help="records swapped and re-decided; 0 skips (2000)")
    b.add_argument("--seed", type=int)
    b.add_argument("--out", type=Path, help="write the report as JSON (default: audit_bias.json in a run directory)")
    b.set_defaults(func=cmd_bias)


_OVERRIDES = ("max_tv", "max_js", "max_drift_tv", "max_flip_rate", "min_mentions", "bootstrap",
              "counterfactual_sample", "seed")


def cmd_bias(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, {k: getattr(args, k) for k in _OVERRIDES})
    report = audit_bias(load_set(args.data), load_set(args.golden), cfg)
    con = Console() if Console().is_terminal else Console(width=160)
    con.print(report_table(report))
    out = args.out or (Path(args.data) / AUDIT_FILE if Path(args.data).is_dir() else None)
    if out:
        write_report(report, out)
        con.print(f"report written to {out}")
    for flag in report.flags:
        con.print(f"[bold red]flag:[/] {flag}", highlight=False)
    if not report.flags:
        unjudged = [a.axis for a in report.axes if a.distance is None]
        con.print("[green]no axis flagged[/]" + (f" ({len(unjudged)} of {len(report.axes)} axes not judged: "
                                                  f"{', '.join(unjudged)}; see the status column)" if unjudged else ""))
    return 1 if report.flags else 0


def report_table(report: BiasReport) -> Table:
    t = Table(title=f"bias audit: {report.synthetic} ({report.records[0]}) vs {report.golden} ({report.records[1]})")
    for col in ("axis", "mentions syn/gold", "TV [95% CI]", "JS [95% CI]", "chi2 p", "status"):
        t.add_column(col)
    for a in report.axes:
        d = a.distance
        status = "[bold red]flag[/]" if a.flags else ("ok" if d else f"[dim]{a.status}[/]")
        t.add_row(a.axis, f"{a.mentions[0]}/{a.mentions[1]}",
                  f"{d.tv.value:.3f} [{d.tv.low:.3f}, {d.tv.high:.3f}]" if d else "—",
                  f"{d.js.value:.3f} [{d.js.low:.3f}, {d.js.high:.3f}]" if d else "—",
                  f"{d.p_value:.2g}" if d else "—", status)
    if report.counterfactual:
        cf = report.counterfactual
        t.add_row(f"counterfactual ({cf.decision})", f"{cf.swappable} swapped", f"flips {cf.flips}",
                  f"rate {cf.rate:.2%}", "—", "[bold red]flag[/]" if any(f.startswith("counterfactual") for f in report.flags) else "ok")
    return t
