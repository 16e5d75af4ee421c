"""Model-collapse safety: indicators, the round-over-round monitor, and the simulation harness.

- `CollapseMonitor(cfg, history_path=...)` / `CollapseMonitor.for_run(cfg, run_dir)`;
  `monitor.check(synthetic, golden_train, golden_heldout, round=, model_logprob=None) -> CollapseReport`;
  `monitor.enforce(report)` warns on warn and raises `CollapseDetected` on fail (with `stop_on_fail`);
  `write_report(report, path)`.
- `indicators`: pure functions (distinct_n, ngram_entropy, compression_ratio, tail_coverage,
  frechet_distance, mmd_rbf, covariance_trace, vendi_score) and the `INDICATORS` registry.
- `simulate`: `run_setup("gaussian" | "regression" | "lm", out_dir, ...)` (imported lazily: it
  needs scipy and matplotlib from the `local` extra).
"""

from typing import TYPE_CHECKING

from synthloop.lazy import lazy_exports

if TYPE_CHECKING:  # the names, for type checkers and editors
    from synthloop.collapse.config import CollapseConfig, ThresholdOverride
    from synthloop.collapse.embed import Embedder, get_embedder, hash_embedder, minilm_embedder
    from synthloop.collapse.indicators import (
        INDICATORS,
        Band,
        Indicator,
        compression_ratio,
        covariance_trace,
        distinct_n,
        frechet_distance,
        mmd_rbf,
        ngram_entropy,
        tail_coverage,
        tail_vocabulary,
        vendi_score,
    )
    from synthloop.collapse.measure import GoldenReference, Measurement, ModelLogprob, measure
    from synthloop.collapse.monitor import CollapseDetected, CollapseMonitor, CollapseReport, IndicatorResult, write_report

_EXPORTS = {
    "Band": "indicators",
    "CollapseConfig": "config",
    "CollapseDetected": "monitor",
    "CollapseMonitor": "monitor",
    "CollapseReport": "monitor",
    "Embedder": "embed",
    "GoldenReference": "measure",
    "INDICATORS": "indicators",
    "Indicator": "indicators",
    "IndicatorResult": "monitor",
    "Measurement": "measure",
    "ModelLogprob": "measure",
    "ThresholdOverride": "config",
    "compression_ratio": "indicators",
    "covariance_trace": "indicators",
    "distinct_n": "indicators",
    "frechet_distance": "indicators",
    "get_embedder": "embed",
    "hash_embedder": "embed",
    "measure": "measure",
    "minilm_embedder": "embed",
    "mmd_rbf": "indicators",
    "ngram_entropy": "indicators",
    "tail_coverage": "indicators",
    "tail_vocabulary": "indicators",
    "vendi_score": "indicators",
    "write_report": "monitor",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = [
    "INDICATORS",
    "Band",
    "CollapseConfig",
    "CollapseDetected",
    "CollapseMonitor",
    "CollapseReport",
    "Embedder",
    "GoldenReference",
    "Indicator",
    "IndicatorResult",
    "Measurement",
    "ModelLogprob",
    "ThresholdOverride",
    "compression_ratio",
    "covariance_trace",
    "distinct_n",
    "frechet_distance",
    "get_embedder",
    "hash_embedder",
    "measure",
    "minilm_embedder",
    "mmd_rbf",
    "ngram_entropy",
    "tail_coverage",
    "tail_vocabulary",
    "vendi_score",
    "write_report",
]
