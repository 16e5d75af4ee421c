"""The recipe's `[grounding]` section. Owned by the grounding package; `recipe.py` imports it.

Two parts: `FieldMapping` says how a user's rows become golden `Record`s (the loader needs only
that), and `GroundingConfig` adds which golden set to use, the held-out split and the mixing policy.
Every combination that could not be honoured is refused here, before any work, naming the keys.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Names `golden` may take besides a path. The snapshot lives in `grounding/data/`.
BUILTIN_GOLDEN_SETS: tuple[str, ...] = ("python-docs",)

GoldenFormat = Literal["auto", "jsonl", "parquet", "csv", "hf"]
Policy = Literal["accumulate", "replace", "fixed_budget"]
StratumKey = Literal["topic", "skill"]

#: Float slack when comparing shares: 1 / (1 + 1.0) must count as >= 0.5.
_EPS = 1e-9


class FieldMapping(BaseModel):
    """Which columns of a user's file hold the content, the labels and the id.

    Content comes from exactly one of: `text_field`; `prompt_field` + `response_field` (turned into
    a user/assistant `messages` pair); `messages_field` (already a list of {role, content}).
    Columns that are not mapped are kept in the record's `meta`, so nothing about a row is lost.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    text_field: str | None = None
    prompt_field: str | None = None
    response_field: str | None = None
    messages_field: str | None = None
    topic_field: str | None = None
    skill_field: str | None = None
    #: A column with the user's own stable ids. Without it the id is a hash of the row's content,
    #: which is also stable (it does not depend on the row's position in the file).
    id_field: str | None = None

    def content_fields(self) -> list[str]:
        """The mapping keys that say where content comes from (set ones only)."""
        keys = ("text_field", "prompt_field", "response_field", "messages_field")
        return [k for k in keys if getattr(self, k) is not None]

    def mapping_problem(self) -> str | None:
        """Why this mapping cannot produce content, or None when it can."""
        text, prompt, response, messages = self.text_field, self.prompt_field, self.response_field, self.messages_field
        pair = prompt is not None or response is not None
        modes = sum([text is not None, pair, messages is not None])
        if modes == 0:
            return ("no content column mapped: set text_field, or prompt_field and response_field, "
                    "or messages_field")
        if modes > 1:
            return (f"content columns {', '.join(self.content_fields())} are set together: "
                    "use only one of text_field, prompt_field+response_field, messages_field")
        if pair and (prompt is None or response is None):
            return "prompt_field and response_field go together: set both (or use text_field)"
        return None


class GroundingConfig(FieldMapping):
    """Golden set, held-out split and mixing policy.

    The invariant the mixer keeps: the golden training rows are all in every mix, and synthetic rows
    are at most `min(max_lambda, (1 - min_golden_share) / min_golden_share)` times as many.
    """

    #: "python-docs" (built in) or a path to a JSONL / Parquet / CSV file or a saved HF dataset dir.
    golden: str = "python-docs"
    format: GoldenFormat = "auto"
    #: Share of golden rows kept out of every mix for evaluation; chosen by a hash of the row id,
    #: so a row stays on its side when rows are added.
    heldout_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    #: Separate from the recipe's seed on purpose: changing the generation seed must not move
    #: evaluation rows into training.
    heldout_seed: int = 0
    min_golden_share: float = Field(default=0.5, gt=0.0, le=1.0)
    #: lambda = synthetic rows / golden rows in the mix. Left at its default, a stricter
    #: min_golden_share lowers the effective cap; set explicitly, it must agree with min_golden_share.
    max_lambda: float = Field(default=1.0, ge=0.0)
    policy: Policy = "accumulate"
    #: Synthetic rows per mix under policy "fixed_budget" (still capped by max_lambda).
    fixed_budget_size: int | None = Field(default=None, ge=1)
    #: When synthetic rows are sampled down, keep these labels' proportions (every value represented
    #: when the sample is large enough), in this order of priority.
    stratify_by: list[StratumKey] = ["topic", "skill"]

    @model_validator(mode="after")
    def _consistent(self) -> GroundingConfig:
        for problem in (self._mapping_check(), self._share_check(), self._budget_check()):
            if problem:
                raise ValueError(problem)
        return self

    @property
    def is_builtin(self) -> bool:
        return self.golden in BUILTIN_GOLDEN_SETS

    @property
    def lambda_cap(self) -> float:
        """The largest synthetic/golden ratio both `max_lambda` and `min_golden_share` allow."""
        return min(self.max_lambda, (1.0 - self.min_golden_share) / self.min_golden_share)

    def _mapping_check(self) -> str | None:
        if self.is_builtin:
            mapped = [k for k in (*self.content_fields(), "topic_field", "skill_field", "id_field")
                      if getattr(self, k) is not None]
            if mapped:
                return (f"golden={self.golden!r} is built in and has its own columns: remove "
                        f"{', '.join(mapped)} (they apply to a golden file)")
            return None
        problem = self.mapping_problem()
        return f"golden={self.golden!r} is a file, but {problem}" if problem else None

    def _share_check(self) -> str | None:
        """An explicit max_lambda that min_golden_share could never allow is a contradiction; the
        default max_lambda simply yields to a stricter min_golden_share."""
        floor_share = 1.0 / (1.0 + self.max_lambda)
        if "max_lambda" not in self.model_fields_set or floor_share + _EPS >= self.min_golden_share:
            return None
        allowed = (1.0 - self.min_golden_share) / self.min_golden_share
        return (f"max_lambda={self.max_lambda} allows a golden share of {floor_share:.3f}, below "
                f"min_golden_share={self.min_golden_share}: set max_lambda <= {allowed:.4g} or "
                f"min_golden_share <= {floor_share:.4g}")

    def _budget_check(self) -> str | None:
        if self.policy == "fixed_budget" and self.fixed_budget_size is None:
            return "policy='fixed_budget' needs fixed_budget_size (synthetic rows per mix)"
        if self.policy != "fixed_budget" and self.fixed_budget_size is not None:
            return (f"fixed_budget_size is only used by policy='fixed_budget' (policy is "
                    f"{self.policy!r}): remove it or set policy='fixed_budget'")
        return None


__all__ = ["BUILTIN_GOLDEN_SETS", "FieldMapping", "GoldenFormat", "GroundingConfig", "Policy", "StratumKey"]
