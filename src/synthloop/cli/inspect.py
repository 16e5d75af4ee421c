"""`synthloop inspect RUN`: the funnel (planned -> accepted), rejections by stage and reason,
tokens and cost, and a few sample records."""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from synthloop.reports.card import status_line
from synthloop.reports.funnel import read_funnel
from synthloop.storage import RunDir


def add_parser(sub: Any) -> None:
    p = sub.add_parser("inspect", help="show a run's funnel, rejection reasons and samples", description=__doc__)
    p.add_argument("run", type=Path, help="a run directory, e.g. runs/python-textbook")
    p.add_argument("--samples", type=int, default=2, help="accepted records to show (default 2)")
    p.add_argument("--rejected", type=int, default=1, help="rejected records to show (default 1)")
    p.set_defaults(func=cmd_inspect)


def cmd_inspect(args: argparse.Namespace) -> int:
    rd = RunDir(args.run)
    manifest = rd.read_manifest()
    f = read_funnel(rd)
    con = Console()
    con.print(f"[bold]{manifest.name}[/] — {status_line(manifest)}", highlight=False)
    if len(manifest.rounds) > 1 or manifest.rounds_planned > 1:
        rt = Table(title="rounds")
        for c in ("round", "planned", "accepted", "rejected", "collapse", "published"):
            rt.add_column(c, justify="right")
        last = -1 if manifest.published_round is None else manifest.published_round
        for s in manifest.rounds:
            rt.add_row(str(s.round), str(s.planned), str(s.accepted), str(s.rejected),
                       s.collapse.status if s.collapse else "-", "yes" if s.round <= last else "no")
        con.print(rt)
    t = Table(title="funnel")
    for c in ("planned", "accepted", "rejected", "pending", "accepted+rejected=planned"):
        t.add_column(c, justify="right")
    t.add_row(str(f.planned), str(f.accepted), str(f.rejected), str(f.pending), "yes" if f.pending == 0 else "not yet")
    con.print(t)
    if f.by_reason:
        r = Table(title="rejections")
        r.add_column("stage")
        r.add_column("reason")
        r.add_column("count", justify="right")
        for (stage, reason), n in f.by_reason.most_common():
            r.add_row(stage, reason, str(n))
        con.print(r)
    con.print(
        f"tokens: {f.prompt_tokens} prompt + {f.completion_tokens} completion; cost ${f.cost_usd:.4f}; "
        f"requests {f.requests} ({f.cached_requests} from cache)"
    )
    for rec in itertools.islice(rd.records("accepted"), args.samples):
        con.rule(f"accepted {rec.id} · {rec.topic} · {rec.task}")
        con.print(_excerpt(rec.messages[-1]["content"] if rec.messages else rec.main_text()), markup=False)
    for rec in itertools.islice(rd.records("rejected"), args.rejected):
        con.rule(f"rejected {rec.id} · {rec.rejected_stage}")
        con.print(f"reason: {rec.rejected_reason}", markup=False)
    return 0


def _excerpt(text: str, limit: int = 600) -> str:
    return text if len(text) <= limit else text[:limit] + " …"
