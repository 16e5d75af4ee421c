"""Retrain a language model on its own samples, generation after generation, under the data regimes
of the collapse literature, and measure every generation with the monitor's own indicators.

The loop is model-agnostic: a `Student` trains a model on texts, samples texts from it and scores
texts under it (`bench/bench_collapse_lm.py` has a tiny transformer trained from scratch and a
SmolLM2-135M fine-tune). Generation 0 is trained on the human train split and shared by every
regime; generation g >= 1 is trained (from the same starting point, never continued) on a training
set that the regime builds from the human split and the samples of earlier generations:

- `replace`: the previous generation's samples only (Shumailov et al., Nature 2024; Gerstgrasser et
  al. 2024 "replace").
- `accumulate`: the human split and every earlier generation's samples (Gerstgrasser et al. 2024);
  the training set grows by one sample set per generation.
- `golden10`: the previous generation's samples with a fresh random 10% of the human split in
  place of 10% of them (Shumailov et al.'s "10% of the original data preserved").
- `filtered`: the previous generation's samples after synthloop's curation chain (quality filter,
  exact dedup, near dedup); every generation samples a pool a little larger than the training set
  so the filtered set can still be topped up to the same size.

Every generation is cached under `cache_dir` (its samples and its measurement, written last as one
JSON file), so a rerun resumes at the first generation that is not there.
"""

from __future__ import annotations

import gzip
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from synthloop.collapse.measure import Measurement, measure
from synthloop.collapse.monitor import CollapseMonitor, CollapseReport, json_finite
from synthloop.errors import InputError
from synthloop.storage.atomic import atomic_write_text

#: texts -> (texts kept, {rejection reason: count})
Verifier = Callable[[Sequence[str]], tuple[list[str], dict[str, int]]]


class Student(Protocol):
    """What the loop needs from a language model. `train` must start from the same point every
    generation (random init or the base model), so generations differ only by their data."""

    def train(self, texts: Sequence[str], seed: int) -> Any: ...

    def sample(self, model: Any, n: int, seed: int) -> list[str]: ...

    def logprob(self, model: Any, texts: Sequence[str]) -> tuple[float, int]: ...


@dataclass(frozen=True)
class Regime:
    """How one generation's training set is built from the human split and earlier samples."""

    name: str
    accumulate: bool = False
    golden_share: float = 0.0
    verify: bool = False


REGIMES: dict[str, Regime] = {r.name: r for r in (
    Regime("replace"),
    Regime("accumulate", accumulate=True),
    Regime("golden10", golden_share=0.1),
    Regime("filtered", verify=True),
)}


@dataclass
class TrainingSet:
    """One generation's training texts and where they came from."""

    texts: list[str]
    human: int
    synthetic: int
    rejected: dict[str, int] = field(default_factory=dict)
    verified_pool: int = 0  # samples the verifier saw (0 when the regime does not verify)


def build_training_set(regime: Regime, human: Sequence[str], samples: Sequence[Sequence[str]], n: int,
                       rng: random.Random, verifier: Verifier | None = None) -> TrainingSet:
    """The training set of the generation after `len(samples)` earlier ones (samples[g] = the pool
    sampled from generation g; its first `n` texts are the ones measured and reused)."""
    if not samples:
        return TrainingSet(list(human), human=len(human), synthetic=0)
    last = list(samples[-1])
    if regime.accumulate:
        synthetic = [t for pool in samples for t in pool[:n]]
        return TrainingSet([*human, *synthetic], human=len(human), synthetic=len(synthetic))
    if regime.verify:
        if verifier is None:
            raise InputError(f"regime {regime.name!r} filters its samples but no verifier was given: pass verifier=")
        kept, rejected = verifier(last)
        return TrainingSet(kept[:n], human=0, synthetic=len(kept[:n]), rejected=rejected, verified_pool=len(last))
    n_human = round(regime.golden_share * n)
    real = rng.sample(list(human), n_human) if n_human else []
    return TrainingSet([*last[:n - n_human], *real], human=n_human, synthetic=n - n_human)


def curation_verifier() -> Verifier:
    """synthloop's own curation chain as the verifier: `QualityFilter` (Gopher-style heuristics),
    `ExactDedup`, `NearDedup` with their default settings, fresh state per call."""
    from synthloop.curation import ExactDedup, NearDedup, QualityFilter
    from synthloop.pipeline import RunContext, run_stages
    from synthloop.records import Record

    def verify(texts: Sequence[str]) -> tuple[list[str], dict[str, int]]:
        ctx = RunContext()
        stages = [QualityFilter(), ExactDedup(), NearDedup()]
        recs = [Record(id=str(i), text=t) for i, t in enumerate(texts)]
        kept = [r.text for r in run_stages(recs, stages, ctx)]
        reasons = Counter(f"{r.rejected_stage}:{r.rejected_reason.split(':')[0]}" for r in ctx.rejected)
        return kept, dict(sorted(reasons.items()))

    return verify


# -- one generation ---------------------------------------------------------------------------------


