"""The round-over-round collapse monitor: measure a round, compare with thresholds and round 0,
say ok / warn / fail with the reasons, keep the history on disk.

The engine calls `check(...)` at the end of a run when the recipe has `[collapse]`, writes the report
with `write_report`, and calls `enforce(report)`: a warning on warn, `CollapseDetected` on fail when
`stop_on_fail` is set.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import xxhash

from synthloop.collapse.config import CollapseConfig
from synthloop.collapse.embed import Embedder, get_embedder
from synthloop.collapse.indicators import INDICATORS, Status
from synthloop.collapse.measure import GoldenReference, Measurement, ModelLogprob, measure
from synthloop.errors import StorageError, SynthloopError

log = logging.getLogger("synthloop.collapse")

_RANK: dict[str, int] = {"skipped": 0, "ok": 0, "warn": 1, "fail": 2}


@dataclass
class IndicatorResult:
    """One indicator in one round. `value` is normalised against the golden set (1.0 = like a human
    sample of the same size); `assessed` is what the thresholds judged: `value` itself at round 0
    (basis "golden"), `value / value at round 0` afterwards (basis "round0"), because collapse is a
    change across rounds and round 0's own distance from the golden set is a quality question that
    round 0's report already answered."""

    name: str
    value: float | None
    assessed: float | None
    basis: Literal["golden", "round0"]
    status: Status
    warn: str
    fail: str
    reason: str = ""


@dataclass
class CollapseReport:
    """One round's verdict. `status` is the worst indicator status; `reasons` name every warn/fail."""

    round: int
    status: Status
    results: dict[str, IndicatorResult]
    reasons: list[str] = field(default_factory=list)
    raw: dict[str, float] = field(default_factory=dict)
    embedder: str = ""

    @property
    def values(self) -> dict[str, float | None]:
        return {k: r.value for k, r in self.results.items()}

    @property
    def statuses(self) -> dict[str, Status]:
        return {k: r.status for k, r in self.results.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"round": self.round, "status": self.status, "reasons": self.reasons, "embedder": self.embedder,
                "indicators": {k: asdict(r) for k, r in self.results.items()}, "raw": self.raw}


class CollapseDetected(SynthloopError):
    """An indicator crossed its fail threshold and `[collapse] stop_on_fail` is true."""

    def __init__(self, report: CollapseReport) -> None:
        self.report = report
        super().__init__(f"model collapse detected at round {report.round}: {'; '.join(report.reasons)}. "
                         "Raise the golden share in [grounding], switch the mixing policy to accumulate, "
                         "or set [collapse] stop_on_fail = false to continue anyway")


