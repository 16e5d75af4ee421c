"""The classroom loop end to end in seconds: a tiny random student, the fake teacher, two rounds.
Checks the wiring, not the learning (docs/classroom.md measures that): a checkpoint and a
per-skill evaluation every round, the next round steered by the student's allocator with failed
evaluation items as seeds (named in parent_ids), resume without retraining, the control arm."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthloop.cli import main
from synthloop.recipe import Recipe, recipe_from_dict
from synthloop.rounds import run
from synthloop.storage import RunDir


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from synthloop.student.tiny import tiny_model

    return tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def recipe(tmp_path: Path, tiny: Path, **student: object) -> Recipe:
    return recipe_from_dict({
        "name": "class", "seed": 1,
        "plan": {"topics": ["sums"], "skills": ["add", "mul"], "tasks": ["instruction"], "per_cell": 2},
        "teacher": {"backend": "fake"},
        "curate": {"near_dedup": False},
        "rounds": {"count": 2},
        "student": {"base_model": str(tiny), "epochs": 1, "batch_size": 4, "max_seq_len": 128, "device": "cpu",
                    "eval": {"sets": ["arithmetic"], "items_per_skill": 3, "max_new_tokens": 8},
                    "steer": {"floor_examples": 1, "failed_seeds_per_skill": 2}, **student},
        "output": {"runs_dir": str(tmp_path)},
    })


def test_two_rounds_train_examine_and_steer(tmp_path: Path, tiny: Path) -> None:
    result = run(recipe(tmp_path, tiny))
    assert result.finished and result.rounds == 2
    rd = RunDir(result.run_dir)
    m = rd.read_manifest()
    for s in m.rounds:
        st = s.extra["student"]
        assert set(st["per_skill"]) == {"add", "mul", "frac", "units"} and st["worst"] in st["per_skill"]
        assert all(0.0 <= lo <= hi <= 1.0 for lo, hi in st["intervals"].values())
        assert (rd.student_dir(s.round) / "COMPLETE").is_file() and (rd.student_dir(s.round) / "eval.json").is_file()
    # round 1 follows the plan the student made after round 0 (failed items as seeds)
    nxt = m.rounds[0].extra["student"]["next"]
    assert set(nxt["weights"]) >= {"add", "mul"} and nxt["seeds"]
    assert m.rounds[1].weights, "round 1 was steered"
    seeded = [r for r in rd.records("accepted", rounds=[1]) if r.parent_ids]
    seed_ids = {s["id"] for s in nxt["seeds"]}
    assert seeded and all(set(r.parent_ids) <= seed_ids for r in seeded)
    # the same command again: nothing is retrained, examined or generated twice
    train_json = (rd.student_dir(1) / "train.json").stat().st_mtime
    again = run(recipe(tmp_path, tiny))
    assert again.requests_sent == 0 and (rd.student_dir(1) / "train.json").stat().st_mtime == train_json


def test_target_accuracy_stops_the_run(tmp_path: Path, tiny: Path) -> None:
    result = run(recipe(tmp_path, tiny, target_accuracy=0.0001, eval={"sets": ["arithmetic"], "items_per_skill": 1}))
    # a random tiny model scores 0: the target is not reached, every round runs
    per_skill = RunDir(result.run_dir).read_manifest().rounds[0].extra["student"]["per_skill"]
    assert result.rounds == (1 if min(per_skill.values()) >= 0.0001 else 2)


def test_classroom_command_with_a_control_arm(tmp_path: Path, tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "class.toml"
    import tomli_w

    path.write_text(tomli_w.dumps(recipe(tmp_path, tiny).to_toml_dict()))
    assert main(["classroom", str(path), "--control", "--runs-dir", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "targeted  round 1:" in out and "uniform   round 1:" in out
    control = RunDir(tmp_path / "runs" / "class-uniform").read_manifest()
    assert control.rounds[1].weights == {} or len(set(control.rounds[1].weights.values())) == 1
    assert 'steer = "uniform"' in (tmp_path / "runs" / "class-uniform" / "recipe.toml").read_text()
    assert all("student" in s.extra for s in control.rounds)  # the control arm's student is examined too
