"""The dataset card: Hugging Face style YAML front matter + a human summary, marking the data as
synthetic (AI-generated) and saying by what."""

from __future__ import annotations

import json
from typing import Any

from synthloop.reports.funnel import Funnel
from synthloop.storage import Manifest


def status_line(m: Manifest) -> str:
    """`finished`, or `not finished (<why>)`, with the published round when it is not the last."""
    if m.finished:
        return "finished"
    why = m.stopped_reason or "interrupted"
    if why.startswith("collapse"):
        kept = "nothing is published" if m.published_round is None else f"published the last good round ({m.published_round})"
        return f"stopped: {why}; {kept}"
    return f"not finished ({why})"


def render_card(manifest: Manifest, recipe: dict[str, Any], f: Funnel, review: dict[str, int] | None = None,
                safety: dict[str, Any] | None = None) -> str:
    teacher = recipe.get("teacher", {})
    teacher_name = f"{teacher.get('backend', '?')}:{teacher.get('model', '?')}"
    judge = recipe.get("judge", {})
    front = {
        "pretty_name": manifest.name,
        "language": ["en"],
        "tags": ["synthetic", "synthloop", "ai-generated"],
        "task_categories": ["text-generation"],
        "synthetic": True,
        "generated_by": {"tool": "synthloop", "version": manifest.versions.get("synthloop", "?"), "teacher": teacher_name},
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": _published_shards(manifest)}]}],
        "dataset_info": {"planned": f.planned, "accepted": f.accepted, "rejected": f.rejected,
                         **({f"human_{k}" if not k.startswith("human") else k: v for k, v in review.items()} if review else {})},
    }
    lines = ["---", *_yaml(front), "---", ""]
    lines += [
        f"# {manifest.name}",
        "",
        f"> **Synthetic data.** Every record in this dataset was written by a language model "
        f"(`{teacher_name}`) through synthloop, not by a person. Each record also says so in its "
        "`synthetic_notice` field and carries `source = \"synthetic\"`.",
        "",
        recipe.get("description", "") or "",
        "",
        "## How it was made",
        "",
        f"- Teacher: `{teacher_name}` (temperature {teacher.get('temperature')}, top_p {teacher.get('top_p')}, max_tokens {teacher.get('max_tokens')})",
        f"- Topics: {', '.join(recipe.get('plan', {}).get('topics', []))}",
        f"- Tasks: {', '.join(recipe.get('plan', {}).get('tasks', []))}",
        f"- Verification: code run against its tests in a sandbox: {recipe.get('verify', {}).get('code', False)}; "
        f"judge: {'rubric `' + str(judge.get('rubric')) + '`, min score ' + str(judge.get('min_score')) if judge.get('enabled') else 'off'}",
        f"- Seed: {manifest.seed}; recipe hash `{manifest.recipe_hash}`",
        f"- Status: {status_line(manifest)}",
        "",
        *_rounds(manifest),
        "## Counts",
        "",
        "| planned | accepted | rejected | not yet done |",
        "|---:|---:|---:|---:|",
        f"| {f.planned} | {f.accepted} | {f.rejected} | {f.pending} |",
        "",
    ]
    if f.by_reason:
        lines += ["### Rejections by stage and reason", "", "| stage | reason | count |", "|---|---|---:|"]
        lines += [f"| {s} | {r} | {n} |" for (s, r), n in f.by_reason.most_common()]
        lines.append("")
    lines += _human_review(review)
    if f.judge_scores:
        mean = sum(f.judge_scores) / len(f.judge_scores)
        lines += [f"Judge scores: mean {mean:.2f} over {len(f.judge_scores)} judged records.", ""]
    lines += [
        *_safety(safety),
        "## Tokens and cost",
        "",
        f"- Prompt tokens: {f.prompt_tokens}; completion tokens: {f.completion_tokens}",
        f"- Model requests behind the stored records: {f.requests} ({f.cached_requests} answered from the cache)",
        f"- Cost: ${f.cost_usd:.4f} (at the recipe's prices)",
        "",
        "## Files",
        "",
        "- `data/accepted/*.parquet`: the dataset (`datasets.load_dataset(\"parquet\", data_files=...)`)",
        "- `data/rejected/*.parquet`: every rejected record with `rejected_stage` and `rejected_reason`",
        "- `export/train.jsonl`: chat format (`messages`) for SFT trainers: the accepted records of the published rounds",
        *(["- `export/mix.jsonl`: the published round's training mix (golden + synthetic)"] if manifest.published_round is not None and any(r.mix for r in manifest.rounds) else []),
        "- `recipe.toml`, `manifest.json`: how to reproduce it",
        "",
    ]
    return "\n".join(lines)


