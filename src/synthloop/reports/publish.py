"""Publishing: chat-format JSONL for SFT trainers in `export/`, the dataset card `README.md` and
`report.html`, all rebuilt from the run directory (reports only read outputs), so they are the same
whether the run finished in one go or was killed and resumed.

What is published is the run up to its last good round (`manifest.published_round`): a round that
failed its collapse check with `stop_on_fail`, and any round after it, is never exported.

    export/train.jsonl   accepted synthetic records of the published rounds, with their lineage
    export/mix.jsonl     the published round's training mix (golden + synthetic), with [grounding]
    provenance.json      machine-readable marking: what generated the data, when, verified how (docs/provenance.md)

With human decisions (`review/decisions.jsonl`, made by `synthloop review`), train.jsonl applies
them: a record a person rejected is left out, a rejected record a person accepted is put in, edits
are applied, and each reviewed row carries `human_review`; the card counts these. The shards are
never changed.
    export/dpo.jsonl     preference pairs (TRL's conversational DPO format: prompt/chosen/rejected),
                         when a task made them (`preference = "verifier"`)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from synthloop.grounding.mix import MIX_JSONL
from synthloop.records import Record
from synthloop.reports.card import render_card
from synthloop.reports.funnel import read_funnel, read_recipe
from synthloop.reports.html import render_html
from synthloop.reports.provenance import write_provenance
from synthloop.storage import RunDir, atomic_write, atomic_write_text


def publish(rd: RunDir) -> None:
    export_jsonl(rd)
    export_mix(rd)
    export_dpo(rd)
    funnel = read_funnel(rd)
    manifest, recipe = rd.read_manifest(), read_recipe(rd)
    review = human_review_counts(rd)
    write_provenance(rd)
    safety = safety_balance(rd)
    atomic_write_text(rd.card_path, render_card(manifest, recipe, funnel, review=review, safety=safety))
    atomic_write_text(rd.report_path, render_html(manifest, recipe, funnel, rd, review=review))


def safety_balance(rd: RunDir) -> dict[str, Any] | None:
    """The safety summary, when the run has tasks with a refusal policy (their tasks must be
    registered: the run's own process, or after loading its recipe)."""
    from synthloop.audit.safety import safety_summary

    summary = safety_summary(rd)
    acc = summary.get("accepted", {})
    return summary if acc.get("harmful") or acc.get("lookalike") else None


def human_review_counts(rd: RunDir) -> dict[str, int] | None:
    """What people changed in the published set, or None when nobody reviewed the run."""
    from synthloop.review.apply import review_counts, review_states

    states = review_states(rd)
    return None if states is None else review_counts(rd, published_rounds(rd), states).to_json()


def published_rounds(rd: RunDir) -> list[int]:
    last = rd.read_manifest().published_round
    return [] if last is None else list(range(last + 1))


def export_row(r: Record, human_review: dict[str, Any] | None = None) -> dict[str, Any]:
    """One SFT row: the conversation, and the lineage beside it (and the human review, if any)."""
    row = {
        "messages": r.messages,
        "id": r.id,
        "source": r.source,
        "synthetic": r.source != "golden",
        "synthetic_notice": r.synthetic_notice,
        "teacher": f"{r.teacher.backend}:{r.teacher.model}",
        "task": r.task,
        "topic": r.topic,
        "skill": r.skill,
        "round": r.round,
        "parent_ids": r.parent_ids,
        "content_hash": r.content_hash,
        # The reasoning on its own (it is also inline in the assistant turn), as reasoning-SFT trainers read it.
        "reasoning": r.reasoning,
        **({"seed_chunk": {k: v for k, v in r.meta["seed_chunk"].items() if k != "text"}} if "seed_chunk" in r.meta else {}),
    }
    if human_review is not None:
        row["human_review"] = human_review
    return row


def dpo_row(r: Record) -> dict[str, Any] | None:
    """One TRL DPO row (conversational: lists of messages), or None when the record has no pair."""
    pair = r.meta.get("preference")
    if not pair:
        return None
    return {"prompt": pair["prompt"], "chosen": pair["chosen"], "rejected": pair["rejected"],
            "id": r.id, "task": r.task, "decided_by": pair.get("decided_by", ""), "synthetic_notice": r.synthetic_notice}


def export_dpo(rd: RunDir) -> Path | None:
    """`export/dpo.jsonl`: the preference pairs of the published rounds (none: no file)."""
    out = rd.export_dir / "dpo.jsonl"
    rows = [row for r in rd.records("accepted", rounds=published_rounds(rd)) if (row := dpo_row(r)) is not None]
    if not rows:
        out.unlink(missing_ok=True)
        return None

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")

    return atomic_write(out, write)


def export_jsonl(rd: RunDir) -> Path:
    """`export/train.jsonl`: one `{"messages": [...], ...}` per accepted record of the published rounds."""
    out = rd.export_dir / "train.jsonl"

    from synthloop.review.apply import review_lineage, review_states, reviewed_records

    states = review_states(rd)

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            if states is None:
                for r in rd.records("accepted", rounds=published_rounds(rd)):
                    f.write(json.dumps(export_row(r), ensure_ascii=False) + "\n")
                return
            for r, s in reviewed_records(rd, published_rounds(rd), states):
                f.write(json.dumps(export_row(r, review_lineage(s)), ensure_ascii=False) + "\n")

    return atomic_write(out, write)


def export_mix(rd: RunDir) -> Path | None:
    """`export/mix.jsonl`: the published round's mix, when the run has one."""
    last = rd.read_manifest().published_round
    src = rd.mix_dir(last) / MIX_JSONL if last is not None else None
    out = rd.export_dir / "mix.jsonl"
    if src is None or not src.is_file():
        out.unlink(missing_ok=True)
        return None
    return atomic_write(out, lambda tmp: shutil.copyfile(src, tmp))


__all__ = ["dpo_row", "export_dpo", "export_jsonl", "export_mix", "export_row", "human_review_counts", "publish", "published_rounds"]
