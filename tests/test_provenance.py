"""The provenance sidecar of a fake-backend run states what generated it, when, and how it was checked."""

from __future__ import annotations

import json
from pathlib import Path

from synthloop.cli import main
from synthloop.reports.provenance import FORMAT, write_provenance
from synthloop.storage import RunDir

RECIPE = """
name = "prov"
seed = 3
[plan]
topics = ["itertools", "pathlib"]
max_records = 4
[teacher]
backend = "fake"
model = "fake-teacher"
[curate.near]
threshold = 0.97
"""


def test_provenance_sidecar(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE)
    assert main(["run", str(recipe), "--runs-dir", str(tmp_path / "runs"), "--no-progress"]) == 0
    rd = RunDir(tmp_path / "runs" / "prov")
    path = write_provenance(rd)
    data = json.loads(path.read_text())
    assert path.name == "provenance.json" and data["format"] == FORMAT and data["synthetic"] is True
    gen = data["generated_by"]
    assert gen["teacher"] == {"backend": "fake", "model": "fake-teacher"}
    assert gen["teachers_seen"][0]["model"] == "fake-teacher" and gen["versions"]["synthloop"]
    assert gen["judge"]["enabled"] is True and gen["judge"]["in_use"]
    assert all(v["mode"] in ("gate", "advisory") for v in gen["judge"]["in_use"].values())
    assert data["when"]["run_created"] and data["when"]["published_rounds"] == [0]
    names = {v["name"] for v in data["verification"]["verifiers"]}
    assert {"python_tests", "judge"} <= names
    accepted = data["verification"]["accepted"]
    assert accepted > 0 and data["records"]["with_synthetic_notice"] == accepted
    assert data["records"]["source_counts"] == {"synthetic": accepted}