def _human_review(review: dict[str, int] | None) -> list[str]:
    """What people changed (`synthloop review`): export/train.jsonl has these applied."""
    if review is None:
        return []
    return ["## Human review", "",
            f"{review['reviewed']} records were reviewed by people (`synthloop review`); `export/train.jsonl` applies their decisions.", "",
            "| human-accepted | human-rejected | edited | confirmed | flagged |", "|---:|---:|---:|---:|---:|",
            f"| {review['human_accepted']} | {review['human_rejected']} | {review['edited']} | {review['confirmed']} | {review['flagged']} |", "",
            "human-accepted: rejected by the pipeline, accepted by a person (now published); human-rejected: accepted by the "
            "pipeline, rejected by a person (no longer published); edited: published records carrying a person's edits.", ""]


def _safety(s: dict[str, Any] | None) -> list[str]:
    """Harmful / look-alike balance and refusal rates measured on the accepted replies."""
    if not s:
        return []
    acc, rate = s.get("accepted", {}), s.get("refusal_rate", {})

    def pct(v: Any) -> str:
        return "-" if v is None else f"{100 * v:.0f}%"

    share = s.get("lookalike_share")
    return ["## Safety balance", "",
            f"- Accepted: {acc.get('harmful', 0)} harmful requests with refusals, {acc.get('lookalike', 0)} benign look-alikes "
            f"with answers (look-alike share {pct(share)}), {acc.get('other', 0)} other",
            f"- Refusal rate of the replies: harmful {pct(rate.get('harmful'))}, look-alike {pct(rate.get('lookalike'))}",
            f"- Rejected by the refusal rule: {s.get('rejected', {}).get('over_refusal', 0)} over-refusals, "
            f"{s.get('rejected', {}).get('no_refusal', 0)} harmful requests answered", ""]


def _published_shards(m: Manifest) -> list[str]:
    last = -1 if m.published_round is None else m.published_round
    return [f"data/accepted/r{r:03d}-*.parquet" for r in range(last + 1)]


def _rounds(m: Manifest) -> list[str]:
    """One row per round: counts, mix, collapse verdict, and which round is published."""
    if len(m.rounds) <= 1 and m.rounds_planned <= 1:
        return []
    lines = [f"## Rounds ({len(m.rounds)} of {m.rounds_planned} run; published: "
             f"{'none' if m.published_round is None else 'rounds 0-' + str(m.published_round)})", "",
             "| round | planned | accepted | rejected | synthetic in mix | collapse |", "|---:|---:|---:|---:|---:|---|"]
    for s in m.rounds:
        mix = (s.mix or {}).get("synthetic_rows", "")
        lines.append(f"| {s.round} | {s.planned} | {s.accepted} | {s.rejected} | {mix} | {s.collapse.status if s.collapse else ''} |")
    return [*lines, ""]


def _yaml(value: Any, indent: int = 0) -> list[str]:
    """A small YAML emitter for the card's plain structure (scalars are JSON, which YAML reads)."""
    pad = " " * indent
    out: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                out.append(f"{pad}{k}:")
                out += _yaml(v, indent + 2)
            else:
                out.append(f"{pad}{k}: {json.dumps(v)}")
    else:
        for item in value:
            if isinstance(item, dict):
                sub = _yaml(item, indent + 2)
                out.append(f"{pad}- {sub[0].strip()}")
                out += sub[1:]
            else:
                out.append(f"{pad}- {json.dumps(item)}")
    return out
