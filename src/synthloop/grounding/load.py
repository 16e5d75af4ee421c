"""`load_golden(cfg)`: the golden set a recipe's `[grounding]` section names, built in or a user's
file. It sits above both `golden` (files) and `builtin` (snapshots), so neither imports the other."""

from __future__ import annotations

from pathlib import Path

from synthloop.grounding.builtin import load_builtin
from synthloop.grounding.config import GroundingConfig
from synthloop.grounding.golden import GoldenSet, load_golden_file


def load_golden(cfg: GroundingConfig | None = None) -> GoldenSet:
    cfg = cfg or GroundingConfig()
    if cfg.is_builtin:
        return load_builtin(cfg.golden, heldout_fraction=cfg.heldout_fraction, heldout_seed=cfg.heldout_seed)
    return load_golden_file(Path(cfg.golden), cfg, format=cfg.format,
                            heldout_fraction=cfg.heldout_fraction, heldout_seed=cfg.heldout_seed)


__all__ = ["load_golden"]
