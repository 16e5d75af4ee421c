"""Regression tests for what the rounds-engine review found: options that did nothing, a dry run
that misestimated, recipe keys no code read."""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from synthloop.cli import main

GOLDEN = ("The quick brown fox jumps over the lazy dog while the farmer watches from the old wooden fence near "
          "the river bank at dawn each morning without fail, counting the geese that fly south over the hills "
          "before the first snow of the long winter arrives.")


def test_curate_golden_rejects_copied_spans(tmp_path: Path) -> None:
    (tmp_path / "golden.jsonl").write_text(json.dumps({"text": GOLDEN}) + "\n")
    rows = [{"text": f"Here is a story. {GOLDEN} End of story."},
            {"text": "Python lists keep their order and can hold items of any type; slicing copies."}]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["curate", str(tmp_path / "in.jsonl"), "--out", str(tmp_path / "out"), "--golden", str(tmp_path / "golden.jsonl")]
    assert main(args) == 0
    rejected = [json.loads(line) for line in (tmp_path / "out" / "rejected.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in rejected] == ["memorization"] and rejected[0]["reason"].startswith("memorized: 32-word span")
    assert (tmp_path / "out" / "accepted.jsonl").read_text().count("\n") == 1


def test_a_run_checks_for_copying_without_grounding(tmp_path: Path) -> None:
    """The memorisation check runs against the built-in golden set even with no [grounding]."""
    from synthloop.backends.fake import FakeBackend, canned_responders
    from synthloop.grounding import golden_texts, load_golden
    from synthloop.recipe import recipe_from_dict
    from synthloop.rounds import run

    copied = max(golden_texts(load_golden()), key=len)
    assert len(copied.split()) > 40
    responders = {**canned_responders(), "instruction:instruction": lambda r: f"Question: What does the manual say here?\nAnswer: {copied}"}
    recipe = recipe_from_dict({"name": "copy", "plan": {"topics": ["x"], "tasks": ["instruction"]},
                               "teacher": {"backend": "fake"}, "output": {"runs_dir": str(tmp_path)}})
    result = run(recipe, backend=FakeBackend(responders=responders))
    assert (result.accepted, result.rejected) == (0, 1)
    assert result.stats["0"]["memorization"]["reasons"] == {"memorized": 1}


@pytest.mark.parametrize("example", sorted(Path(__file__).parent.parent.joinpath("examples").glob("*.toml")), ids=lambda p: p.name)
def test_dry_run_works_on_every_example(example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(example), "--dry-run", "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "rehearsal on the fake backend" in out and "collapse" not in out.lower()
    assert not any(tmp_path.iterdir()), "a dry run writes no run directory"


def test_dry_run_counts_judge_tokens_and_prices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text("""
name = "priced"
[plan]
topics = ["a", "b"]
[teacher]
backend = "fake"
[judge.backend]
backend = "fake"
max_tokens = 128
price_prompt_per_1m = 1000.0
price_completion_per_1m = 1000.0
""")
    assert main(["run", str(recipe), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "judge ~" in out and "+ 256 completion" in out  # 2 records x max_tokens 128
    judge_cost = float(re.search(r"judge \$([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    assert judge_cost > 0.25  # 2 x (400 + 768) prompt + 256 completion tokens at $1000 / 1M


# -- every recipe key is read by some code ---------------------------------------------------

SRC = Path(__file__).parent.parent / "src" / "synthloop"


def _models() -> list[type[BaseModel]]:
    from synthloop.recipe import Recipe

    seen: list[type[BaseModel]] = []

    def walk(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.append(model)
        for f in model.model_fields.values():
            for t in _types(f.annotation):
                if isinstance(t, type) and issubclass(t, BaseModel):
                    walk(t)

    walk(Recipe)
    return seen


def _types(annotation: object) -> list[object]:
    args = typing.get_args(annotation)
    return [annotation] if not args else [t for a in args for t in _types(a)]


def _fields() -> list[tuple[str, str]]:
    return [(m.__name__, name) for m in _models() for name in m.model_fields]


@pytest.mark.parametrize(("model", "field"), _fields())
def test_every_recipe_key_is_read_by_some_code(model: str, field: str) -> None:
    """A key counts as read when code outside the class's own definition uses `.field` (attribute
    access) or names it as a string (getattr, model_dump consumers)."""
    pattern = re.compile(rf"\.{field}\b|[\"']{field}[\"']")
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        body = re.sub(rf"class {model}\(.*?(?=\nclass |\Z)", "", text, flags=re.S)
        if pattern.search(body):
            return
    pytest.fail(f"recipe key {model}.{field} is read by no code: wire it or remove it")
