"""Many rounds on one engine, on the fake backend: mixing policies across rounds, a scripted steer,
a collapse stop before export, and resuming after the recipe's rounds change."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from synthloop.backends.base import Request
from synthloop.backends.fake import FakeBackend, canned_responders
from synthloop.cli import main
from synthloop.pipeline.plan import weights_by_axis
from synthloop.recipe import Recipe, recipe_from_dict
from synthloop.rounds import RoundSummary, run
from synthloop.storage import RunDir
from synthloop.verifiers.judge import fake_judgement

BASE = {
    "name": "rounds",
    "seed": 5,
    "plan": {"topics": ["itertools", "pathlib"], "skills": ["explain", "debug"], "personas": ["a beginner"], "max_records": 4},
    "teacher": {"backend": "fake", "model": "fake-teacher"},
    "curate": {"near_dedup": False},
    "output": {"shard_size": 2},
}


def recipe(tmp_path: Path, **sections: dict[str, object]) -> Recipe:
    data = json.loads(json.dumps(BASE))
    data["output"]["runs_dir"] = str(tmp_path / "runs")
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    return recipe_from_dict(data)


def mix_counts(rd: RunDir, r: int) -> dict[str, int]:
    rows = pq.read_table(rd.mix_dir(r) / "mix.parquet", columns=["source", "round"]).to_pylist()
    out: dict[str, int] = {}
    for row in rows:
        key = "golden" if row["source"] == "golden" else f"r{row['round']}"
        out[key] = out.get(key, 0) + 1
    return out


@pytest.mark.parametrize(("policy", "expected"), [("accumulate", {"r0": 4, "r1": 4, "r2": 4}), ("replace", {"r2": 4})])
def test_three_rounds_mix_by_the_grounding_policy(tmp_path: Path, policy: str, expected: dict[str, int]) -> None:
    r = recipe(tmp_path, rounds={"count": 3}, grounding={"golden": "python-docs", "policy": policy})
    result = run(r)
    assert result.finished and result.rounds == 3 and result.published_round == 2
    assert (result.planned, result.accepted) == (12, 12)
    rd = RunDir(result.run_dir)
    counts = mix_counts(rd, 2)
    golden = counts.pop("golden")
    assert counts == expected
    assert golden > 0  # every golden training row, in every round
    assert mix_counts(rd, 0)["golden"] == golden and mix_counts(rd, 1)["golden"] == golden
    stats = json.loads((rd.mix_dir(2) / "mix_stats.json").read_text())
    assert stats["policy"] == policy and stats["synthetic_rows"] == sum(expected.values())
    # shards of different rounds never collide, and each round has its stats file
    assert {p.name[:4] for p in rd.shards("accepted")} == {"r000", "r001", "r002"}
    assert all(rd.stats_path(k).is_file() for k in range(3))
    assert json.loads(rd.stats_path(1).read_text())["generate"]["seen"] == 4
    # the published export is every round's accepted records, and the published round's mix
    assert (rd.export_dir / "train.jsonl").read_text().count("\n") == 12
    assert (rd.export_dir / "mix.jsonl").read_text().count("\n") == golden + sum(expected.values())


def test_a_scripted_steer_reweights_the_next_round(tmp_path: Path) -> None:
    seen: list[RoundSummary] = []

    def only_debug(rcp: Recipe, summary: RoundSummary) -> dict[str, float]:
        seen.append(summary)
        return weights_by_axis(rcp, "skill", {"debug": 1.0})

    result = run(recipe(tmp_path, rounds={"count": 2}), steer=only_debug)
    assert [s.round for s in seen] == [0]
    assert seen[0].accepted_by_skill == {"explain": 2, "debug": 2} and seen[0].planned == 4
    assert seen[0].stats["judge"]["seen"] == 4
    rd = RunDir(result.run_dir)
    round1 = list(rd.records("accepted", rounds=[1]))
    assert len(round1) == 4 and {r.skill for r in round1} == {"debug"}
    assert all(r.id.startswith("r1-") and r.round == 1 for r in round1)
    state = rd.read_manifest().rounds[1]
    assert state.weights and set(state.weights.values()) == {0.0, 1.0}


def test_round_summaries_can_seed_prompts_and_records_name_their_parents(tmp_path: Path) -> None:
    from synthloop.pipeline.plan import SeedItem, uniform_weights
    from synthloop.rounds import SteerResult

    backend = FakeBackend(responders=canned_responders())

    def with_seeds(rcp: Recipe, summary: RoundSummary) -> SteerResult:
        cell = "itertools|debug|a beginner|easy"
        return SteerResult(uniform_weights(rcp), [SeedItem("eval-17", "chain two lists lazily", cell)])

    result = run(recipe(tmp_path, rounds={"count": 2}), steer=with_seeds, backend=backend)
    round1 = list(RunDir(result.run_dir).records("accepted", rounds=[1]))
    seeded = [r for r in round1 if r.parent_ids]
    assert seeded and all(r.parent_ids == ["eval-17"] and r.skill == "debug" and r.topic == "itertools" for r in seeded)
    prompts = [c.messages[-1][1] for c in backend.calls if "chain two lists lazily" in c.messages[-1][1]]
    assert prompts, "the seed example is in the teacher's prompt"
    lines = (Path(result.run_dir) / "export" / "train.jsonl").read_text().splitlines()
    assert any(json.loads(line)["parent_ids"] == ["eval-17"] for line in lines)


def diverse(req: Request) -> str:
    """Varied text, different for every seed."""
    if req.tag.startswith("judge"):
        return fake_judgement(req)
    rng = random.Random(req.seed)
    words = [rng.choice(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "sigma", "tau"])
             + str(rng.randrange(1000)) for _ in range(60)]
    return "Question: " + " ".join(words[:12]) + "?\nAnswer: " + " ".join(words[12:])


def test_a_failing_collapse_check_stops_before_the_next_round_and_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def responder(req: Request) -> str:
        """Round 0 writes varied text; round 1 repeats one sentence (a collapsing teacher)."""
        if req.tag.startswith("judge"):
            return fake_judgement(req)  # the canned judge: it passes calibration
        if req.seed in round1_seeds:
            return "Question: What is it again?\nAnswer: " + "it is the same answer every time " * 12
        return diverse(req)

    r = recipe(tmp_path, rounds={"count": 3},
               plan={"tasks": ["instruction"], "max_records": 4},
               curate={"near_dedup": False, "exact_dedup": False, "quality_filters": False},
               grounding={"golden": "python-docs"},
               collapse={"embedder": "hash", "indicators": ["distinct_2_ratio"], "stop_on_fail": True,
                         "thresholds": {"distinct_2_ratio": {"warn": 0.3, "fail": 0.2}}})
    from synthloop.pipeline.plan import plan

    round1_seeds = {int(x.meta["seed"]) for x in plan(r, round=1)}
    result = run(r, backend=FakeBackend(responder=responder))
    assert not result.finished and result.stopped_reason.startswith("collapse (distinct_2_ratio = ")
    assert "fail band >= 0.2" in result.stopped_reason and result.stopped_reason.endswith("at round 1")
    rd = RunDir(result.run_dir)
    m = rd.read_manifest()
    assert [s.round for s in m.rounds] == [0, 1], "round 2 never started"
    assert m.published_round == 0 and m.status == "stopped"
    exported = [json.loads(line) for line in (rd.export_dir / "train.jsonl").read_text().splitlines()]
    assert len(exported) == 4 and {row["round"] for row in exported} == {0}
    mix = [json.loads(line) for line in (rd.export_dir / "mix.jsonl").read_text().splitlines()]
    assert {row["round"] for row in mix if row["source"] == "synthetic"} == {0}
    card = (rd.path / "README.md").read_text()
    assert "stopped: collapse (distinct_2_ratio" in card and "published the last good round (0)" in card
    assert main(["inspect", str(rd.path)]) == 0
    assert "stopped: collapse (distinct_2_ratio" in capsys.readouterr().out
    history = json.loads((rd.collapse_dir / "history.json").read_text())["rounds"]
    assert [h["round"] for h in history] == [0, 1] and [h["status"] for h in history] == ["ok", "fail"]
    page = (rd.path / "report.html").read_text()
    assert "Collapse indicators across rounds" in page and "Rounds" in page
    # The same command again: the run stays stopped at round 1, nothing is regenerated.
    again = run(r, backend=FakeBackend(responder=responder))
    assert again.stopped_reason == result.stopped_reason and again.requests_sent == 0


def test_raising_the_round_count_keeps_earlier_rounds(tmp_path: Path) -> None:
    first = run(recipe(tmp_path, rounds={"count": 2}))
    rd = RunDir(first.run_dir)
    before = {r.id: r.content_hash for r in rd.records("accepted")}
    more = run(recipe(tmp_path, rounds={"count": 3}))
    assert more.finished and more.rounds == 3
    after = {r.id: r.content_hash for r in rd.records("accepted", rounds=[0, 1])}
    assert after == before
    # round 2 is new work: 4 records x (2 generation + 1 judge) requests, nothing re-sent
    assert (more.requests_sent, more.requests_reused) == (12, 0)


def test_a_changed_steer_redoes_only_the_rounds_it_changes(tmp_path: Path) -> None:
    run(recipe(tmp_path, rounds={"count": 2}))
    rd = RunDir(tmp_path / "runs" / "rounds")
    round0 = sorted(r.content_hash for r in rd.records("accepted", rounds=[0]))

    def only_explain(rcp: Recipe, summary: RoundSummary) -> dict[str, float]:
        return weights_by_axis(rcp, "skill", {"explain": 1.0})

    result = run(recipe(tmp_path, rounds={"count": 2}), steer=only_explain)
    assert sorted(r.content_hash for r in rd.records("accepted", rounds=[0])) == round0
    assert {r.skill for r in rd.records("accepted", rounds=[1])} == {"explain"}
    assert result.requests_sent > 0 and result.accepted == 8


def test_an_unknown_steer_is_one_line(tmp_path: Path) -> None:
    from synthloop.errors import RecipeError

    with pytest.raises(RecipeError, match="rounds.steer = 'nope' is not a known steer"):
        run(recipe(tmp_path, rounds={"count": 2, "steer": "nope"}))