@dataclass
class Generation:
    """What is recorded (and cached) about one generation of one regime."""

    regime: str
    generation: int
    golden_ppl: float
    train_texts: int
    train_human: int
    train_synthetic: int
    rejected: dict[str, int]
    verified_pool: int
    measurement: dict[str, Any]
    seconds: dict[str, float]
    samples: list[str] = field(repr=False, default_factory=list)
    report: CollapseReport | None = field(repr=False, default=None)

    def row(self) -> dict[str, Any]:
        """The JSON-ready record (without the samples, which have their own file)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("samples", "report")}
        if self.report is not None:
            out["assessed"] = {k: r.assessed for k, r in self.report.results.items()}
            out["status"] = {k: r.status for k, r in self.report.results.items()}
        return out


@dataclass
class Experiment:
    """Everything a generation needs that does not change between generations."""

    student: Student
    human_train: list[str]
    heldout: list[str]
    n_samples: int  # texts per generation that are measured and reused
    pool: int  # texts sampled per generation (>= n_samples; the verifier tops up from the extra)
    cache_dir: Path
    seed: int = 0
    verifier: Verifier | None = None
    log: Callable[[str], None] = print


def _gen_dir(exp: Experiment, regime: str, g: int) -> Path:
    return exp.cache_dir / ("gen_000" if g == 0 else f"{regime}/gen_{g:03d}")


def _load(path: Path) -> Generation | None:
    done = path / "generation.json"
    if not done.is_file():
        return None
    row = json.loads(done.read_text(encoding="utf-8"))
    row.pop("assessed", None), row.pop("status", None)
    with gzip.open(path / "samples.jsonl.gz", "rt", encoding="utf-8") as fh:
        samples = [json.loads(line)["text"] for line in fh]
    return Generation(**row, samples=samples)


def _save(path: Path, gen: Generation) -> None:
    """Samples first, then the generation record (its presence means the generation is complete)."""
    path.mkdir(parents=True, exist_ok=True)
    with gzip.open(path / "samples.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"text": t}) + "\n" for t in gen.samples)
    atomic_write_text(path / "generation.json", json.dumps(json_finite(gen.row()), indent=1) + "\n")


def _train_and_measure(exp: Experiment, regime: Regime, g: int, tset: TrainingSet, monitor: CollapseMonitor) -> Generation:
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    model = exp.student.train(tset.texts, seed=exp.seed * 1000 + g)
    times["train"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    samples = exp.student.sample(model, exp.pool, seed=exp.seed * 1000 + g)
    times["sample"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = monitor.reference(exp.human_train, exp.heldout)
    baseline = monitor.baseline(g).get("raw", {}).get("golden_ppl")
    m = measure(samples[:exp.n_samples], ref, names=monitor.cfg.indicators,
                model_logprob=lambda texts: exp.student.logprob(model, texts), baseline_golden_ppl=baseline)
    times["measure"] = time.perf_counter() - t0
    return Generation(regime.name if g else "shared", g, m.raw["golden_ppl"], len(tset.texts), tset.human,
                      tset.synthetic, tset.rejected, tset.verified_pool, m.to_dict(),
                      {k: round(v, 2) for k, v in times.items()}, samples)


def _measurement(d: dict[str, Any]) -> Measurement:
    return Measurement(values=dict(d["values"]), raw=dict(d["raw"]), skipped=dict(d["skipped"]),
                       relative_to_round0=set(d["relative_to_round0"]))


def cached_generations(exp: Experiment, regime: str) -> int:
    """How many consecutive generations (0, 1, ...) of `regime` are complete in the cache."""
    g = 0
    while (_gen_dir(exp, regime, g) / "generation.json").is_file():
        g += 1
    return g


def run_regime(exp: Experiment, regime: Regime, generations: int, monitor: CollapseMonitor) -> list[Generation]:
    """Generations 0..`generations` of one regime (cached ones are read back, not recomputed). The
    monitor must be fresh: round 0 is generation 0, and every later ratio is against it."""
    out: list[Generation] = []
    for g in range(generations + 1):
        path = _gen_dir(exp, regime.name, g)
        gen = _load(path)
        if gen is None:
            rng = random.Random(f"{exp.seed}/{regime.name}/{g}")
            tset = build_training_set(regime, exp.human_train, [p.samples for p in out], exp.n_samples, rng,
                                      exp.verifier)
            gen = _train_and_measure(exp, regime, g, tset, monitor)
            _save(path, gen)
            exp.log(f"{regime.name} g={g}: golden ppl {gen.golden_ppl:.2f}, train {gen.train_texts} texts "
                    f"({gen.train_human} human), {gen.seconds}")
        gen.report = monitor.evaluate(_measurement(gen.measurement), round=g)
        gen.regime = regime.name
        out.append(gen)
    return out


__all__ = ["REGIMES", "Experiment", "Generation", "Regime", "Student", "TrainingSet", "Verifier",
           "build_training_set", "cached_generations", "curation_verifier", "run_regime"]
