"""Publishing: chat-format JSONL for SFT trainers in `export/`, and the dataset card `README.md`.

Both are rebuilt from the run directory's shards (reports only read outputs), so they are the same
whether the run finished in one go or was killed and resumed."""

from __future__ import annotations

import json
import os
from pathlib import Path

from synthloop.reports.card import render_card
from synthloop.reports.html import render_html
from synthloop.reports.funnel import read_funnel, read_recipe
from synthloop.storage import RunDir, read_records


def publish(rd: RunDir) -> None:
    export_jsonl(rd)
    funnel = read_funnel(rd)
    manifest, recipe = rd.read_manifest(), read_recipe(rd)
    _write(rd.path / "README.md", render_card(manifest, recipe, funnel))
    _write(rd.path / "report.html", render_html(manifest, recipe, funnel, rd.path))


def export_jsonl(rd: RunDir) -> Path:
    """`export/train.jsonl`: one `{"messages": [...], ...}` per accepted record, with its lineage."""
    out = rd.export_dir / "train.jsonl"
    rd.export_dir.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".jsonl.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for r in read_records(rd.accepted_dir):
            row = {
                "messages": r.messages,
                "id": r.id,
                "source": r.source,
                "synthetic": r.source != "golden",
                "synthetic_notice": r.synthetic_notice,
                "teacher": f"{r.teacher.backend}:{r.teacher.model}",
                "task": r.task,
                "topic": r.topic,
                "round": r.round,
                "content_hash": r.content_hash,
            }
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, out)
    return out


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
