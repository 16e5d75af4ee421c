"""Allocators: uniform, error and expected_gain (a skill that does not respond gets its floor)."""

from __future__ import annotations

import pytest

from synthloop.errors import InputError
from synthloop.student.config import SteerConfig
from synthloop.student.evaluate import EvalItem, score
from synthloop.student.steer import (ALLOCATORS, History, RoundOutcome, allocate, cell_weights,
                                     failed_items_as_seeds, register_allocator, response, steer_round,
                                     weights)

SKILLS = ["add", "frac", "mul"]
#: Measured shape (../shared/notes/student-on-cpu.md): add and mul learned, fractions did not move.
ROUND0 = RoundOutcome({"add": 100, "frac": 100, "mul": 100}, {"add": 0.7, "frac": 0.02, "mul": 0.5})


def test_uniform_splits_evenly_and_sums_to_the_budget() -> None:
    out = allocate(History([ROUND0]), 301, SteerConfig(allocator="uniform"))
    assert sum(out.values()) == 301 and max(out.values()) - min(out.values()) <= 1


def test_expected_gain_gives_a_skill_that_did_not_respond_its_floor() -> None:
    cfg = SteerConfig(floor_examples=60, response_min_gain=0.03)
    out = allocate(History([ROUND0], baseline={s: 0.0 for s in SKILLS}), 300, cfg)
    assert out["frac"] == 60 and sum(out.values()) == 300
    assert out["mul"] > out["add"] > 60  # more error and it responds: mul gets the most
    naive = allocate(History([ROUND0]), 300, cfg.model_copy(update={"allocator": "error"}))
    assert naive["frac"] > naive["mul"] > naive["add"]  # error alone feeds the skill that cannot learn


def test_response_is_measured_after_the_last_budget_increase() -> None:
    later = RoundOutcome({"add": 50, "frac": 200, "mul": 50}, {"add": 0.8, "frac": 0.03, "mul": 0.7})
    retrain = History([ROUND0, later], cumulative=False)  # each round from the base: only increases add data
    assert response(retrain, "frac", 0.03) == 0.0  # +100 examples, +1 point: not responding
    assert response(retrain, "add", 0.03) == pytest.approx(0.7 / 100)  # its last increase was round 0
    assert response(History([ROUND0, later]), "add", 0.03) == pytest.approx(0.1 / 50)


def test_floors_that_exceed_the_budget_and_no_evidence_fall_back_to_uniform() -> None:
    assert allocate(History([ROUND0]), 200, SteerConfig(floor_examples=100)) == {"add": 67, "frac": 67, "mul": 66}
    flat = RoundOutcome({"add": 10, "mul": 10}, {"add": 0.0, "mul": 0.0})
    assert allocate(History([flat]), 100, SteerConfig(floor_examples=10)) == {"add": 50, "mul": 50}


def test_plan_cell_weights_split_each_skill_share_over_its_cells() -> None:
    cells = [{"topic": t, "skill": s} for t in ("a", "b") for s in ("add", "mul")] + [{"topic": "c", "skill": "add"}]
    w = cell_weights(weights({"add": 300, "mul": 100}), cells)
    assert w == pytest.approx([0.25, 0.125, 0.25, 0.125, 0.25]) and sum(w) == pytest.approx(1.0)


def test_failed_items_become_seeds_that_name_their_parent() -> None:
    items = [EvalItem.from_row({"id": f"add-{i}", "skill": "add", "reference": str(i), "prompt": f"q{i}"}) for i in range(5)]
    result = score(items, ["Answer: 0", "Answer: 9", "Answer: 2", "Answer: 9", "Answer: 9"])
    seeds = failed_items_as_seeds(result, per_skill=2)
    assert [(s.parent_id, s.question, s.reply) for s in seeds["add"]] == [("add-1", "q1", "Answer: 9"), ("add-3", "q3", "Answer: 9")]


def test_allocators_are_pluggable_by_name_and_an_unknown_one_is_refused() -> None:
    @register_allocator("all-to-first")
    def first(history: History, total: int, cfg: SteerConfig) -> dict[str, int]:
        names = history.all_skills()
        return {s: total if i == 0 else 0 for i, s in enumerate(names)}

    try:
        assert allocate(History([ROUND0]), 10, SteerConfig(allocator="all-to-first")) == {"add": 10, "frac": 0, "mul": 0}
    finally:
        del ALLOCATORS["all-to-first"]
    with pytest.raises(InputError, match="unknown student.steer.allocator 'nope'"):
        allocate(History([ROUND0]), 10, SteerConfig(allocator="nope"))


def test_steer_round_returns_budget_cell_weights_and_seeds_from_the_config() -> None:
    items = [EvalItem.from_row({"id": f"frac-{i}", "skill": "frac", "reference": "1/2", "prompt": f"q{i}"}) for i in range(4)]
    last = score(items, ["Answer: 2/4"] * 4)
    cells = [{"skill": s, "topic": "t"} for s in SKILLS]
    plan = steer_round(History([ROUND0]), 300, SteerConfig(floor_examples=60, failed_seeds_per_skill=3), cells=cells,
                       last_eval=last)
    assert plan.budget["frac"] == 60 and plan.cell_weights == pytest.approx([plan.weights[s] for s in SKILLS])
    assert [s.parent_id for s in plan.seeds["frac"]] == ["frac-0", "frac-1", "frac-2"]


def test_a_first_rise_from_zero_says_a_skill_responds_not_how_fast() -> None:
    """Measured (docs/classroom.md): after round 0 the rise per example favoured the skill already
    half learned (add) over the one that then rose most (units). The default waits for a second
    round of growth before it trusts a rate; until then responsive skills share by error."""
    from synthloop.student.steer import marginal_response

    r0 = RoundOutcome({"add": 50, "frac": 50, "units": 50}, {"add": 0.67, "frac": 0.01, "units": 0.125})
    first = History([r0], baseline={"add": 0.0, "frac": 0.0, "units": 0.0})
    assert marginal_response(first, "add", 0.03) is None and marginal_response(first, "frac", 0.03) == 0.0
    cfg = SteerConfig(floor_examples=25, response_min_gain=0.03)
    new, old = allocate(first, 200, cfg), allocate(first, 200, cfg.model_copy(update={"allocator": "expected_gain_v1"}))
    assert new["frac"] == old["frac"] == 25
    assert new["units"] > new["add"] and old["add"] > old["units"]  # error decides now, not the first rise
    r1 = RoundOutcome({"add": 40, "frac": 25, "units": 80}, {"add": 0.71, "frac": 0.0, "units": 0.325})
    second = History([r0, r1], baseline=first.baseline)
    assert marginal_response(second, "units", 0.03) == pytest.approx(0.2 / 80)
    assert marginal_response(second, "add", 0.03) == pytest.approx(0.04 / 40)
