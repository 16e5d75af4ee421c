"""`synthloop curate INPUT --out DIR`: run the curation stages (quality filters, PII, decontamination,
memorisation check, exact / near / semantic dedup) over any JSONL or Parquet file of text records."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table


def add_parser(sub: Any) -> None:
    p = sub.add_parser("curate", help="curate a JSONL/Parquet file of text records", description=__doc__)
    p.add_argument("input", help="a .jsonl or .parquet file; each row has a text field (other fields are kept)")
    p.add_argument("--out", required=True, help="output directory: accepted.jsonl, rejected.jsonl, stats.json")
    p.add_argument("--config", default=None, help="a TOML file with a [curate] table (the recipe's section)")
    p.add_argument("--text-field", default=None,
                   help="the field holding the text (default: the first of text, content, question, prompt, "
                        "problem, instruction, input; else chat `messages`)")
    p.add_argument("--format", dest="out_format", choices=["jsonl", "parquet"], default="jsonl", help="accepted output format")
    p.add_argument("--eval", dest="eval_sets", action="append", default=[], metavar="FILE",
                   help="an evaluation set to decontaminate against (JSONL/Parquet/text; repeatable)")
    p.add_argument("--golden", action="append", default=[], metavar="FILE",
                   help="human data the records must not copy long spans from (memorisation check; repeatable)")
    p.add_argument("--semantic", action="store_true", help="also run semantic dedup (loads all-MiniLM-L6-v2, slower)")
    p.add_argument("--pii", choices=["redact", "reject", "off"], default=None, help="what to do with PII (default: redact)")
    for name, what in [("quality", "heuristic quality filters"), ("exact", "exact dedup"), ("near", "near-duplicate (MinHash) dedup")]:
        p.add_argument(f"--no-{name}", action="store_true", help=f"skip {what}")
    p.set_defaults(func=cmd_curate)


def flag_updates(args: argparse.Namespace) -> dict[str, Any]:
    """CLI flags as dotted config keys; only the flags actually given, so the file's values stand."""
    updates: dict[str, Any] = {}
    if args.eval_sets:
        updates["decontam.eval_sets"] = list(args.eval_sets)
    if args.semantic:
        updates["semantic_dedup"] = True
    if args.pii == "off":
        updates["pii"] = False
    elif args.pii:
        updates["pii"] = True
        updates["pii_detect.action"] = args.pii
    for name, key in [("quality", "quality_filters"), ("exact", "exact_dedup"), ("near", "near_dedup")]:
        if getattr(args, f"no_{name}"):
            updates[key] = False
    return updates


def cmd_curate(args: argparse.Namespace) -> int:
    from synthloop.curation.runner import curate_file, load_curate_config, read_golden_texts

    cfg = load_curate_config(args.config, flag_updates(args))
    golden = read_golden_texts(args.golden) if args.golden else None
    result = curate_file(args.input, args.out, cfg, text_field=args.text_field, out_format=args.out_format, golden_texts=golden)
    console = Console()
    table = Table(title=f"synthloop curate: {result.rows} rows -> {result.accepted} accepted, {result.rejected} rejected")
    for col in ("stage", "seen", "kept", "rejected", "reasons", "counts"):
        table.add_column(col, justify="right" if col in ("seen", "kept", "rejected") else "left")
    if result.malformed:
        table.add_row("input", str(result.rows), str(result.rows - len(result.malformed)), str(len(result.malformed)),
                      _fmt(_categories(result.malformed)), "")
    for name, st in result.stages.items():
        table.add_row(name, str(st["seen"]), str(st["kept"]), str(st["rejected"]), _fmt(st["reasons"]), _fmt(st["extra"]))
    console.print(table)
    console.print(f"output: {result.out_dir}")
    return 0


def _categories(malformed: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for m in malformed:
        key = m["error"].split(":", 1)[0]
        counts[key] = counts.get(key, 0) + 1
    return counts


def _fmt(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
