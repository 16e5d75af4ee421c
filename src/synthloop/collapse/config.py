"""The recipe's `[collapse]` section. Owned by the collapse package; `recipe.py` imports it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class CollapseConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)
