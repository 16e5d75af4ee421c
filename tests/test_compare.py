"""`synthloop compare` on a fake-backend run against the built-in golden set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthloop.cli import main

RECIPE = """
name = "cmp"
seed = 5
[plan]
topics = ["itertools", "pathlib"]
max_records = 4
[teacher]
backend = "fake"
model = "fake-teacher"
price_prompt_per_1m = 1.0
price_completion_per_1m = 2.0
[curate.near]
threshold = 0.97
"""


def test_compare_table_on_fake_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE)
    assert main(["run", str(recipe), "--runs-dir", str(tmp_path / "runs"), "--no-progress"]) == 0
    run = tmp_path / "runs" / "cmp"
    assert main(["compare", "--golden", "python-docs", str(run)]) == 0
    out = capsys.readouterr().out
    for dim in ("availability", "cost", "privacy", "accuracy", "diversity", "structure"):
        assert dim in out
    t = json.loads((run / "compare.json").read_text())
    accepted = t["records"]["accepted"]
    assert accepted > 0 and t["records"]["golden"] > 500
    assert t["availability"]["synthetic_records_per_hour"] > 0 and t["availability"]["golden_records"] == t["records"]["golden"]
    assert t["cost"]["usd_per_accepted"] > 0 and t["cost"]["tokens_per_accepted"] > 0
    assert t["privacy"]["synthetic"]["records_with_pii_per_1000"] is not None
    assert t["accuracy"]["verifiers"]["python_tests"]["pass_rate"] == 1.0
    assert 0 < t["diversity"]["synthetic"]["distinct_2"] <= 1 and t["diversity"]["golden"]["texts"] == t["diversity"]["sample"] == accepted
    assert t["structure"]["synthetic"]["share_filled"]["answer"] == 1.0


def test_compare_refuses_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    assert main(["compare", "--golden", "python-docs", str(tmp_path)]) == 2
