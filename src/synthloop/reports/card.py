"""The dataset card: Hugging Face style YAML front matter + a human summary, marking the data as
synthetic (AI-generated) and saying by what."""

from __future__ import annotations

import json
from typing import Any

from synthloop.reports.funnel import Funnel


def render_card(manifest: dict[str, Any], recipe: dict[str, Any], f: Funnel) -> str:
    teacher = recipe.get("teacher", {})
    teacher_name = f"{teacher.get('backend', '?')}:{teacher.get('model', '?')}"
    judge = recipe.get("judge", {})
    front = {
        "pretty_name": manifest["name"],
        "language": ["en"],
        "tags": ["synthetic", "synthloop", "ai-generated"],
        "task_categories": ["text-generation"],
        "synthetic": True,
        "generated_by": {"tool": "synthloop", "version": manifest.get("versions", {}).get("synthloop", "?"), "teacher": teacher_name},
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "data/accepted/*.parquet"}]}],
        "dataset_info": {"planned": f.planned, "accepted": f.accepted, "rejected": f.rejected},
    }
    lines = ["---", *_yaml(front), "---", ""]
    lines += [
        f"# {manifest['name']}",
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
        f"- Seed: {manifest.get('seed')}; recipe hash `{manifest.get('recipe_hash')}`",
        f"- Status: {'finished' if manifest.get('finished') else 'not finished (' + (manifest.get('stopped_reason') or 'interrupted') + ')'}",
        "",
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
    if f.judge_scores:
        mean = sum(f.judge_scores) / len(f.judge_scores)
        lines += [f"Judge scores: mean {mean:.2f} over {len(f.judge_scores)} judged records.", ""]
    lines += [
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
        "- `export/train.jsonl`: chat format (`messages`) for SFT trainers",
        "- `recipe.toml`, `manifest.json`: how to reproduce it",
        "",
    ]
    return "\n".join(lines)


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
