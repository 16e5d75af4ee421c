"""Judges are calibrated before they gate, and judges that copy a worked example are asked again."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import pytest

from synthloop.backends.base import Request, Response
from synthloop.backends.client import Client, ParseFailure
from synthloop.backends.fake import FakeBackend, canned_responders
from synthloop.cli import main
from synthloop.errors import VerifierError
from synthloop.recipe import JudgeConfig
from synthloop.records import Record
from synthloop.verifiers.calibration import (
    BUILTIN_SETS,
    CALIBRATION_FILE,
    JudgeNotCalibrated,
    advisory_note,
    calibrate_judge,
    gate_mode,
    load_calibration_set,
    prepare_judges,
)
from synthloop.verifiers.judge import (
    LLMJudge,
    copies_example,
    example_reasons,
    fake_judgement,
    is_advisory,
    load_rubric,
    rotate_examples,
)


def judging(model: str = "fake") -> FakeBackend:
    """A fake backend answering judge requests with the canned judge (its own responders)."""
    return FakeBackend(model=model, responders={"judge:": fake_judgement})


def constant(score: int) -> FakeBackend:
    return FakeBackend(responder=lambda r: f"Score: {score}\nReason: looks fine to me")


# -- the built-in sets ----------------------------------------------------------------------------
@pytest.mark.parametrize("rubric", [r for r in BUILTIN_SETS if r != "refusal"])  # refusal: tests/test_safety_recipe.py
def test_builtin_sets_are_40_labelled_pairs_of_every_kind(rubric: str) -> None:
    items = load_calibration_set("builtin", rubric).items
    pairs: dict[str, list[str]] = {}
    for item in items:
        pairs.setdefault(item.pair, []).append(item.label)
    assert len(pairs) >= 40 and all(sorted(labels) == ["bad", "good"] for labels in pairs.values())
    kinds = Counter(i.kind for i in items)
    for kind in ("wrong_fact", "wrong_code", "wrong_output", "misses_question", "needless_refusal", "correct_short", "correct_long"):
        assert kinds[kind] >= 5, kind
    assert len({i.record.content_hash for i in items}) == len(items)  # no duplicate record


def test_no_builtin_set_for_other_rubrics_says_what_to_do() -> None:
    with pytest.raises(VerifierError, match='calibration = "my-set.jsonl"'):
        load_calibration_set("builtin", "safety")


def test_user_set_rows_are_validated_one_line(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text('{"label": "good", "text": "a"}\n{"label": "maybe", "text": "b"}\n')
    with pytest.raises(VerifierError, match=r"set.jsonl line 2: 'label' must be \"good\" or \"bad\", got 'maybe'"):
        load_calibration_set(str(path), "textbook")
    path.write_text('{"label": "good", "text": "a"}\n')
    with pytest.raises(VerifierError, match="needs records labelled good and bad"):
        load_calibration_set(str(path), "textbook")
    with pytest.raises(VerifierError, match="file not found"):
        load_calibration_set(str(tmp_path / "missing.jsonl"), "textbook")


# -- calibration -----------------------------------------------------------------------------------
def test_fake_judge_passes_the_builtin_sets_and_results_are_cached(tmp_path: Path) -> None:
    backend = judging()
    judge = LLMJudge(Client(backend), rubric="instruction", min_score=2)
    cache = tmp_path / CALIBRATION_FILE
    cal = asyncio.run(calibrate_judge(judge, JudgeConfig(), cache_path=cache, order_check=True))
    assert cal is not None
    assert (cal.balanced_accuracy, cal.n_good, cal.n_bad, cal.unparseable, cal.order_agreement) == (1.0, 40, 40, 0, 1.0)
    assert cal.scores == {"good": {"4": 40}, "bad": {"1": 40}}
    assert cal.length["accept_gap"] == 0.0 and cal.by_kind["needless_refusal"] == 1.0
    sent = len(backend.calls)
    assert sent == 160  # 80 items, then again with the examples shuffled
    again = asyncio.run(calibrate_judge(judge, JudgeConfig(), cache_path=cache))
    assert again == cal and len(backend.calls) == sent  # served from judge_calibration.json
    other = LLMJudge(Client(backend), rubric="instruction", min_score=3)
    asyncio.run(calibrate_judge(other, JudgeConfig(), cache_path=cache))
    assert len(backend.calls) == sent + 80  # another threshold is another calibration


def test_a_judge_that_cannot_grade_does_not_gate(tmp_path: Path) -> None:
    judge = LLMJudge(Client(constant(5)), rubric="textbook")
    cal = asyncio.run(calibrate_judge(judge, JudgeConfig()))
    assert cal is not None and cal.balanced_accuracy == 0.5 and cal.good_accepted == 1.0 and cal.bad_rejected == 0.0
    with pytest.raises(JudgeNotCalibrated, match=r"balanced accuracy 0.50 on builtin:textbook is below \[judge\] min_balanced_accuracy = 0.75.*allow_uncalibrated = true"):
        gate_mode(cal, JudgeConfig())
    assert gate_mode(cal, JudgeConfig(allow_uncalibrated=True)) == "advisory"
    assert gate_mode(cal, JudgeConfig(min_balanced_accuracy=0.5)) == "gate"
    assert advisory_note(cal, JudgeConfig()) == "uncalibrated judge (balanced accuracy 0.50 < 0.75)"


def test_calibration_none_needs_allow_uncalibrated() -> None:
    assert asyncio.run(calibrate_judge(LLMJudge(Client(constant(5))), JudgeConfig(calibration="none"))) is None
    with pytest.raises(JudgeNotCalibrated, match="an unmeasured judge may not gate"):
        gate_mode(None, JudgeConfig(calibration="none"))
    assert gate_mode(None, JudgeConfig(calibration="none", allow_uncalibrated=True)) == "advisory"


def test_an_advisory_judge_rejects_nothing_and_says_so(tmp_path: Path) -> None:
    judge = LLMJudge(Client(constant(1)), rubric="textbook")
    in_use = asyncio.run(prepare_judges([judge], JudgeConfig(allow_uncalibrated=True), cache_path=tmp_path / CALIBRATION_FILE))
    assert in_use["textbook"]["mode"] == "advisory" and in_use["textbook"]["calibration"]["balanced_accuracy"] == 0.5
    verdict = judge.verify(Record(id="a", text="x"))
    assert verdict.ok and verdict.score == 1.0 and is_advisory(verdict)
    assert verdict.reason == "advisory: uncalibrated judge (balanced accuracy 0.50 < 0.75): judge_score_low: 1/5 < 3: looks fine to me"
    assert json.loads((tmp_path / CALIBRATION_FILE).read_text())["in_use"] == in_use


def test_a_user_set_and_length_split_at_the_median(tmp_path: Path) -> None:
    rows = [{"label": "good", "text": "short and right"}, {"label": "good", "text": "long and right " * 20},
            {"label": "bad", "text": "LOW-QUALITY wrong"}, {"label": "bad", "text": "LOW-QUALITY wrong " * 20},
            {"label": "bad", "text": "judged by another rubric", "rubric": "instruction"}]
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    cal = asyncio.run(calibrate_judge(LLMJudge(Client(judging())), JudgeConfig(calibration=str(path))))
    assert cal is not None and (cal.n_good, cal.n_bad, cal.balanced_accuracy) == (2, 2, 1.0)
    assert cal.calibration_set == str(path) and cal.length["long_accepted"] == cal.length["short_accepted"] == 1.0


# -- judges do not copy ------------------------------------------------------------------------------
def test_a_copied_worked_example_is_unparseable() -> None:
    reasons = example_reasons(load_rubric("instruction"))
    assert copies_example("Correct, direct, and the example runs and prints what it says.", reasons)
    assert copies_example("correct direct and the example runs and prints what it says", reasons)
    assert copies_example("Correct, and the example runs and prints what it says.", reasons)  # near copy
    assert copies_example("Correct: `len` counts the keys of a dict.", reasons) is None
    judge = LLMJudge(Client(judging()), rubric="instruction")
    with pytest.raises(ParseFailure, match="copies_example"):
        judge.parse(Response("Score: 5\nReason: Correct, direct, and the example runs and prints what it says."))


def test_a_copying_judge_is_asked_again_with_the_examples_in_another_order() -> None:
    copied = "Score: 5\nReason: Correct, direct, and the example runs and prints what it says."
    backend = FakeBackend(script=[copied, "Score: 4\nReason: Right, `d.get` returns None for a missing key."])
    judge = LLMJudge(Client(backend), rubric="instruction")
    verdict = judge.verify(Record(id="a", text="How do I read a missing key? Use d.get(key)."))
    assert (verdict.ok, verdict.score) == (True, 4.0)
    first, second = backend.calls
    assert second.attempt == 1 and second.messages[-1] == first.messages[-1]
    assert second.messages[1:5] == first.messages[3:5] + first.messages[1:3]  # the two examples swapped


def test_rotate_examples_leaves_a_request_without_two_examples_alone() -> None:
    req = Request.chat([{"role": "system", "content": "s"}, {"role": "user", "content": "u"}], model="m")
    assert rotate_examples(req) == req


def test_k_samples_use_the_median() -> None:
    scores = iter(["Score: 2\nReason: thin", "Score: 5\nReason: great", "Score: 4\nReason: good"])
    backend = FakeBackend(responder=lambda r: next(scores))
    judge = LLMJudge(Client(backend), samples=3)
    verdict = judge.verify(Record(id="a", text="x"))
    assert verdict.score == 4.0 and verdict.reason == "judge_score: 4/5 (median of 3 of 3 samples: 2, 5, 4): good"
    assert [c.seed for c in backend.calls] == [0, 1, 2] and all(c.temperature > 0 for c in backend.calls)
    assert fake_judgement(judge.request(Record(id="b", text="x"))).startswith("Score: 4")


# -- end to end -------------------------------------------------------------------------------------
RECIPE = """
name = "cal"
[plan]
topics = ["itertools", "pathlib"]
max_records = 2
[teacher]
backend = "fake"
[curate.near]
threshold = 0.97   # the fake teacher's canned answers are one template a few words apart
[output]
shard_size = 2
"""


def test_a_run_with_a_judge_that_cannot_grade_stops_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from synthloop.rounds import run as run_recipe
    from synthloop.recipe import recipe_from_dict
    from synthloop.storage import RunDir, read_records
    from synthloop.tasks.textbook import fake_exercise, fake_explanation

    def responder(req: Request) -> str:
        if req.tag.startswith("judge"):
            return "Score: 5\nReason: lovely"
        return fake_exercise(req) if req.tag.endswith("exercise") else fake_explanation(req)

    import tomllib

    data = tomllib.loads(RECIPE)
    with pytest.raises(JudgeNotCalibrated, match="balanced accuracy 0.50"):
        run_recipe(recipe_from_dict(data), runs_dir=tmp_path / "a", backend=FakeBackend(responder))
    data["judge"] = {"allow_uncalibrated": True}
    result = run_recipe(recipe_from_dict(data), runs_dir=tmp_path / "b", backend=FakeBackend(responder))
    assert result.accepted == 2
    records = list(read_records(RunDir(result.run_dir).accepted_dir))
    assert all(is_advisory(r.verdicts[-1]) for r in records)
    in_use = json.loads((result.run_dir / CALIBRATION_FILE).read_text())["in_use"]
    assert in_use["textbook"]["mode"] == "advisory"


def test_cli_judge_calibrate_prints_the_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE + "[judge]\nmin_score = 3\n")
    assert main(["judge", "calibrate", str(recipe), "--runs-dir", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "balanced accuracy 1.00 on builtin:textbook (40 good, 40 bad" in out and "order agreement 1.00 -> gate" in out
    assert (tmp_path / "runs" / "cal" / CALIBRATION_FILE).is_file()


def test_a_panel_judges_on_every_backend_and_reports_agreement(tmp_path: Path) -> None:
    second = judging("second")  # answers with the fake judge
    judge = LLMJudge(Client(constant(5)), rubric="instruction", panel=[(Client(second), "second")])
    verdict = judge.verify(Record(id="a", text="plain"))
    assert verdict.score == 4.5 and "panel fake: 5, second: 4" in verdict.reason
    assert [c.model for c in second.calls] == ["second"]
    cal = asyncio.run(calibrate_judge(judge, JudgeConfig()))
    assert cal is not None and cal.panel["members"] == ["fake", "second"]
    assert cal.panel["balanced_accuracy"] == [0.5, 1.0] and cal.panel["agreement"] == 0.5
    assert "panel agreement 0.50" in cal.summary()
    # the panel's median: good items 4.5 (accepted), bad items 3 (accepted at min_score 3)
    assert cal.balanced_accuracy == 0.5


def test_recipe_panel_runs_end_to_end(tmp_path: Path) -> None:
    from synthloop.recipe import load_recipe
    from synthloop.rounds import run
    from synthloop.storage import RunDir, read_records

    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE + '[judge]\n[[judge.panel]]\nbackend = "fake"\nmodel = "panel-judge"\n')
    result = run(load_recipe(recipe), runs_dir=tmp_path / "runs", backend=FakeBackend(responders=canned_responders()))
    records = list(read_records(RunDir(result.run_dir).accepted_dir))
    assert result.accepted == 2 and all("panel-judge: 4" in r.verdicts[-1].reason for r in records)
    in_use = json.loads((result.run_dir / CALIBRATION_FILE).read_text())["in_use"]
    assert in_use["textbook"]["calibration"]["panel"]["agreement"] == 1.0
