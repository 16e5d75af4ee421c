"""`synthloop curate`: a file with malformed lines, Parquet in and out, config file and flags."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from synthloop.cli import main

TEXT = "Python lists keep items in order; you can append, slice and iterate over them in a loop."


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_curate_reports_malformed_lines_and_processes_the_rest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [
        json.dumps({"id": "a", "text": TEXT, "lang": "en"}),
        '{"id": "broken", "text": ',
        json.dumps({"id": "b", "text": TEXT.upper()}),
        "[1, 2, 3]",
        json.dumps({"id": "c", "text": "Mail me at ana.lopez@uni.edu about sorting algorithms in Python, please."}),
        json.dumps({"id": "d", "title": "no text"}),
    ])
    out = tmp_path / "out"
    assert main(["curate", str(src), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"{src}:2: malformed: not valid JSON" in captured.err
    assert f"{src}:4: malformed: not a JSON object (got list)" in captured.err
    assert f"{src}:6: no_text" in captured.err
    assert "dedup_exact" in captured.out and "6 rows -> 2 accepted, 4 rejected" in captured.out

    accepted = read_jsonl(out / "accepted.jsonl")
    assert accepted == [{"id": "a", "text": TEXT, "lang": "en"},
                        {"id": "c", "text": "Mail me at [EMAIL] about sorting algorithms in Python, please."}]
    rejected = {r.get("line") or r["id"]: r for r in read_jsonl(out / "rejected.jsonl")}
    assert rejected[2]["stage"] == "input" and rejected[2]["raw"] == '{"id": "broken", "text": '
    assert rejected["b"]["reason"] == "duplicate: same normalized text as a"
    stats = json.loads((out / "stats.json").read_text())
    assert (stats["rows"], stats["accepted"], stats["rejected"], stats["malformed"]) == (6, 2, 4, 3)
    assert [m["line"] for m in stats["malformed_lines"]] == [2, 4, 6]
    assert stats["stages"]["pii"]["extra"] == {"pii_email": 1}


def test_curate_parquet_in_and_out_with_config_and_flags(tmp_path: Path) -> None:
    src = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist([
        {"body": TEXT, "n": 1},
        {"body": "Call +1 415-555-0132 to learn about Python dictionaries and sets in depth.", "n": 2},
        {"body": "Write a function that returns the sum of the squares of all odd numbers in a list.", "n": 3},
    ]), src)
    evals = write_jsonl(tmp_path / "eval.jsonl", [json.dumps({"id": 7, "q": "Write a function that returns the sum of the squares of all odd numbers in a list of ints."})])
    cfg = tmp_path / "curate.toml"
    cfg.write_text("[curate]\nnear_dedup = false\n[curate.pii_detect]\naction = 'reject'\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["curate", str(src), "--out", str(out), "--config", str(cfg), "--text-field", "body",
                 "--eval", str(evals), "--format", "parquet"]) == 0
    assert pq.read_table(out / "accepted.parquet").to_pylist() == [{"body": TEXT, "n": 1}]
    reasons = {r["row"]["n"]: r["reason"] for r in read_jsonl(out / "rejected.jsonl")}
    assert reasons[2] == "pii: phone x1"
    assert reasons[3].startswith("eval_ngram: 13-gram shared with eval item eval.jsonl#7")
    assert "dedup_near" not in json.loads((out / "stats.json").read_text())["stages"]


@pytest.mark.parametrize("argv, message", [
    (["curate", "missing.jsonl", "--out", "o"], "file not found: missing.jsonl"),
    (["curate", "{src}", "--out", "o", "--config", "nope.toml"], "file not found: nope.toml (pass a TOML file with a [curate] table)"),
    (["curate", "{src}", "--out", "o", "--eval", "gone.jsonl"], "file not found: gone.jsonl"),
    (["curate", "{csv}", "--out", "o"], "unknown file type '.csv'"),
])
def test_curate_bad_paths_are_one_line_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SYNTHLOOP_RAISE_ERRORS", raising=False)
    write_jsonl(tmp_path / "in.jsonl", [json.dumps({"text": TEXT})])
    (tmp_path / "in.csv").write_text("text\nx\n", encoding="utf-8")
    argv = [a.format(src="in.jsonl", csv="in.csv") for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_curate_bad_config_key_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYNTHLOOP_RAISE_ERRORS", raising=False)
    src = write_jsonl(tmp_path / "in.jsonl", [json.dumps({"text": TEXT})])
    cfg = tmp_path / "c.toml"
    cfg.write_text("[curate.near]\nbandz = 3\n", encoding="utf-8")
    assert main(["curate", str(src), "--out", str(tmp_path / "o"), "--config", str(cfg)]) == 2
    assert "unknown key 'near.bandz'" in capsys.readouterr().err
