"""`provenance.json`: the machine-readable marking of a published dataset, beside the card.

The card says in prose that the data is synthetic; this sidecar says it to programs: what generated
the data (tool version, teacher backend and model, judge), when (the run's creation, the time of this
publish), with which verification (the verifiers that ran on accepted records, each judge's mode
from calibration), and how each record is marked (`source`, `synthetic_notice`). It only reads the
run directory. Format: docs/provenance.md (`format` names its version).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from synthloop.reports.funnel import read_recipe
from synthloop.storage import RunDir, atomic_write_text

FORMAT = "synthloop-provenance/1"
PROVENANCE_FILE = "provenance.json"


def provenance(rd: RunDir) -> dict[str, Any]:
    """The sidecar's content for the run in `rd` (its published rounds)."""
    manifest, recipe = rd.read_manifest(), read_recipe(rd)
    rounds = [] if manifest.published_round is None else list(range(manifest.published_round + 1))
    records = list(rd.records("accepted", rounds)) if rounds else []
    teachers = Counter((r.teacher.backend, r.teacher.model) for r in records)
    return {
        "format": FORMAT,
        "dataset": manifest.name,
        "synthetic": True,
        "generated_by": {
            "tool": "synthloop",
            "versions": manifest.versions,
            "recipe_hash": manifest.recipe_hash,
            "teacher": _backend(recipe.get("teacher", {})),
            "teachers_seen": [{"backend": b, "model": m, "records": n} for (b, m), n in sorted(teachers.items())],
            "judge": _judge(recipe.get("judge", {}), rd.path),
        },
        "when": {"run_created": manifest.created, "published": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "published_rounds": rounds, "status": manifest.status},
        "verification": {"verifiers": _verifiers(records), "accepted": len(records)},
        "records": _marking(records),
    }


def write_provenance(rd: RunDir) -> Path:
    """Write `provenance.json` in the run directory (called by publish); returns its path."""
    path = rd.path / PROVENANCE_FILE
    atomic_write_text(path, json.dumps(provenance(rd), indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    return path


def _backend(cfg: dict[str, Any]) -> dict[str, Any]:
    return {"backend": cfg.get("backend", "local"), "model": cfg.get("model", "")}


def _judge(cfg: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    from synthloop.verifiers.calibration import read_in_use

    if not cfg.get("enabled", True):
        return {"enabled": False}
    backend = cfg.get("backend")
    in_use = read_in_use(run_dir)
    return {"enabled": True, "rubric": cfg.get("rubric", "auto"), "min_score": cfg.get("min_score", 3.0),
            "backend": _backend(backend) if isinstance(backend, dict) else "teacher",
            "calibration": cfg.get("calibration", "builtin"),
            "in_use": {name: {"mode": v.get("mode", ""), "note": v.get("note", ""),
                              "balanced_accuracy": (v.get("calibration") or {}).get("balanced_accuracy")}
                       for name, v in sorted(in_use.items())}}


def _verifiers(records: list[Any]) -> list[dict[str, Any]]:
    """Each (stage, name) that left a verdict on an accepted record, with how many it passed."""
    seen: Counter[tuple[str, str]] = Counter()
    passed: Counter[tuple[str, str]] = Counter()
    advisory: Counter[tuple[str, str]] = Counter()
    for r in records:
        for v in r.verdicts:
            key = (v.stage, v.name)
            seen[key] += 1
            passed[key] += v.ok
            advisory[key] += v.reason.startswith(("advisory:", "unjudged:"))
    return [{"stage": s, "name": n, "records": seen[(s, n)], "passed": passed[(s, n)],
             "advisory_or_unjudged": advisory[(s, n)]} for s, n in sorted(seen)]


def _marking(records: list[Any]) -> dict[str, Any]:
    return {"fields": {"source": "per record: synthetic | golden | external",
                       "synthetic_notice": "per record: the human-readable AI-generated notice"},
            "source_counts": dict(sorted(Counter(r.source for r in records).items())),
            "with_synthetic_notice": sum(1 for r in records if r.synthetic_notice)}


__all__ = ["FORMAT", "PROVENANCE_FILE", "provenance", "write_provenance"]
