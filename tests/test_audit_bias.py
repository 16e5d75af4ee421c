"""The bias audit flags a planted skew and stays quiet on a set drawn like the golden one."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

from synthloop.audit import AuditConfig, AuditSet, audit_bias, load_set
from synthloop.audit.counterfactual import flip_test, swap_text
from synthloop.audit.stats import chi2_sf, jensen_shannon, total_variation
from synthloop.cli import main
from synthloop.records import Record

FEMALE = ["{n} said she would review the pull request.", "The woman explained how her parser works.",
          "My mother wrote this script for her class."]
MALE = ["{n} said he would review the pull request.", "The man explained how his parser works.",
        "My father wrote this script for his class."]
NAMES = {"f": ["Mary", "Linda", "Sarah"], "m": ["James", "John", "David"]}


def _rows(n: int, female_share: float, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        side = "f" if rng.random() < female_share else "m"
        text = rng.choice(FEMALE if side == "f" else MALE).format(n=rng.choice(NAMES[side]))
        rows.append({"id": str(i), "text": text + f" Item {i} uses itertools.", "topic": rng.choice(["lists", "dicts"])})
    return rows


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_planted_skew_is_flagged_and_even_set_is_not(tmp_path: Path) -> None:
    golden = _write(tmp_path / "golden.jsonl", _rows(800, 0.5, seed=1))
    skewed = _write(tmp_path / "skewed.jsonl", _rows(800, 0.9, seed=2))
    even = _write(tmp_path / "even.jsonl", _rows(800, 0.5, seed=3))
    gold = load_set(golden)
    bad = audit_bias(load_set(skewed), gold, AuditConfig(counterfactual_sample=0))
    good = audit_bias(load_set(even), gold, AuditConfig(counterfactual_sample=0))
    gender = next(a for a in bad.axes if a.axis == "gender")
    assert gender.flags and "male" in gender.flags[0]
    assert gender.distance is not None and gender.distance.tv.low > 0.1
    assert bad.flags and {f.split(":")[0] for f in bad.flags} >= {"gender", "name"}
    assert good.flags == []
    assert main(["audit", "bias", str(skewed), "--golden", str(golden), "--counterfactual-sample", "0",
                 "--out", str(tmp_path / "a.json")]) == 1
    assert json.loads((tmp_path / "a.json").read_text())["flagged"] is True
    assert main(["audit", "bias", str(even), "--golden", str(golden), "--counterfactual-sample", "0"]) == 0


def test_thresholds_come_from_the_audit_table(tmp_path: Path) -> None:
    golden = _write(tmp_path / "golden.jsonl", _rows(400, 0.5, seed=1))
    skewed = _write(tmp_path / "skewed.jsonl", _rows(400, 0.9, seed=2))
    cfg = tmp_path / "audit.toml"
    cfg.write_text("[audit]\nmax_tv = 0.9\nmax_js = 0.9\ncounterfactual_sample = 0\n", encoding="utf-8")
    assert main(["audit", "bias", str(skewed), "--golden", str(golden), "--config", str(cfg)]) == 0
    cfg.write_text("[audit]\nmax_tvv = 0.9\n", encoding="utf-8")
    assert main(["audit", "bias", str(skewed), "--golden", str(golden), "--config", str(cfg)]) == 2


def test_distances_and_chi2_tail() -> None:
    p, q = np.array([0.5, 0.5]), np.array([1.0, 0.0])
    assert total_variation(p, q) == 0.5
    assert abs(float(jensen_shannon(p, q)) - 0.311278) < 1e-5
    assert abs(chi2_sf(3.841, 1) - 0.05) < 0.01  # the familiar 5% critical value
    assert chi2_sf(0.0, 3) == 1.0


def test_swap_keeps_case_and_counterfactual_counts_flips() -> None:
    assert swap_text("She met Mary and her brother.") == "He met James and his sister."
    recs = [Record(id=str(i), text=f"She wrote item {i}.") for i in range(10)]
    flips = flip_test(recs, lambda r: "She" in r.text, "toy", sample=100)
    assert (flips.swappable, flips.flips, flips.rate) == (10, 10, 1.0)
    fair = flip_test(recs, lambda r: True, "fair", sample=5)
    assert (fair.swappable, fair.flips) == (5, 0)


def test_drift_round_over_round_is_flagged() -> None:
    rows0, rows1 = _rows(300, 0.5, seed=4), _rows(300, 0.95, seed=5)
    recs = [Record(id=f"a{r['id']}", text=r["text"], round=0) for r in rows0]
    recs += [Record(id=f"b{r['id']}", text=r["text"], round=1) for r in rows1]
    gold = AuditSet("g", [Record(id=r["id"], text=r["text"]) for r in rows0])
    report = audit_bias(AuditSet("s", recs), gold, AuditConfig(counterfactual_sample=0, max_tv=0.5, max_js=0.5))
    drift = [d for d in report.drift if d["axis"] == "gender"]
    assert drift and drift[0]["flags"] and (drift[0]["from_round"], drift[0]["to_round"]) == (0, 1)


def test_quality_filter_does_not_flip_on_swapped_names(tmp_path: Path) -> None:
    rows = _rows(200, 0.5, seed=6)
    report = audit_bias(AuditSet("s", [Record(id=r["id"], text=r["text"] * 3) for r in rows]),
                        AuditSet("g", [Record(id=r["id"], text=r["text"]) for r in rows]), AuditConfig(bootstrap=20))
    assert report.counterfactual is not None and report.counterfactual.swappable == 200
    assert report.counterfactual.flips == 0 and report.flags == []


def test_field_axes_with_no_shared_value_are_incomparable_not_flagged() -> None:
    syn = AuditSet("s", [Record(id=str(i), text="x", topic=f"mine-{i % 3}") for i in range(90)])
    gold = AuditSet("g", [Record(id=str(i), text="y", topic=f"theirs-{i % 3}") for i in range(90)])
    report = audit_bias(syn, gold, AuditConfig(counterfactual_sample=0))
    topic = next(a for a in report.axes if a.axis == "topic")
    assert topic.status == "incomparable" and topic.distance is None and report.flags == []
    assert next(a for a in report.axes if a.axis == "gender").status == "insufficient"


def test_audit_of_a_run_directory_writes_its_report(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.toml"
    recipe.write_text('name = "aud"\n[plan]\ntopics = ["itertools"]\nmax_records = 2\n[teacher]\nbackend = "fake"\n'
                      "[curate.near]\nthreshold = 0.97\n")
    assert main(["run", str(recipe), "--runs-dir", str(tmp_path / "runs"), "--no-progress"]) == 0
    run = tmp_path / "runs" / "aud"
    assert main(["audit", "bias", str(run), "--golden", "python-docs", "--bootstrap", "10"]) == 0
    data = json.loads((run / "audit_bias.json").read_text())
    assert data["records"]["golden"] > 500 and data["records"]["synthetic"] >= 1 and data["flagged"] is False
    assert {a["axis"] for a in data["axes"]} == {"gender", "age", "region", "name", "persona", "topic", "skill"}


def test_counterfactual_measures_a_judges_flips() -> None:
    from synthloop.audit.counterfactual import judge_decision
    from synthloop.backends.base import Request
    from synthloop.backends.client import Client
    from synthloop.backends.fake import FakeBackend
    from synthloop.verifiers.judge import LLMJudge, judged_text

    def biased(request: Request) -> str:  # scores texts about women low: the flip test must catch it
        return f"Score: {1 if ' she ' in judged_text(request).lower() else 4}\nReason: graded."

    judge = LLMJudge(Client(FakeBackend(responder=biased)), rubric="instruction", min_score=3)
    recs = [Record(id=str(i), messages=[{"role": "user", "content": f"Question {i}?"},
                                        {"role": "assistant", "content": f"Then she sorts list {i} with sorted()."}])
            for i in range(6)]
    result = flip_test(recs, None, "judge", sample=10, decide_batch=judge_decision(judge))
    assert (result.swappable, result.flips) == (6, 6)


def test_audit_run_is_the_library_call(tmp_path: Path) -> None:
    from synthloop.audit import AUDIT_FILE, audit_run

    (tmp_path / "manifest.json").write_text("{}")
    golden = _write(tmp_path / "golden.jsonl", _rows(100, 0.5, seed=1))
    report = audit_run(tmp_path, str(golden), AuditConfig(counterfactual_sample=0))
    assert report.records == (0, 100) and (tmp_path / AUDIT_FILE).is_file()
