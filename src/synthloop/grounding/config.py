"""The recipe's `[grounding]` section. Owned by the grounding package; `recipe.py` imports it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class GroundingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)
