"""`synthloop collapse check DATA --golden GOLDEN` measures the collapse indicators of a dataset
against a golden set; `synthloop collapse simulate SETUP` runs the seeded collapse experiments.

check exits 0 when every indicator is ok or warns (a warning line is printed), 1 when one fails.
simulate exits 0 when every measured figure is within its stated tolerance of the theory, else 1.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from synthloop.collapse.config import CollapseConfig
from synthloop.collapse.monitor import CollapseMonitor, CollapseReport, write_report
from synthloop.errors import InputError, MissingDependency

_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red", "skipped": "dim"}


def add_parser(sub: Any) -> None:
    p = sub.add_parser("collapse", help="model-collapse indicators and simulations", description=__doc__)
    cmds = p.add_subparsers(dest="collapse_command", metavar="SUBCOMMAND", required=True)
    _add_check(cmds)
    _add_simulate(cmds)


def _add_check(cmds: Any) -> None:
    c = cmds.add_parser("check", help="measure a dataset's collapse indicators against a golden set")
    c.add_argument("data", type=Path, help="synthetic data: JSONL/Parquet/CSV/.txt (one text per line) or a run directory")
    c.add_argument("--golden", required=True, help="golden set: 'python-docs' (built in) or a JSONL/Parquet/CSV/.txt file")
    c.add_argument("--text-field", default="text", help="column holding the text in DATA and GOLDEN files (default text; "
                   "rows with `messages` instead are read too)")
    c.add_argument("--embedder", choices=["minilm", "hash"], default="minilm",
                   help="minilm (all-MiniLM-L6-v2, needs the `local` extra) or hash (hashed bag of words)")
    c.add_argument("--max-texts", type=int, default=CollapseConfig().max_texts, help="texts per side for the embedding indicators")
    c.add_argument("--history", type=Path, help="a collapse history JSON: compare with its round 0 and append this round")
    c.add_argument("--round", type=int, default=0, help="this dataset's round number in --history (default 0)")
    c.add_argument("--out", type=Path, help="write the full report (values, raw numbers, statuses) as JSON")
    c.set_defaults(func=cmd_check)


def _add_simulate(cmds: Any) -> None:
    s = cmds.add_parser("simulate", help="seeded collapse experiments vs the published theory (JSON + PNG)")
    s.add_argument("setup", choices=["gaussian", "regression", "lm", "all"])
    s.add_argument("--out", type=Path, default=Path("collapse-sim"), help="output directory (default collapse-sim)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--generations", type=int, help="generations (default: gaussian 200, regression 20, lm 8)")
    s.add_argument("--seeds", type=int, help="replicates averaged (gaussian default 1000, regression 200)")
    s.add_argument("--n", type=int, help="gaussian: samples per generation (default 100)")
    s.add_argument("--keep-real", type=float, help="gaussian: share of real data kept each generation (default 0.2)")
    s.add_argument("--features", type=int, help="regression: d (default 10)")
    s.add_argument("--samples", type=int, help="regression: T samples per round (default 100)")
    s.add_argument("--temperature", type=float, help="lm: the low sampling temperature (default 0.7)")
    s.add_argument("--golden-share", type=float, help="lm: golden share of each generation's training tokens (default 0.5)")
    s.set_defaults(func=cmd_simulate)


# -- check ---------------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    synthetic = read_texts(args.data, args.text_field)
    train, heldout = golden_split(args.golden, args.text_field)
    cfg = CollapseConfig(embedder=args.embedder, max_texts=args.max_texts)
    monitor = CollapseMonitor(cfg, history_path=args.history)
    report = monitor.check(synthetic, train, heldout, round=args.round)
    con = _console()
    con.print(report_table(report, title=f"collapse check: {args.data} vs {args.golden} ({len(synthetic)} texts)"))
    if args.out:
        write_report(report, args.out)
        con.print(f"report written to {args.out}")
    if report.status == "warn":
        con.print(f"[yellow]warning:[/] {'; '.join(report.reasons)}", highlight=False)
    if report.status == "fail":
        con.print(f"[bold red]fail:[/] {'; '.join(report.reasons)}", highlight=False)
        return 1
    return 0


def _console() -> Console:
    """Wide enough for indicator names when the output is a file or a pipe (rich defaults to 80)."""
    con = Console()
    return con if con.is_terminal else Console(width=160)


def report_table(report: CollapseReport, title: str) -> Table:
    t = Table(title=title)
    for col, justify in (("indicator", "left"), ("value vs golden", "right"), ("judged", "right"), ("basis", "left"),
                         ("warn", "right"), ("fail", "right"), ("status", "left")):
        t.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in report.results.values():
        t.add_row(r.name, _fmt(r.value), _fmt(r.assessed), r.basis, r.warn, r.fail,
                  f"[{_STYLE[r.status]}]{r.status}[/]" + (f" ({r.reason})" if r.status == "skipped" else ""))
    return t


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f}"


def read_texts(path: Path, text_field: str = "text") -> list[str]:
    """Texts from a run directory (accepted records), a .txt file (one per line) or a table file."""
    if not path.exists():
        raise InputError(f"data not found: {path} (give a JSONL/Parquet/CSV/.txt file or a run directory)")
    if path.is_dir() and (path / "manifest.json").exists():
        from synthloop.storage import RunDir, read_records

        return [r.main_text() for r in read_records(RunDir(path).accepted_dir)]
    if path.suffix.lower() == ".txt":
        return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return _table_texts(path, text_field)


def _table_texts(path: Path, text_field: str) -> list[str]:
    """Every row's text, duplicates kept (the golden loader merges identical rows, which would hide
    exactly the repetition a collapse check looks for)."""
    from synthloop.grounding.readers import read_rows

    texts: list[str] = []
    for _, row in read_rows(path):
        if not isinstance(row, dict):
            continue
        value = row.get(text_field)
        if value is None and isinstance(row.get("messages"), list):
            value = "\n\n".join(str(m.get("content", "")) for m in row["messages"] if isinstance(m, dict))
        if isinstance(value, str) and value.strip():
            texts.append(value)
    if not texts:
        raise InputError(f"{path}: no row has a non-empty `{text_field}` (or `messages`) column: "
                         "set --text-field to the column holding the text")
    return texts


def golden_split(golden: str, text_field: str = "text") -> tuple[list[str], list[str]]:
    """(train, held-out) texts of the built-in golden set or of a file (split by the grounding loader)."""
    from synthloop.grounding import BUILTIN_GOLDEN_SETS, golden_texts, load_builtin

    if golden in BUILTIN_GOLDEN_SETS:
        g = load_builtin(golden)
    elif golden.lower().endswith(".txt"):
        return _split_lines(Path(golden))
    else:
        g = _load_table(Path(golden), text_field)
    return golden_texts(g, "train"), golden_texts(g, "heldout")


def _load_table(path: Path, text_field: str) -> Any:
    from synthloop.grounding import FieldMapping, load_golden_file
    from synthloop.grounding.readers import read_rows

    first = next((row for _, row in read_rows(path) if isinstance(row, dict)), {})
    mapping = (FieldMapping(messages_field="messages") if text_field not in first and "messages" in first
               else FieldMapping(text_field=text_field))
    return load_golden_file(path, mapping)


def _split_lines(path: Path) -> tuple[list[str], list[str]]:
    import xxhash

    from synthloop.grounding import is_heldout

    if not path.exists():
        raise InputError(f"golden file not found: {path}")
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    held = [is_heldout(xxhash.xxh3_64_hexdigest(line.encode("utf-8")), 0.1, 0) for line in lines]
    return [t for t, h in zip(lines, held) if not h], [t for t, h in zip(lines, held) if h]


# -- simulate ------------------------------------------------------------------------------------

#: CLI flag -> (setup, keyword argument of that setup's function).
_FLAGS = {
    "generations": {"gaussian": "generations", "regression": "generations", "lm": "generations"},
    "seeds": {"gaussian": "seeds", "regression": "seeds"},
    "n": {"gaussian": "n"},
    "keep_real": {"gaussian": "keep_real"},
    "features": {"regression": "d"},
    "samples": {"regression": "t"},
    "temperature": {"lm": "low_temperature"},
    "golden_share": {"lm": "golden_share"},
}


def cmd_simulate(args: argparse.Namespace) -> int:
    try:
        from synthloop.collapse.simulate import run_setup
    except ImportError as e:
        raise MissingDependency.for_package(e.name or "scipy", "collapse simulate", extra="local") from None
    setups = ["gaussian", "regression", "lm"] if args.setup == "all" else [args.setup]
    con = _console()
    t = Table(title=f"collapse simulations (seed {args.seed}) — curves in {args.out}/")
    for col in ("setup", "quantity", "measured", "theory", "tolerance", "ok"):
        t.add_column(col)
    all_ok = True
    for name in setups:
        kwargs = {kw: getattr(args, flag) for flag, per in _FLAGS.items()
                  if (kw := per.get(name)) and getattr(args, flag) is not None}
        result = run_setup(name, args.out, seed=args.seed, **kwargs)
        for row in result.summary:
            all_ok &= row.ok
            t.add_row(name, escape(row.quantity), _num(row.measured), _num(row.theory), escape(row.tolerance),
                      "[green]yes[/]" if row.ok else "[bold red]no[/]")
    con.print(t)
    return 0 if all_ok else 1


def _num(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{v:.4g}"
