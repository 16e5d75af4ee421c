"""The collapse monitor (thresholds, round 0, history, enforce) and the `synthloop collapse` CLI."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from synthloop.cli import main
from synthloop.collapse import CollapseConfig, CollapseDetected, CollapseMonitor, hash_embedder
from synthloop.grounding import golden_texts, load_builtin


@pytest.fixture(scope="module")
def golden() -> tuple[list[str], list[str]]:
    g = load_builtin("python-docs")
    return golden_texts(g, "train"), golden_texts(g, "heldout")


def _monitor(tmp_path: Path, **cfg: object) -> CollapseMonitor:
    return CollapseMonitor(CollapseConfig(embedder="hash", max_texts=128, **cfg),  # type: ignore[arg-type]
                           history_path=tmp_path / "history.json", embed=hash_embedder())


def test_evaluate_thresholds_against_golden_then_round0(tmp_path: Path) -> None:
    mon = _monitor(tmp_path, indicators=["vendi_ratio", "ref_ppl_ratio"])
    r0 = mon.evaluate({"vendi_ratio": 0.7, "ref_ppl_ratio": 1.0}, round=0)
    assert r0.statuses == {"vendi_ratio": "warn", "ref_ppl_ratio": "ok"}
    assert r0.results["vendi_ratio"].basis == "golden"
    assert r0.status == "warn" and "vendi_ratio = 0.7 of golden" in r0.reasons[0]
    # Round 1 is judged against round 0: 0.63 / 0.7 = 0.9 (ok); ref ppl fell to 0.45 of round 0 (two-sided fail).
    r1 = mon.evaluate({"vendi_ratio": 0.63, "ref_ppl_ratio": 0.45}, round=1)
    assert r1.results["vendi_ratio"].assessed == pytest.approx(0.9)
    assert r1.results["vendi_ratio"].basis == "round0"
    assert r1.statuses == {"vendi_ratio": "ok", "ref_ppl_ratio": "fail"}
    assert r1.status == "fail"


def test_missing_and_nan_values_are_skipped(tmp_path: Path) -> None:
    r = _monitor(tmp_path).evaluate({"vendi_ratio": None, "mmd_norm": float("nan")}, round=0)
    assert r.statuses == {"vendi_ratio": "skipped", "mmd_norm": "skipped"}
    assert r.status == "ok"
    json.dumps(r.to_dict(), allow_nan=False)  # the report is strict JSON


def test_history_persists_and_round0_survives_a_restart(tmp_path: Path) -> None:
    _monitor(tmp_path).evaluate({"distinct_2_ratio": 0.9}, round=0)
    again = _monitor(tmp_path)
    r = again.evaluate({"distinct_2_ratio": 0.45}, round=3)
    assert r.results["distinct_2_ratio"].assessed == pytest.approx(0.5)
    assert r.status == "fail"
    saved = json.loads((tmp_path / "history.json").read_text())
    assert [h["round"] for h in saved["rounds"]] == [0, 3]
    # Re-running a round replaces its entry instead of duplicating it.
    again.evaluate({"distinct_2_ratio": 0.9}, round=3)
    assert [h["round"] for h in json.loads((tmp_path / "history.json").read_text())["rounds"]] == [0, 3]


def test_enforce_warns_or_stops(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    mon = _monitor(tmp_path)
    with caplog.at_level(logging.WARNING, logger="synthloop.collapse"):
        mon.enforce(mon.evaluate({"vendi_ratio": 0.7}, round=0))
    assert "vendi_ratio" in caplog.text
    fail = mon.evaluate({"vendi_ratio": 0.1}, round=1)
    with pytest.raises(CollapseDetected, match="collapse detected at round 1: vendi_ratio") as e:
        mon.enforce(fail)
    assert e.value.report is fail and e.value.exit_code == 1
    _monitor(tmp_path, stop_on_fail=False).enforce(fail)  # logs, does not raise


def test_check_with_a_model_compares_golden_perplexity_with_round0(
        tmp_path: Path, golden: tuple[list[str], list[str]]) -> None:
    train, heldout = golden
    mon = _monitor(tmp_path, indicators=["golden_ppl_ratio", "distinct_2_ratio"])
    r0 = mon.check(train[:300], train, heldout, round=0, model_logprob=lambda texts: (-4.0 * 100, 100))
    assert r0.values["golden_ppl_ratio"] == 1.0 and r0.raw["golden_ppl"] == pytest.approx(54.598, rel=1e-3)
    r1 = mon.check(train[:300], train, heldout, round=1, model_logprob=lambda texts: (-4.5 * 100, 100))
    assert r1.values["golden_ppl_ratio"] == pytest.approx(1.6487, rel=1e-3)  # e^0.5
    assert r1.statuses["golden_ppl_ratio"] == "fail"


def test_check_detects_duplicated_synthetic_data(tmp_path: Path, golden: tuple[list[str], list[str]]) -> None:
    train, heldout = golden
    mon = _monitor(tmp_path)
    healthy = mon.check(heldout, train, heldout, round=0)
    assert healthy.statuses["distinct_2_ratio"] == "ok"
    collapsed = mon.check(heldout[:5] * 20, train, heldout, round=1)
    assert collapsed.status == "fail"
    assert {"distinct_2_ratio", "vendi_ratio", "tail_coverage_ratio"} <= {
        k for k, s in collapsed.statuses.items() if s == "fail"}


def _jsonl(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    return path


def test_cli_check_exit_codes_and_report(tmp_path: Path, golden: tuple[list[str], list[str]],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    train, heldout = golden
    good = _jsonl(tmp_path / "good.jsonl", heldout)
    assert main(["collapse", "check", str(good), "--golden", "python-docs", "--embedder", "hash",
                 "--out", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "vendi_ratio" in out and "fail:" not in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert set(report["indicators"]) == set(CollapseConfig().indicators)
    bad = _jsonl(tmp_path / "bad.jsonl", heldout[:3] * 30)
    assert main(["collapse", "check", str(bad), "--golden", "python-docs", "--embedder", "hash"]) == 1
    assert "fail:" in capsys.readouterr().out


def test_cli_check_reads_text_files_and_reports_bad_input(tmp_path: Path, golden: tuple[list[str], list[str]],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    train, heldout = golden
    gold = tmp_path / "golden.txt"
    gold.write_text("\n".join(t.replace("\n", " ") for t in train), encoding="utf-8")
    data = tmp_path / "data.txt"
    data.write_text("\n".join(t.replace("\n", " ") for t in heldout), encoding="utf-8")
    assert main(["collapse", "check", str(data), "--golden", str(gold), "--embedder", "hash"]) in (0, 1)
    assert "tail_coverage_ratio" in capsys.readouterr().out
    assert main(["collapse", "check", str(tmp_path / "missing.jsonl"), "--golden", "python-docs"]) == 2
    assert "not found" in capsys.readouterr().err


def test_too_little_data_is_skipped_and_no_data_is_an_error(
        tmp_path: Path, golden: tuple[list[str], list[str]]) -> None:
    from synthloop.errors import InputError

    train, heldout = golden
    mon = _monitor(tmp_path)
    r = mon.check(["hello world"], train, heldout, round=0)
    assert set(r.statuses.values()) == {"skipped"}
    assert "needs at least 200 tokens" in r.results["distinct_2_ratio"].reason
    with pytest.raises(InputError, match="no non-empty synthetic text"):
        mon.check(["  "], train, heldout, round=0)
