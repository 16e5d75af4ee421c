"""Audit thresholds: defaults, overridden by an `[audit]` TOML table, overridden by CLI flags."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from synthloop.errors import InputError


class AuditConfig(BaseModel):
    """An axis is flagged when the *lower* end of its 95% interval passes a threshold, so sampling
    noise on a small set does not flag; a counterfactual flip rate is flagged above `max_flip_rate`."""

    model_config = ConfigDict(extra="forbid")

    max_tv: float = Field(0.10, ge=0, le=1, description="total variation vs golden")
    max_js: float = Field(0.05, ge=0, le=1, description="Jensen-Shannon divergence (bits) vs golden")
    max_drift_tv: float = Field(0.10, ge=0, le=1, description="total variation between consecutive rounds")
    max_flip_rate: float = Field(0.02, ge=0, le=1, description="share of swapped records whose decision flips")
    min_mentions: int = Field(30, ge=1, description="records mentioning an axis, per side, before it is judged")
    bootstrap: int = Field(200, ge=0, description="bootstrap replicates for the 95% intervals")
    counterfactual_sample: int = Field(2000, ge=0, description="records swapped and re-decided (0: skip)")
    seed: int = 0


def load_config(path: Path | None, overrides: dict[str, Any]) -> AuditConfig:
    """The `[audit]` table of `path` (when given) with the non-None `overrides` on top."""
    table: dict[str, Any] = {}
    if path is not None:
        if not path.is_file():
            raise InputError(f"audit config not found: {path} (give a TOML file with an [audit] table)")
        try:
            table = dict(tomllib.loads(path.read_text(encoding="utf-8")).get("audit", {}))
        except tomllib.TOMLDecodeError as e:
            raise InputError(f"{path}: not valid TOML ({e}); fix the file") from None
    table.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return AuditConfig(**table)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InputError(f"[audit] {where}: {err['msg']} (see docs/audit.md)") from None


__all__ = ["AuditConfig", "load_config"]
