"""`synthloop run --dry-run --preview N`: N planned records generated and judged for real against
an OpenAI-compatible stub on 127.0.0.1; typical / high / worst-case costs from the measured
lengths; an unknown price is "unknown", never $0; the answers are cached for the real run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from synthloop.backends import RequestCache
from synthloop.cli import main
from synthloop.testing.openai_stub import OpenAIStub
from textbook_answers import answer_for

RECIPE = """
name = "preview"
seed = 5
[plan]
topics = ["itertools", "pathlib", "f-strings", "re"]
personas = ["a beginner", "an expert"]
max_records = 8
[teacher]
backend = "openai_compat"
base_url = "{url}"
model = "stub-model"
{prices}
[judge]
rubric = "textbook"
[verify]
code = false
"""
PRICES = "price_prompt_per_1m = 1.0\nprice_completion_per_1m = 2.0"


def dollars(line: str) -> float:
    found = re.search(r"\$(\d+\.\d+)", line)
    assert found, line
    return float(found.group(1))


def run_preview(tmp_path: Path, capsys: pytest.CaptureFixture[str], prices: str) -> tuple[list[str], int]:
    with OpenAIStub(responder=answer_for) as stub:
        recipe = tmp_path / "r.toml"
        recipe.write_text(RECIPE.format(url=stub.base_url, prices=prices))
        assert main(["run", str(recipe), "--runs-dir", str(tmp_path / "runs"), "--dry-run", "--preview", "3"]) == 0
        sent = len(stub.requests)
    return capsys.readouterr().out.splitlines(), sent


def test_preview_measures_real_answers_and_prices_three_ways(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines, sent = run_preview(tmp_path, capsys, PRICES)
    text = "\n".join(lines)
    assert "preview: 3 records sent for real" in text
    typical = dollars(next(x for x in lines if "typical (median)" in x))
    high = dollars(next(x for x in lines if "high (90th percentile)" in x))
    worst = dollars(next(x for x in lines if "worst case" in x))
    assert 0 < typical <= high < worst
    assert sent >= 6  # 3 records' generation and their judgements went to the server
    # cached in the run directory, and counted in its spend ledger (the budget's)
    with RequestCache(tmp_path / "runs" / "preview" / "cache.sqlite") as cache:
        assert len(cache) >= 6 and cache.spent().tokens > 0


def test_preview_with_an_unknown_price_says_unknown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines, _ = run_preview(tmp_path, capsys, "")
    estimates = [x for x in lines if "typical (median)" in x or "high (90th" in x or "worst case" in x]
    assert len(estimates) == 3 and all("unknown" in x for x in estimates)
    assert not any("$0.0000" in x.split("(")[0] for x in estimates)


def test_preview_needs_dry_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE.format(url="http://127.0.0.1:9/v1", prices=PRICES))
    assert main(["run", str(recipe), "--preview", "2"]) != 0
    assert "--preview N goes with --dry-run" in capsys.readouterr().err
