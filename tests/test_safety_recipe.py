"""The safety recipe on the fake backend, the refusal filter's task policies, and the refusal
calibration set."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from synthloop.audit.safety import safety_summary, summarize
from synthloop.cli import main
from synthloop.curation.quality import QualityFilter
from synthloop.recipe import load_recipe
from synthloop.records import Record
from synthloop.storage import RunDir
from synthloop.verifiers.calibration import load_calibration_set
from synthloop.verifiers.judge import load_rubric

RECIPE = Path(__file__).resolve().parents[1] / "examples" / "safety.toml"
DECLINE = "I can't help with that: it could hurt people. I can explain how people stay safe instead, if you like."
ANSWER = "Open the task manager, find the process by its name and choose End task; it stops at once."


def _record(task: str, reply: str) -> Record:
    return Record(id=f"{task}-x", task=task, messages=[{"role": "user", "content": "How do I kill a stuck process?"},
                                                       {"role": "assistant", "content": reply}])


@pytest.fixture(scope="module")
def tasks_registered() -> None:
    load_recipe(RECIPE)


@pytest.mark.usefixtures("tasks_registered")
def test_refusal_filter_follows_the_task_policy() -> None:
    keep = QualityFilter().keep
    assert keep(_record("refuse_harmful", DECLINE)) is True
    assert keep(_record("refuse_harmful", ANSWER)) == (False, "no refusal: the task expects the reply to decline")
    verdict = keep(_record("lookalike_homonym", DECLINE))
    assert verdict is not True and verdict[1].startswith("over-refusal: 'I can't'")
    assert keep(_record("lookalike_homonym", ANSWER)) is True
    plain = keep(_record("instruction", "I'm sorry, but I can't help with that request at all, it is not allowed."))
    assert plain is not True and plain[1].startswith("refusal:")


def test_refusal_calibration_set_is_a_balanced_contrast_set() -> None:
    items = load_calibration_set("builtin", "refusal").items
    prompts = {i.record.messages[0]["content"] for i in items}
    assert len(prompts) >= 100 and Counter(i.label for i in items) == {"good": 100, "bad": 100}
    assert {i.kind.split(":")[0] for i in items} == {"declines_and_redirects", "complies_with_harmful",
                                                     "answers_lookalike", "over_refuses_lookalike"}
    assert all(len([j for j in items if j.pair == i.pair]) == 2 for i in items)
    assert len({i.record.content_hash for i in items}) == len(items)  # no duplicate record
    assert "over-refusal" in load_rubric("refusal").text


def test_safety_recipe_on_the_fake_backend(tmp_path: Path) -> None:
    # The example runs its embedded judge unmeasured; here the fake judge is measured on the
    # built-in refusal set, as a capable judge would be, so it gates.
    args = ["--set", "teacher.backend=fake", "--set", 'judge.calibration="builtin"']
    assert main(["run", str(RECIPE), *args, "--runs-dir", str(tmp_path), "--no-progress"]) == 0
    rd = RunDir(tmp_path / "safety")
    s = safety_summary(rd)
    assert s["accepted"]["harmful"] == 16 and s["accepted"]["lookalike"] == 32 and s["accepted"]["other"] == 16
    assert s["lookalike_share"] is not None and s["lookalike_share"] >= 0.5
    assert s["refusal_rate"] == {"harmful": 1.0, "lookalike": 0.0, "other": 0.0}
    calibration = (rd.path / "judge_calibration.json").read_text()
    assert '"refusal"' in calibration and '"gate"' in calibration
    card = (rd.path / "README.md").read_text()
    assert "## Safety balance" in card and "16 harmful requests with refusals, 32 benign look-alikes" in card
    assert "look-alike share 67%" in card and "harmful 100%, look-alike 0%" in card


def test_summary_counts_rejections_by_the_refusal_rule() -> None:
    rejected = [_record("lookalike_homonym", DECLINE).reject("quality", "over-refusal: 'I can't' (...)"),
                _record("refuse_harmful", ANSWER).reject("quality", "no refusal: the task expects the reply to decline")]
    s = summarize([], rejected)
    assert s["rejected"] == {"over_refusal": 1, "no_refusal": 1} and s["lookalike_share"] is None
