"""`synthloop compare --golden GOLDEN RUN`: natural vs synthetic, measured on your own run.

Availability (accepted records per hour of pipeline work vs the golden set's size), cost (per
accepted record, from the records' usage), privacy (PII per 1,000 records), accuracy (verifier pass
rates, judge scores, advisory/unjudged counts), diversity (distinct-2, bigram entropy, compression)
and structure (schema completeness). Prints the table and writes `compare.json` into RUN."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from synthloop.audit.compare import compare_run, write_compare
from synthloop.audit.data import load_set
from synthloop.errors import InputError
from synthloop.storage import RunDir


def add_parser(sub: Any) -> None:
    p = sub.add_parser("compare", help="natural vs synthetic: a run's figures against a golden set", description=__doc__)
    p.add_argument("run", type=Path, help="a run directory")
    p.add_argument("--golden", required=True, help="'python-docs' (built in) or a JSONL/Parquet file")
    p.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    rd = RunDir(args.run)
    if not rd.manifest_path.exists():
        raise InputError(f"{args.run} is not a run directory (no manifest.json): give the folder `synthloop run` wrote")
    golden = load_set(args.golden)
    table = compare_run(rd, golden.records, args.golden)
    path = write_compare(rd, table)
    con = Console() if Console().is_terminal else Console(width=160)
    con.print(render_table(table))
    con.print(f"written to {path}")
    return 0


def render_table(t: dict[str, Any]) -> Table:
    out = Table(title=f"natural vs synthetic: {t['run']} vs {t['golden']}")
    for col in ("dimension", "synthetic (this run)", "natural (golden)"):
        out.add_column(col)
    av, cost, acc = t["availability"], t["cost"], t["accuracy"]
    syn_p, gold_p = t["privacy"]["synthetic"], t["privacy"]["golden"]
    syn_d, gold_d = t["diversity"]["synthetic"], t["diversity"]["golden"]
    syn_s, gold_s = t["structure"]["synthetic"], t["structure"]["golden"]
    out.add_row("availability", f"{_f(av['synthetic_records_per_hour'])} records/hour ({t['records']['accepted']} accepted)",
                f"{av['golden_records']} records (fixed)")
    out.add_row("cost", f"${_f(cost['usd_per_accepted'])} and {_f(cost['tokens_per_accepted'])} tokens per accepted record",
                "not measured (human labour)")
    out.add_row("privacy", f"{_f(syn_p['records_with_pii_per_1000'])} records with PII per 1,000",
                f"{_f(gold_p['records_with_pii_per_1000'])} per 1,000")
    rates = ", ".join(f"{k} {v['pass_rate']:.0%} of {v['decided']}" for k, v in acc["verifiers"].items()
                      if v["pass_rate"] is not None) or "no verifier decided"
    judge = f"; judge mean {_f(acc['judge_mean_score'])}" if acc["judge_scored"] else ""
    if acc["judge_advisory"] or acc["judge_unjudged"]:
        judge += (f"; judge: {acc['judge_advisory']} advisory (mean {_f(acc['advisory_judge_mean_score'])}, not gating), "
                  f"{acc['judge_unjudged']} unjudged")
    out.add_row("accuracy", rates + judge, acc["golden"])
    out.add_row("diversity", _div(syn_d), _div(gold_d))
    out.add_row("structure", _struct(syn_s), _struct(gold_s))
    return out


def _div(d: dict[str, Any]) -> str:
    if not d.get("texts"):
        return "no texts"
    return f"distinct-2 {_f(d['distinct_2'])}, entropy {_f(d['bigram_entropy_bits'])} bits, compression {_f(d['compression_ratio'])}"


def _struct(s: dict[str, Any]) -> str:
    filled = s["share_filled"]
    return ", ".join(f"{k} {v:.0%}" for k, v in filled.items() if v)


def _f(x: float | None) -> str:
    return "—" if x is None else f"{x:,.4g}"
