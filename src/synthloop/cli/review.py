"""`synthloop review RUN`: review a run in the browser (local app on 127.0.0.1), or export and
import its reviews without the app."""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path
from typing import Any

from synthloop.errors import StorageError
from synthloop.storage import RunDir


def add_parser(sub: Any) -> None:
    p = sub.add_parser("review", help="review a run's records in the browser: accept, reject, edit", description=__doc__)
    p.add_argument("run", type=Path, help="a run directory, e.g. runs/python-textbook")
    p.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765)")
    p.add_argument("--reviewer", default="", help="your name in the decisions log (default: your login)")
    p.add_argument("--export-calibration", type=Path, metavar="FILE", help="write reviewed records as a judge calibration set (JSONL) and exit")
    p.add_argument("--export-argilla", type=Path, metavar="FILE", help="write the records and reviews as Argilla record JSON and exit")
    p.add_argument("--export-label-studio", type=Path, metavar="FILE", help="write the records and reviews as Label Studio tasks JSON and exit")
    p.add_argument("--import", dest="import_file", type=Path, metavar="FILE", help="append the human answers of an Argilla or Label Studio JSON export and exit")
    p.add_argument("--agreement", action="store_true", help="print judge-vs-human and inter-reviewer agreement and exit")
    p.set_defaults(func=cmd_review)


def cmd_review(args: argparse.Namespace) -> int:
    from synthloop.review import Review, export_calibration

    rd = RunDir(args.run)
    if args.export_calibration:
        rd.read_manifest()
        n = export_calibration(rd, args.export_calibration)
        print(f"wrote {n} reviewed records to {args.export_calibration} (use it as [judge] calibration = \"{args.export_calibration}\")")
        return 0
    review = Review(rd, reviewer=args.reviewer or _login())
    if args.export_argilla or args.export_label_studio or args.import_file or args.agreement:
        return _files(review, args)
    try:
        from synthloop.review.app import serve
    except ModuleNotFoundError as e:
        raise StorageError(f"the review app needs {e.name}; install it with: pip install 'synthloop[review]'") from None
    print(f"reviewing {rd.path} ({review.index.count()} records) at http://127.0.0.1:{args.port}/  (Ctrl-C to stop)")
    serve(review, port=args.port)
    return 0


def _files(review: Any, args: argparse.Namespace) -> int:
    from synthloop.review import interchange

    if args.import_file:
        n = interchange.import_answers(review, args.import_file, source="import")
        print(f"imported {n} answers from {args.import_file}")
    for fmt, out in (("argilla", args.export_argilla), ("label-studio", args.export_label_studio)):
        if out:
            n = interchange.export(review, fmt, out)
            print(f"wrote {n} records to {out} ({fmt})")
    if args.agreement:
        _print_agreement(review)
    return 0


def _print_agreement(review: Any) -> None:
    a = review.agreement()
    for group, items in a["judge"].items():
        for x in items:
            print(f"judge vs human  {group:6} {x['group']:24} n={x['n']:<5} kappa={_f(x['kappa'])} accuracy={_f(x['accuracy'])}")
    rv = a["reviewers"]
    print(f"reviewers {rv['reviewers']}: {rv['double_reviewed']} double-reviewed, kappa={_f(rv['cohen_kappa'])} alpha={_f(rv['krippendorff_alpha'])}")


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "reviewer"
