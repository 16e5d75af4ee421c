"""The `[grounding]` section refuses every setting the mixer could not honour, naming the keys."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from synthloop.errors import RecipeError
from synthloop.grounding import GroundingConfig
from synthloop.recipe import recipe_from_dict


def _recipe(grounding: dict[str, object]) -> dict[str, object]:
    return {"name": "t", "plan": {"topics": ["itertools"]}, "grounding": grounding}


def test_defaults_use_the_builtin_golden_set_and_keep_half_golden() -> None:
    cfg = GroundingConfig()
    assert cfg.is_builtin and cfg.golden == "python-docs"
    assert (cfg.min_golden_share, cfg.max_lambda, cfg.heldout_fraction, cfg.policy) == (0.5, 1.0, 0.1, "accumulate")
    assert cfg.lambda_cap == 1.0


def test_share_and_lambda_that_contradict_each_other_name_both_keys() -> None:
    with pytest.raises(RecipeError) as e:
        recipe_from_dict(_recipe({"min_golden_share": 0.5, "max_lambda": 2.0}))
    msg = str(e.value)
    assert "max_lambda=2.0" in msg and "min_golden_share=0.5" in msg and "max_lambda <= 1" in msg


def test_stricter_share_than_lambda_is_consistent_and_caps_lambda() -> None:
    cfg = GroundingConfig(min_golden_share=0.8, max_lambda=0.1)
    assert cfg.lambda_cap == pytest.approx(0.1)
    cfg = GroundingConfig(min_golden_share=0.25, max_lambda=3.0)
    assert cfg.lambda_cap == pytest.approx(3.0)


def test_unknown_key_is_refused_with_its_path() -> None:
    with pytest.raises(RecipeError, match="unknown key 'grounding.golden_share'"):
        recipe_from_dict(_recipe({"golden_share": 0.5}))


def test_fixed_budget_needs_its_size_and_the_size_needs_the_policy() -> None:
    with pytest.raises(ValidationError, match="fixed_budget_size"):
        GroundingConfig(policy="fixed_budget")
    with pytest.raises(ValidationError, match="only used by policy='fixed_budget'"):
        GroundingConfig(policy="replace", fixed_budget_size=10)
    assert GroundingConfig(policy="fixed_budget", fixed_budget_size=10).fixed_budget_size == 10


def test_a_golden_file_needs_a_content_mapping() -> None:
    with pytest.raises(ValidationError, match="set text_field, or prompt_field and response_field"):
        GroundingConfig(golden="data/mine.jsonl")
    with pytest.raises(ValidationError, match="prompt_field and response_field go together"):
        GroundingConfig(golden="data/mine.jsonl", prompt_field="q")
    with pytest.raises(ValidationError, match="use only one of"):
        GroundingConfig(golden="data/mine.jsonl", text_field="t", messages_field="m")
    assert GroundingConfig(golden="x.csv", prompt_field="q", response_field="a").mapping_problem() is None


def test_mapping_keys_on_the_builtin_set_are_refused_as_dead_options() -> None:
    with pytest.raises(ValidationError, match="remove text_field, topic_field"):
        GroundingConfig(text_field="body", topic_field="t")


@pytest.mark.parametrize("key, value", [("heldout_fraction", 1.0), ("min_golden_share", 0.0),
                                        ("max_lambda", -0.5), ("fixed_budget_size", 0),
                                        ("stratify_by", ["persona"]), ("policy", "mix-all")])
def test_out_of_range_values_are_refused(key: str, value: object) -> None:
    with pytest.raises(RecipeError, match=f"grounding.{key}"):
        recipe_from_dict(_recipe({key: value}))


def test_default_max_lambda_yields_to_a_stricter_share() -> None:
    cfg = GroundingConfig(min_golden_share=0.8)
    assert cfg.lambda_cap == pytest.approx(0.25)
    with pytest.raises(ValidationError, match="max_lambda=1.0 allows a golden share of 0.500"):
        GroundingConfig(min_golden_share=0.8, max_lambda=1.0)
