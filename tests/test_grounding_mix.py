"""The mix stage: golden never dropped, held-out never mixed, ratio kept, policies, traceable output."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import get_args

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from synthloop.errors import InputError
from synthloop.grounding import GoldenSet, GroundingConfig, build_mix, write_mix
from synthloop.grounding.config import Policy
from synthloop.grounding.mix import allocate, stratified_sample
from synthloop.records import GOLDEN, Record


def golden_set(n: int, heldout_fraction: float = 0.1, topics: int = 3) -> GoldenSet:
    rows = [Record(id=f"golden:g{i}", source=GOLDEN, topic=f"t{i % topics}", text=f"human text {i}",
                   meta={"title": f"thing {i}"}) for i in range(n)]
    return GoldenSet.split("test", rows, heldout_fraction=heldout_fraction, heldout_seed=0)


def synthetic(sizes: dict[int, int], topics: int = 4, skills: int = 2) -> dict[int, list[Record]]:
    return {r: [Record(id=f"s{r}-{i}", round=r, topic=f"t{i % topics}", skill=f"k{i % skills}",
                       messages=[{"role": "user", "content": f"q{r}.{i}"}, {"role": "assistant", "content": "a"}])
                for i in range(n)] for r, n in sizes.items()}


def test_accumulate_replace_and_fixed_budget_over_rounds() -> None:
    golden = golden_set(200, heldout_fraction=0.0)
    syn = synthetic({0: 60, 1: 60, 2: 60, 3: 60})
    acc = [build_mix(golden, syn, GroundingConfig(), round=r, seed=0).stats.synthetic_rows for r in range(4)]
    rep = [build_mix(golden, syn, GroundingConfig(policy="replace"), round=r, seed=0).stats.synthetic_rows
           for r in range(4)]
    fixed_cfg = GroundingConfig(policy="fixed_budget", fixed_budget_size=90)
    fixed = [build_mix(golden, syn, fixed_cfg, round=r, seed=0) for r in range(4)]
    assert acc == [60, 120, 180, 200]  # the pool grows until max_lambda=1 caps it at |golden|
    assert rep == [60, 60, 60, 60]
    assert [m.stats.synthetic_rows for m in fixed] == [60, 90, 90, 90]
    assert set(fixed[3].stats.counts["synthetic"]) == {0, 1, 2, 3}  # a sample of the whole pool
    topics = Counter(r.topic for r in fixed[3].rows if r.source != GOLDEN)
    assert sorted(topics.values()) == [22, 22, 23, 23]  # 4 equal topics in the pool stay equal


def test_sampled_out_rows_are_listed_with_the_key_that_left_them_out() -> None:
    golden = golden_set(50, heldout_fraction=0.0)
    syn = synthetic({0: 30, 1: 40, 2: 5})
    replace = build_mix(golden, syn, GroundingConfig(policy="replace"), round=1, seed=0)
    assert replace.stats.sampled_out_by_reason == {"later_round": 5, "policy=replace": 30}
    capped = build_mix(golden, syn, GroundingConfig(max_lambda=0.5), round=1, seed=0)
    assert capped.stats.sampled_out_by_reason == {"later_round": 5, "max_lambda": 45}
    share = build_mix(golden, syn, GroundingConfig(min_golden_share=0.8), round=1, seed=0)
    assert share.stats.synthetic_rows == 12 and share.stats.sampled_out_by_reason["min_golden_share"] == 58
    out = {o.id: o for o in capped.sampled_out}
    assert out["s2-0"].reason == "later_round" and out["s2-0"].round == 2


def test_mix_is_deterministic_by_seed_and_keeps_source_and_round() -> None:
    golden = golden_set(40)
    syn = synthetic({0: 50, 1: 50})
    a = build_mix(golden, syn, GroundingConfig(), round=1, seed=7)
    b = build_mix(golden, syn, GroundingConfig(), round=1, seed=7)
    c = build_mix(golden, syn, GroundingConfig(), round=1, seed=8)
    assert [r.id for r in a.rows] == [r.id for r in b.rows]
    assert {r.id for r in a.rows} != {r.id for r in c.rows}
    assert all((r.source, r.round) == (GOLDEN, 0) for r in a.rows if r.id.startswith("golden:"))
    assert all(r.source == "synthetic" and r.id.startswith(f"s{r.round}-") for r in a.rows
               if not r.id.startswith("golden:"))


def test_golden_or_misfiled_rows_passed_as_synthetic_are_refused() -> None:
    golden = golden_set(30, heldout_fraction=0.5)
    held = golden.heldout[0]
    smuggled = Record(id=held.id, round=0, text="x")
    with pytest.raises(InputError, match="golden rows enter a mix only through the GoldenSet"):
        build_mix(golden, {0: [smuggled]}, GroundingConfig(), round=0, seed=0)
    with pytest.raises(InputError, match="its round is 0"):
        build_mix(golden, {1: [Record(id="s", round=0, text="x")]}, GroundingConfig(), round=1, seed=0)
    with pytest.raises(InputError, match="appears twice"):
        build_mix(golden, {0: [Record(id="s", text="x")], 1: [Record(id="s", round=1, text="y")]},
                  GroundingConfig(), round=1, seed=0)


def test_a_golden_set_with_no_training_rows_cannot_be_mixed() -> None:
    golden = GoldenSet("g", (), (Record(id="golden:x", source=GOLDEN, text="t"),), 1.0, 0,
                       golden_set(1).report)
    with pytest.raises(InputError, match="lower grounding.heldout_fraction"):
        build_mix(golden, {}, GroundingConfig(), round=0, seed=0)


def test_allocate_gives_every_group_one_then_proportional_shares() -> None:
    assert allocate({"a": 80, "b": 15, "c": 5}, 10, seed=0) == {"a": 7, "b": 2, "c": 1}
    assert allocate({"a": 80, "b": 15, "c": 5}, 2, seed=0) == {"a": 1, "b": 1}
    assert allocate({"a": 3, "b": 3}, 6, seed=0) == {"a": 3, "b": 3}


def test_stratified_sample_covers_skills_within_topics() -> None:
    rows = synthetic({0: 120}, topics=3, skills=4)[0]
    kept = stratified_sample(rows, 12, ["topic", "skill"], seed=0)
    assert len(kept) == 12 and len({r.id for r in kept}) == 12
    assert len({(r.topic, r.skill) for r in kept}) == 12


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[GoldenSet, dict[int, list[Record]], GroundingConfig, int]:
    golden = golden_set(draw(st.integers(1, 60)), draw(st.sampled_from([0.0, 0.1, 0.3])))
    sizes = {r: draw(st.integers(0, 80)) for r in range(draw(st.integers(1, 4)))}
    share = draw(st.sampled_from([0.2, 0.4, 0.5, 0.6, 0.9, 1.0]))
    lam = min(draw(st.floats(0.0, 3.0)), (1 - share) / share)
    policy = draw(st.sampled_from(get_args(Policy)))
    budget = draw(st.integers(1, 100)) if policy == "fixed_budget" else None
    cfg = GroundingConfig(min_golden_share=share, max_lambda=lam, policy=policy, fixed_budget_size=budget)
    syn = synthetic(sizes, topics=draw(st.integers(1, 8)), skills=draw(st.integers(1, 3)))
    return golden, syn, cfg, draw(st.integers(0, max(sizes)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.integers(0, 2**32))
def test_mix_invariants_hold_for_any_sizes_and_config(
        scenario: tuple[GoldenSet, dict[int, list[Record]], GroundingConfig, int], seed: int) -> None:
    golden, syn, cfg, rnd = scenario
    assume(golden.train)
    mix = build_mix(golden, syn, cfg, round=rnd, seed=seed)
    ids = [r.id for r in mix.rows]
    assert not golden.heldout_ids & set(ids)                      # held-out never mixed
    assert {r.id for r in golden.train} <= set(ids)               # golden never dropped
    assert mix.stats.golden_share >= cfg.min_golden_share - 1e-9
    assert mix.stats.lambda_ <= cfg.max_lambda + 1e-9
    pool = [r for k, rs in syn.items() if k <= rnd and (cfg.policy != "replace" or k == rnd) for r in rs]
    cap = int(cfg.lambda_cap * len(golden.train) + 1e-9)
    if cfg.fixed_budget_size is not None:
        cap = min(cap, cfg.fixed_budget_size)
    kept = [r for r in mix.rows if r.source != GOLDEN]
    assert len(kept) == min(len(pool), cap)
    assert {r.id for r in kept} <= {r.id for r in pool}
    everything = {r.id for rs in syn.values() for r in rs}
    assert {r.id for r in kept} | {o.id for o in mix.sampled_out} == everything  # every row accounted for
    assert not {r.id for r in kept} & {o.id for o in mix.sampled_out}
    pool_topics = {r.topic for r in pool}
    if len(kept) >= len(pool_topics):
        assert {r.topic for r in kept} == pool_topics            # every topic represented
    assert sum(n for by_round in mix.stats.counts.values() for n in by_round.values()) == len(mix.rows)


def test_written_mix_is_traceable_and_loads_with_datasets(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    golden = golden_set(20, heldout_fraction=0.0)
    mix = build_mix(golden, synthetic({0: 10, 1: 10}), GroundingConfig(), round=1, seed=0)
    paths = write_mix(mix, tmp_path / "mix")
    ds = datasets.load_dataset("parquet", data_files=str(paths["parquet"]), split="train",
                               cache_dir=str(tmp_path / "hf-cache"))
    assert {"id", "source", "round", "messages", "text", "topic", "skill", "content_hash"} <= set(ds.column_names)
    assert Counter(zip(ds["source"], ds["round"], strict=True)) == {(GOLDEN, 0): 20, ("synthetic", 0): 10, ("synthetic", 1): 10}
    assert ds["id"] == [r.id for r in mix.rows]

    chat = [json.loads(line) for line in paths["jsonl"].read_text(encoding="utf-8").splitlines()]
    assert [c["id"] for c in chat] == ds["id"]
    first_golden = next(c for c in chat if c["source"] == GOLDEN)
    n = first_golden["id"].removeprefix("golden:g")
    assert first_golden["messages"] == [{"role": "user", "content": f"Explain thing {n}."},
                                        {"role": "assistant", "content": f"human text {n}"}]
    assert first_golden["prompt_templated"] is True
    synth = next(c for c in chat if c["source"] == "synthetic")
    assert synth["prompt_templated"] is False and synth["messages"][1] == {"role": "assistant", "content": "a"}

    stats = json.loads(paths["stats"].read_text(encoding="utf-8"))
    assert stats["golden_share"] == 0.5 and stats["lambda"] == 1.0
    assert stats["counts"] == {"golden": {"0": 20}, "synthetic": {"0": 10, "1": 10}}
