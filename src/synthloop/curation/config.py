"""The recipe's `[curate]` section. Owned by the curation package; `recipe.py` imports it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class CurateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    exact_dedup: bool = True
