"""The recipe's `[collapse]` section. Owned by the collapse package; `recipe.py` imports it.

Present means on: at the end of a run the engine measures every indicator against the golden set,
writes `report` into the run directory, appends the round to `history`, warns on warn and stops with
`CollapseDetected` on fail when `stop_on_fail` is true.

```toml
[collapse]
embedder = "minilm"
stop_on_fail = true
[collapse.thresholds.vendi_ratio]
warn = 0.85
fail = 0.7
[collapse.thresholds.ref_ppl_ratio]   # two-sided indicators take [low, high] pairs
warn = [0.8, 1.4]
```
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from synthloop.collapse.indicators import Band, Indicator


def _indicators() -> "dict[str, Indicator]":
    """The indicator registry, imported when first needed (it brings numpy): the recipe imports
    this config module, and reading a recipe must stay light."""
    from synthloop.collapse.indicators import INDICATORS

    return INDICATORS

Bound = float | tuple[float, float]


class ThresholdOverride(BaseModel):
    """Replaces an indicator's default warn and/or fail threshold."""

    model_config = ConfigDict(extra="forbid")

    warn: Bound | None = None
    fail: Bound | None = None


class CollapseConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    #: "minilm" (all-MiniLM-L6-v2, needs the `local` extra) or "hash" (hashed bag of words).
    embedder: Literal["minilm", "hash"] = "minilm"
    #: Raise `CollapseDetected` (the run stops, non-zero exit) when any indicator fails.
    stop_on_fail: bool = True
    #: Round-over-round history, relative to the run directory.
    history: str = "collapse/history.json"
    #: This round's report, relative to the run directory.
    report: str = "collapse/report.json"
    #: At most this many texts per side for the embedding indicators (the golden set needs twice
    #: as many for its noise floor; fewer golden rows shrink every side to match).
    max_texts: int = Field(512, ge=16)
    #: At most this many tokens per side for the lexical indicators and the proxy LMs.
    max_tokens: int = Field(50_000, ge=1_000)
    #: The golden tail vocabulary: the rarest words that make up this share of golden tokens.
    tail_mass: float = Field(0.1, gt=0, lt=1)
    #: Which indicators to compute (default: all).
    indicators: list[str] = Field(default_factory=lambda: list(_indicators()))
    thresholds: dict[str, ThresholdOverride] = Field(default_factory=dict)
    seed: int = 0

    @model_validator(mode="after")
    def _known_and_consistent(self) -> "CollapseConfig":
        known = _indicators()
        for name in [*self.indicators, *self.thresholds]:
            if name not in known:
                raise ValueError(f"unknown collapse indicator {name!r}: use one of {', '.join(known)}")
        for name in self.thresholds:
            warn, fail = self.bands(name)
            if not (fail.low <= warn.low and warn.high <= fail.high):
                raise ValueError(f"collapse.thresholds.{name}: the warn band {warn.describe()} must lie "
                                 f"inside the fail band {fail.describe()}")
        return self

    def bands(self, name: str) -> tuple[Band, Band]:
        """The (warn, fail) bands in force for one indicator: defaults with this config's overrides."""
        ind = _indicators()[name]
        over = self.thresholds.get(name) or ThresholdOverride()
        return _band(ind, over.warn, ind.warn, "warn"), _band(ind, over.fail, ind.fail, "fail")


def _band(ind: Indicator, bound: Bound | None, default: Band, which: str) -> Band:
    if bound is None:
        return default
    pair = isinstance(bound, tuple)
    if pair != (ind.direction == "two_sided"):
        shape = "a [low, high] pair" if ind.direction == "two_sided" else "one number"
        raise ValueError(f"collapse.thresholds.{ind.name}.{which}: {ind.name} is {ind.direction}, give {shape}")
    from synthloop.collapse.indicators import Band

    if isinstance(bound, tuple):
        return Band(*bound)
    if ind.direction == "higher_is_worse":
        return Band(high=bound)
    return Band(low=bound, high=math.inf)
