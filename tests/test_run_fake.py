"""End to end on the fake backend: the CLI, the run directory, the card, the funnel invariant."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from synthloop.cli import main
from synthloop.storage import RunDir, read_records

RECIPE = """
name = "demo"
seed = 7
[plan]
topics = ["itertools", "pathlib", "f-strings"]
personas = ["a beginner", "an expert"]
max_records = 5
[teacher]
backend = "fake"
model = "fake-teacher"
price_prompt_per_1m = 1.0
price_completion_per_1m = 2.0
[output]
shard_size = 2
# The fake teacher's answers are one template with the topic and a variant number swapped, about
# 10% of their words apart: near-duplicates to the default near dedup (word similarity 0.82).
[curate.near]
threshold = 0.97
"""


def write_recipe(tmp_path: Path, text: str = RECIPE) -> Path:
    path = tmp_path / "recipe.toml"
    path.write_text(text)
    return path


def test_run_writes_complete_run_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = write_recipe(tmp_path)
    assert main(["run", str(recipe), "--runs-dir", str(tmp_path / "runs"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "planned 5, accepted 5, rejected 0" in out
    rd = RunDir(tmp_path / "runs" / "demo")
    for name in ("recipe.toml", "manifest.json", "cache.sqlite", "README.md", "export/train.jsonl"):
        assert (rd.path / name).exists(), name
    records = list(read_records(rd.accepted_dir))
    assert len(records) == 5
    r = records[0]
    assert r.source == "synthetic" and "AI-generated" in r.synthetic_notice
    assert r.teacher.model == "fake-teacher" and r.teacher.template_id == "textbook_explanation+textbook_exercise"
    assert r.reasoning.startswith("1.") and "def double" in r.answer and "assert" in r.tests
    assert [v.name for v in r.verdicts] == ["python_tests", "judge"]
    assert r.usage.requests == 3 and r.usage.cost_usd > 0  # 2 generation + 1 judge
    assert r.content_hash.startswith("v1:")
    rows = [json.loads(line) for line in (rd.export_dir / "train.jsonl").read_text().splitlines()]
    assert [m["role"] for m in rows[0]["messages"]] == ["user", "assistant"]
    assert rows[0]["synthetic"] is True
    card = (rd.path / "README.md").read_text()
    assert card.startswith("---\n") and "synthetic: true" in card and "fake:fake-teacher" in card
    assert "| 5 | 5 | 0 | 0 |" in card


def test_rerun_reuses_every_answer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = write_recipe(tmp_path)
    args = ["run", str(recipe), "--runs-dir", str(tmp_path / "runs"), "--no-progress"]
    assert main(args) == 0
    capsys.readouterr()
    # A finished run re-run does nothing; wipe the chunk journal to force every chunk to redo.
    rd = RunDir(tmp_path / "runs" / "demo")
    manifest = rd.read_manifest()
    first = sorted(r.content_hash for r in read_records(rd.accepted_dir))
    manifest.rounds[0].completed_chunks = []
    manifest.rounds[0].finished = False
    rd.write_manifest(manifest)
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "requests: 0 sent, 15 reused from the cache" in out
    assert sorted(r.content_hash for r in read_records(rd.accepted_dir)) == first


def test_rejections_are_kept_with_stage_and_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def wrong_solution(req: object) -> str:
        return (
            "Problem: Write `double(x)`.\nSteps:\n1. Multiply.\nSolution:\n```python\ndef double(x):\n    return x + 1\n```\n"
            "Tests:\n```python\nassert double(2) == 4\nassert double(5) == 10\n```\n"
        )

    from synthloop.backends.fake import FakeBackend, canned_responders
    from synthloop.recipe import load_recipe
    from synthloop.rounds import run

    # Responders belong to the backend instance: the canned answers, with the exercise replaced.
    responders = {**canned_responders(), "textbook:textbook_exercise": wrong_solution}
    result = run(load_recipe(write_recipe(tmp_path)), runs_dir=tmp_path / "runs", backend=FakeBackend(responders=responders))
    assert (result.accepted, result.rejected, result.planned) == (0, 5, 5)
    rd = RunDir(result.run_dir)
    rows = pq.read_table(rd.rejected_dir).to_pylist()
    assert {r["rejected_stage"] for r in rows} == {"verify:python_tests"}
    assert all(r["rejected_reason"].startswith("tests_failed") for r in rows)
    assert main(["inspect", str(rd.path)]) == 0
    out = capsys.readouterr().out
    assert "tests_failed" in out and "verify:python_tests" in out


def test_broken_recipe_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = write_recipe(tmp_path, RECIPE.replace("max_records = 5", "max_record = 5"))
    proc = subprocess.run(
        [sys.executable, "-m", "synthloop.cli", "run", str(bad), "--runs-dir", str(tmp_path / "runs")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "unknown key 'plan.max_record'" in proc.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('temperature = 0.7', 'temperature = "hot"'), "'teacher.temperature'"),
        (('name = "demo"', ''), "missing required key 'name'"),
        (('backend = "fake"', 'backend = "gpt"'), "'teacher.backend'"),
    ],
)
def test_recipe_errors_name_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str], change: tuple[str, str], expected: str) -> None:
    text = RECIPE.replace('model = "fake-teacher"', 'model = "fake-teacher"\ntemperature = 0.7')
    bad = write_recipe(tmp_path, text.replace(*change))
    assert main(["run", str(bad), "--runs-dir", str(tmp_path / "runs")]) == 2
    assert expected in capsys.readouterr().err


def test_dry_run_calls_no_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = write_recipe(tmp_path, RECIPE.replace('backend = "fake"', 'backend = "openai_compat"\nbase_url = "http://127.0.0.1:9/v1"'))
    assert main(["run", str(recipe), "--dry-run", "--runs-dir", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "5 records planned" in out
    assert "requests: 10 generation + 5 judge = 15" in out
    assert "rehearsal on the fake backend: 2 records" in out
    assert not (tmp_path / "runs").exists()


def test_parquet_reads_with_datasets(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    recipe = write_recipe(tmp_path)
    assert main(["run", str(recipe), "--runs-dir", str(tmp_path / "runs"), "--no-progress"]) == 0
    files = sorted(str(p) for p in (tmp_path / "runs" / "demo" / "data" / "accepted").glob("*.parquet"))
    ds = datasets.load_dataset("parquet", data_files=files, split="train", cache_dir=str(tmp_path / "hf"))
    assert ds.num_rows == 5
    assert ds[0]["source"] == "synthetic" and ds[0]["messages"][0]["role"] == "user"
    assert ds[0]["teacher"]["model"] == "fake-teacher"


def test_budget_cap_stops_cleanly_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from synthloop.backends.cache import RequestCache

    # The judge's calibration is measured (and cached) first; what it spent is in the cache's spend
    # ledger and counts against the cap, so the cap leaves room beyond it for one chunk but not the run.
    # Hard cap: each request reserves its worst case first (the first one to a model at the byte
    # bound, ~1150 tokens here).
    assert main(["judge", "calibrate", str(write_recipe(tmp_path)), "--runs-dir", str(tmp_path / "runs"), "--no-order-check"]) == 0
    ledger = RequestCache(tmp_path / "runs" / "demo" / "cache.sqlite")
    calibration_tokens = ledger.spent().tokens
    ledger.close()
    capped = write_recipe(tmp_path, RECIPE + f"[budget]\nmax_tokens = {calibration_tokens + 2500}\n")
    args = ["run", str(capped), "--runs-dir", str(tmp_path / "runs"), "--no-progress"]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "stopped before the end: budget reached" in out
    rd = RunDir(tmp_path / "runs" / "demo")
    manifest = rd.read_manifest()
    assert manifest.finished is False and 1 <= len(manifest.rounds[0].completed_chunks) < 3
    kept = len(list(read_records(rd.accepted_dir))) + len(list(read_records(rd.rejected_dir)))
    assert 0 < kept < 5
    assert "not finished (budget reached" in (rd.path / "README.md").read_text()
    # Raising the cap (the budget is not part of the recipe's identity) finishes the same run.
    assert main([*args, "--set", "budget.max_tokens=100000"]) == 0
    assert "planned 5" in capsys.readouterr().out
    assert rd.read_manifest().finished is True


def test_api_key_is_never_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from synthloop.testing import OpenAIStub
    from textbook_answers import answer_for

    secret = "sk-test-SECRET-0123456789"
    monkeypatch.setenv("SYNTHLOOP_TEST_KEY", secret)
    with OpenAIStub(responder=answer_for) as stub:
        text = RECIPE.replace('backend = "fake"', f'backend = "openai_compat"\nbase_url = "{stub.base_url}"\napi_key_env = "SYNTHLOOP_TEST_KEY"')
        assert main(["run", str(write_recipe(tmp_path, text)), "--runs-dir", str(tmp_path / "runs"), "--no-progress"]) == 0
        assert all(h.get("authorization") == f"Bearer {secret}" for h in stub.headers)
    for path in (tmp_path / "runs").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    assert "SYNTHLOOP_TEST_KEY" in (tmp_path / "runs" / "demo" / "recipe.toml").read_text()


GROUNDED = RECIPE + """
[curate]
near_dedup = false
[grounding]
golden = "python-docs"
[collapse]
embedder = "hash"
stop_on_fail = {stop}
"""


def test_grounded_run_writes_mix_collapse_report_and_html(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path, GROUNDED.format(stop="false"))
    assert main(["run", str(recipe), "--runs-dir", str(tmp_path / "runs"), "--no-progress"]) == 0
    run = tmp_path / "runs" / "demo"
    mix = pq.read_table(run / "data" / "mix" / "round-000" / "mix.parquet").to_pylist()
    sources = [r["source"] for r in mix]
    assert sources.count("synthetic") == 5 and sources.count("golden") > 5  # lambda <= 1
    report = json.loads((run / "collapse" / "report.json").read_text())
    assert report["round"] == 0 and set(report["indicators"]) >= {"distinct_2_ratio", "tail_coverage_ratio", "golden_ppl_ratio"}
    page = (run / "report.html").read_text()
    assert "Collapse indicators (round 0)" in page and "Training mix" in page and "Funnel" in page
    collapse = RunDir(run).read_manifest().rounds[0].collapse
    assert collapse is not None and collapse.status == report["status"]
    assert (run / "export" / "mix.jsonl").read_text().count("\n") == len(mix)


def test_failing_collapse_check_stops_with_its_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = write_recipe(tmp_path, GROUNDED.format(stop="true"))
    code = main(["run", str(recipe), "--runs-dir", str(tmp_path / "runs"), "--no-progress"])
    # Five near-identical canned records are far less diverse than the golden docs.
    assert code == 1
    err = capsys.readouterr().err
    assert "model collapse detected at round 0" in err and "distinct_2_ratio" in err
    manifest = RunDir(tmp_path / "runs" / "demo").read_manifest()
    assert manifest.rounds[0].collapse is not None and manifest.rounds[0].collapse.status == "fail"
    # Stopped before export: round 0 failed, so nothing is published, and the card says so.
    assert manifest.status == "stopped" and manifest.published_round is None
    assert (tmp_path / "runs" / "demo" / "export" / "train.jsonl").read_text() == ""
    assert "stopped: collapse (" in (tmp_path / "runs" / "demo" / "README.md").read_text()
    assert (tmp_path / "runs" / "demo" / "collapse" / "report.json").is_file()
    assert (tmp_path / "runs" / "demo" / "report.html").is_file()


def test_instruction_records_flow_through_every_stage(tmp_path: Path) -> None:
    text = RECIPE.replace('personas = ["a beginner", "an expert"]', 'personas = ["a beginner", "an expert"]\ntasks = ["textbook", "instruction"]')
    recipe = write_recipe(tmp_path, text + "[curate]\nnear_dedup = false\n")
    assert main(["run", str(recipe), "--runs-dir", str(tmp_path / "runs"), "--no-progress"]) == 0
    records = list(read_records(RunDir(tmp_path / "runs" / "demo").accepted_dir))
    instruction = [r for r in records if r.task == "instruction"]
    assert instruction and len(records) == 5
    r = instruction[0]
    assert r.messages[0]["content"].startswith("How do I") and r.text == r.messages[1]["content"]
    assert [v.name for v in r.verdicts] == ["python_snippets", "judge"]


def test_python_api_runs_a_recipe_object(tmp_path: Path) -> None:
    import synthloop
    from synthloop.recipe import BackendConfig, OutputConfig, PlanConfig, Recipe

    recipe = Recipe(
        name="api",
        plan=PlanConfig(topics=["pathlib"], max_records=1),
        teacher=BackendConfig(backend="fake"),
        output=OutputConfig(runs_dir=str(tmp_path)),
    )
    result = synthloop.run(recipe)
    assert (result.planned, result.accepted, result.rejected) == (1, 1, 0)  # type: ignore[attr-defined]
    assert (tmp_path / "api" / "export" / "train.jsonl").read_text().count("\n") == 1


def test_auto_rubric_judges_each_task_with_its_own_rubric(tmp_path: Path) -> None:
    from synthloop.backends.fake import FakeBackend, canned_responders
    from synthloop.recipe import load_recipe
    from synthloop.rounds import run

    text = RECIPE.replace('personas = ["a beginner", "an expert"]', 'personas = ["a beginner", "an expert"]\ntasks = ["textbook", "instruction"]')
    backend = FakeBackend(responders=canned_responders())
    run(load_recipe(write_recipe(tmp_path, text + "[curate]\nnear_dedup = false\n")), runs_dir=tmp_path / "runs", backend=backend)
    tags = {c.tag for c in backend.calls if c.tag.startswith("judge:")}
    assert tags == {"judge:textbook", "judge:instruction"}