class CollapseMonitor:
    """Thresholds + history. `evaluate` takes values you measured; `check` measures them first."""

    def __init__(self, cfg: CollapseConfig | None = None, *, history_path: str | Path | None = None,
                 embed: Embedder | None = None) -> None:
        self.cfg = cfg or CollapseConfig()
        self.history_path = Path(history_path) if history_path else None
        self._embed = embed
        self._refs: dict[str, GoldenReference] = {}
        self.history: list[dict[str, Any]] = self._load_history()

    @classmethod
    def for_run(cls, cfg: CollapseConfig, run_dir: str | Path, *, embed: Embedder | None = None) -> "CollapseMonitor":
        """The monitor of a run directory: history at `run_dir / cfg.history`."""
        return cls(cfg, history_path=Path(run_dir) / cfg.history, embed=embed)

    @property
    def embedder_name(self) -> str:
        return "custom" if self._embed is not None else self.cfg.embedder

    def check(self, synthetic_texts: Sequence[str], golden_train_texts: Sequence[str],
              golden_heldout_texts: Sequence[str], *, round: int,
              model_logprob: ModelLogprob | None = None) -> CollapseReport:
        """Measure every configured indicator for this round, evaluate it, and record it in the history."""
        ref = self.reference(golden_train_texts, golden_heldout_texts)
        baseline = self.baseline(round).get("raw", {}).get("golden_ppl") if model_logprob is not None else None
        m = measure(synthetic_texts, ref, names=self.cfg.indicators, model_logprob=model_logprob,
                    baseline_golden_ppl=baseline)
        return self.evaluate(m, round=round)

    def reference(self, train: Sequence[str], heldout: Sequence[str]) -> GoldenReference:
        """The golden reference for these texts, built once per monitor (golden embeddings are the slow part)."""
        key = xxhash.xxh3_64_hexdigest("\x1e".join([*train, "\x1d", *heldout]).encode("utf-8"))
        if key not in self._refs:
            embed = self._embed or get_embedder(self.cfg.embedder)
            self._refs[key] = GoldenReference(train, heldout, embed, max_texts=self.cfg.max_texts,
                                              max_tokens=self.cfg.max_tokens, tail_mass=self.cfg.tail_mass,
                                              seed=self.cfg.seed)
        return self._refs[key]

    def baseline(self, round: int) -> dict[str, Any]:
        """The history entry of round 0 (or the earliest recorded round before `round`); {} if none."""
        earlier = [h for h in self.history if h["round"] < round]
        return min(earlier, key=lambda h: h["round"]) if earlier else {}

    def evaluate(self, m: Measurement | dict[str, float | None], *, round: int) -> CollapseReport:
        """Thresholds and the round-0 comparison for one round's values; appends to the history."""
        m = m if isinstance(m, Measurement) else Measurement(values=dict(m))
        for name, value in m.values.items():
            if value is not None and not math.isfinite(value):
                m.values[name] = None
                m.skipped.setdefault(name, "undefined on this data (empty input or a zero baseline)")
        m.raw = {k: v for k, v in m.raw.items() if math.isfinite(v)}
        base = self.baseline(round).get("values", {})
        results = {name: self._result(name, value, None if name in m.relative_to_round0 else base.get(name),
                                      m.skipped.get(name, ""), name in m.relative_to_round0 and bool(base))
                   for name, value in m.values.items()}
        worst: Status = max((r.status for r in results.values()), key=_RANK.__getitem__, default="ok")
        reasons = [r.reason for r in results.values() if r.status in ("warn", "fail")]
        report = CollapseReport(round, "ok" if worst == "skipped" else worst, results, reasons, m.raw, self.embedder_name)
        self._record(report)
        return report

    def _result(self, name: str, value: float | None, base: float | None, skipped: str,
                already_relative: bool) -> IndicatorResult:
        warn, fail = self.cfg.bands(name)
        assessed = value / base if value is not None and base else value
        basis: Literal["golden", "round0"] = "round0" if base or already_relative else "golden"
        status = INDICATORS[name].status(assessed, warn, fail)
        r = IndicatorResult(name, value, assessed, basis, status, warn.describe(), fail.describe(), reason=skipped)
        if status in ("warn", "fail"):
            band = fail if status == "fail" else warn
            what = f"{name} = {assessed:.3g}" + (" of round 0" if basis == "round0" else " of golden")
            r.reason = f"{what}, outside the {status} band {band.describe()}"
        return r

    def enforce(self, report: CollapseReport) -> None:
        """Log a warning on warn; raise `CollapseDetected` on fail when `stop_on_fail` is set."""
        if report.status == "warn" or (report.status == "fail" and not self.cfg.stop_on_fail):
            log.warning("collapse indicators at round %d: %s", report.round, "; ".join(report.reasons))
        if report.status == "fail" and self.cfg.stop_on_fail:
            raise CollapseDetected(report)

    # -- history ---------------------------------------------------------------------------------

    def _load_history(self) -> list[dict[str, Any]]:
        if self.history_path is None or not self.history_path.exists():
            return []
        try:
            data = json.loads(self.history_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise StorageError(f"cannot read the collapse history {self.history_path}: {e} "
                               "(delete it to start the history again from this round)") from e
        return list(data.get("rounds", []))

    def _record(self, report: CollapseReport) -> None:
        entry = {"round": report.round, "status": report.status, "values": report.values, "raw": report.raw}
        self.history = [h for h in self.history if h["round"] != report.round] + [entry]
        self.history.sort(key=lambda h: h["round"])
        if self.history_path is not None:
            write_json(self.history_path, {"rounds": self.history})


def write_report(report: CollapseReport, path: str | Path) -> Path:
    """Write a report as JSON (atomically: a reader never sees half a file)."""
    return write_json(Path(path), report.to_dict())


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def json_finite(x: Any) -> Any:
    """JSON has no NaN: null instead of a non-finite float, inside dicts and lists too."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: json_finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [json_finite(v) for v in x]
    return x
