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


def test_accuracy_counts_undecided_verdicts_apart() -> None:
    from synthloop.audit.compare import accuracy
    from synthloop.records import Record, Verdict

    recs = [Record(id="a", verdicts=[Verdict("verify", "tests", True, reason="passed: 2/2"),
                                     Verdict("judge", "judge", True, 4.0, "advisory: uncalibrated judge")]),
            Record(id="b", verdicts=[Verdict("verify", "tests", False, reason="failed: 0/2"),
                                     Verdict("verify", "snippets", True, reason="unchecked: no runnable claim"),
                                     Verdict("judge", "judge", True, reason="unjudged: no rubric")])]
    acc = accuracy(recs)
    assert acc["verifiers"]["tests"] == {"decided": 2, "pass_rate": 0.5}
    assert acc["verifiers"]["snippets"] == {"decided": 0, "pass_rate": None, "unchecked": 1}
    assert acc["judge_scored"] == 0 and acc["judge_mean_score"] is None and acc["advisory_judge_mean_score"] == 4.0
    assert (acc["judge_advisory"], acc["judge_unjudged"]) == (1, 1)
