"""`synthloop publish RUN`: rebuild export/, README.md and report.html from the run directory,
with the human decisions of `synthloop review` applied (the shards are never changed)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from synthloop.reports.publish import human_review_counts, publish
from synthloop.storage import RunDir


def add_parser(sub: Any) -> None:
    p = sub.add_parser("publish", help="re-export a run with the human review decisions applied", description=__doc__)
    p.add_argument("run", type=Path, help="a run directory, e.g. runs/python-textbook")
    p.set_defaults(func=cmd_publish)


def cmd_publish(args: argparse.Namespace) -> int:
    rd = RunDir(args.run)
    rd.read_manifest()
    publish(rd)
    review = human_review_counts(rd)
    with open(rd.export_dir / "train.jsonl", encoding="utf-8") as f:
        rows = sum(1 for _ in f)
    print(f"published {rd.path}: {rows} rows in {rd.export_dir / 'train.jsonl'}; card {rd.card_path}; report {rd.report_path}")
    if review is not None:
        print(f"human review applied: {review['human_accepted']} human-accepted, {review['human_rejected']} human-rejected, "
              f"{review['edited']} edited ({review['reviewed']} reviewed)")
    return 0
