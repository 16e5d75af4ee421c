"""Seeded model-collapse experiments that run on a CPU in seconds and reproduce published results.

- `gaussian`: refit a normal distribution on N of its own samples per generation (Shumailov et al.,
  Nature 2024). Under `replace` the fitted sigma decays as exp(-g/N) (geometric mean over seeds:
  exactly exp(g/2 * (digamma((N-1)/2) + log(2/N)))), and the 3-sigma tails vanish; under
  `accumulate` (Gerstgrasser et al. 2024) it stays near 1; keeping a share of real data plateaus.
- `regression`: ordinary least squares, d features, T samples per round, each round labelled by the
  previous model (Gerstgrasser et al. 2024; Dohmatob, Feng & Kempe 2024): `replace` test error grows
  as n * sigma^2 d / (T - d - 1); `accumulate` stays below (pi^2 / 6) * sigma^2 d / (T - d - 1).
- `lm`: a word-bigram LM trained on the golden Python docs, retrained on its own samples. Below
  temperature 1 diversity collapses within a few generations; at temperature 1 diversity metrics
  stay nearly flat while golden perplexity and tail coverage degrade; golden mixing bounds the damage.
  The indicators are the monitor's own (`CollapseMonitor`), so this is also the monitor's test bench.

Each setup returns a `SimResult` (curves per generation + a measured-vs-theory summary) and
`run_setup` writes it as `<setup>.json` and `<setup>.png` into an output directory.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import digamma, ndtr

from synthloop.collapse.config import CollapseConfig
from synthloop.collapse.embed import Embedder, hash_embedder
from synthloop.collapse.indicators import INDICATORS
from synthloop.collapse.monitor import CollapseMonitor, CollapseReport, json_finite
from synthloop.collapse.ngram import BigramLM, Vocab
from synthloop.errors import MissingDependency, RecipeError


@dataclass
class SummaryRow:
    """One measured-vs-theory comparison. `ok` says whether it is inside the stated tolerance."""

    quantity: str
    measured: float
    theory: float | None
    tolerance: str
    ok: bool


@dataclass
class SimResult:
    setup: str
    params: dict[str, Any]
    curves: dict[str, list[float]]
    summary: list[SummaryRow]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"setup": self.setup, "params": self.params, "curves": self.curves,
                "summary": [asdict(r) for r in self.summary], **self.extra}


def _rel_ok(measured: float, theory: float, rel: float) -> bool:
    return abs(measured - theory) <= rel * abs(theory)


# -- Gaussian --------------------------------------------------------------------------------------


def gaussian_theory_sigma(g: np.ndarray | int, n: int) -> np.ndarray:
    """Geometric mean of the fitted sigma after g `replace` generations of n samples (MLE fit)."""
    per_gen = 0.5 * (digamma((n - 1) / 2) + math.log(2 / n))
    return np.exp(np.asarray(g, dtype=np.float64) * per_gen)


def simulate_gaussian(*, n: int = 100, generations: int = 200, seeds: int = 1000, keep_real: float = 0.2,
                      seed: int = 0) -> SimResult:
    """Fit N(mu, sigma) by maximum likelihood on n points, sample n points from the fit, repeat.
    Generation 0 is the fit on the real data, so generation g has been fitted g + 1 times."""
    rng = np.random.default_rng(seed)
    real = rng.standard_normal((seeds, n))
    kept = real[:, : int(round(keep_real * n))]
    fits = {"replace": _fit(real), "accumulate": _fit(real), "keep_real": _fit(real)}
    pool = [real.sum(1), (real**2).sum(1), float(n)]
    curves: dict[str, list[float]] = {k: [] for k in ("replace_geo", "replace_mean", "accumulate", "keep_real",
                                                      "tail_replace", "theory_replace")}
    for g in range(generations + 1):
        _gaussian_record(curves, fits, g, n)
        if g == generations:
            break
        fits["replace"] = _fit(_draw(rng, fits["replace"], n))
        new = _draw(rng, fits["accumulate"], n)
        pool = [pool[0] + new.sum(1), pool[1] + (new**2).sum(1), pool[2] + n]
        mean = pool[0] / pool[2]
        fits["accumulate"] = (mean, np.sqrt(np.maximum(pool[1] / pool[2] - mean**2, 0)))
        fits["keep_real"] = _fit(np.concatenate([kept, _draw(rng, fits["keep_real"], n - kept.shape[1])], axis=1))
    return SimResult("gaussian", {"n": n, "generations": generations, "seeds": seeds, "keep_real": keep_real,
                                  "seed": seed}, curves, _gaussian_summary(curves, n, keep_real, generations))


def _fit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(axis=1), x.std(axis=1)


def _draw(rng: np.random.Generator, fit: tuple[np.ndarray, np.ndarray], n: int) -> np.ndarray:
    mu, sigma = fit
    return mu[:, None] + sigma[:, None] * rng.standard_normal((len(mu), n))


def _gaussian_record(curves: dict[str, list[float]], fits: dict[str, tuple[np.ndarray, np.ndarray]],
                     g: int, n: int) -> None:
    s = fits["replace"][1]
    curves["replace_geo"].append(float(np.exp(np.log(np.maximum(s, 1e-300)).mean())))
    curves["replace_mean"].append(float(s.mean()))
    curves["accumulate"].append(float(fits["accumulate"][1].mean()))
    curves["keep_real"].append(float(fits["keep_real"][1].mean()))
    mu = fits["replace"][0]
    tail = ndtr((-3 - mu) / np.maximum(s, 1e-300)) + ndtr((mu - 3) / np.maximum(s, 1e-300))
    curves["tail_replace"].append(float(np.median(tail)))
    curves["theory_replace"].append(float(gaussian_theory_sigma(g + 1, n)))  # generation 0 = one fit, on real data


def _gaussian_summary(curves: dict[str, list[float]], n: int, keep: float, gens: int) -> list[SummaryRow]:
    g = gens
    kn = keep * n
    plateau_theory = math.sqrt((kn - 1) / (kn + 1)) if kn > 1 else 0.0
    last = curves["keep_real"][-max(1, gens // 4):]
    return [
        SummaryRow(f"replace: geometric-mean sigma at g={g}", curves["replace_geo"][g],
                   curves["theory_replace"][g], "±10% of exp((g+1)/2·(ψ((N-1)/2)+ln(2/N))) ≈ exp(-g/N)",
                   _rel_ok(curves["replace_geo"][g], curves["theory_replace"][g], 0.10)),
        SummaryRow(f"replace: median P(|x|>3) at g={g} (true 0.0027)", curves["tail_replace"][g], None,
                   "< 10% of the true 3-sigma mass", curves["tail_replace"][g] < 0.1 * 2 * float(ndtr(-3))),
        SummaryRow(f"accumulate: mean sigma at g={g}", curves["accumulate"][g], 1.0, "within 0.9..1.1",
                   0.9 <= curves["accumulate"][g] <= 1.1),
        SummaryRow(f"keep {keep:.0%} real: mean sigma over the last quarter", float(np.mean(last)), plateau_theory,
                   "±10% of sqrt((kN-1)/(kN+1)) (fixed point of E[sigma²])",
                   _rel_ok(float(np.mean(last)), plateau_theory, 0.10)),
    ]


# -- linear regression -----------------------------------------------------------------------------


def simulate_regression(*, d: int = 10, t: int = 100, sigma: float = 1.0, generations: int = 20,
                        seeds: int = 1000, seed: int = 0) -> SimResult:
    """OLS refit on data labelled by the previous model: test error ||w_i - w*||^2 per model i=1..n."""
    if t <= d + 1:
        raise RecipeError(f"regression simulation needs T > d + 1 (got T={t}, d={d}): raise --samples")
    rng = np.random.default_rng(seed)
    w_star = rng.standard_normal((seeds, d)) / math.sqrt(d)
    w_rep, w_acc = w_star.copy(), w_star.copy()
    xtx, xty = np.zeros((seeds, d, d)), np.zeros((seeds, d))
    unit = sigma**2 * d / (t - d - 1)
    curves: dict[str, list[float]] = {"replace": [], "accumulate": [], "accumulate_se": [], "theory_replace": [],
                                      "theory_accumulate_sum": [], "accumulate_bound": []}
    for i in range(1, generations + 1):
        x = rng.standard_normal((seeds, t, d))
        w_rep = _ols(x, _label(rng, x, w_rep, sigma))
        x2 = rng.standard_normal((seeds, t, d))
        xtx += np.einsum("sti,stj->sij", x2, x2)
        xty += np.einsum("sti,st->si", x2, _label(rng, x2, w_acc, sigma))
        w_acc = np.linalg.solve(xtx, xty[..., None])[..., 0].astype(np.float64)
        curves["replace"].append(float(((w_rep - w_star) ** 2).sum(1).mean()))
        err_acc = ((w_acc - w_star) ** 2).sum(1)
        curves["accumulate"].append(float(err_acc.mean()))
        curves["accumulate_se"].append(float(err_acc.std() / math.sqrt(seeds)))
        curves["theory_replace"].append(i * unit)
        curves["theory_accumulate_sum"].append(unit * sum(1 / k**2 for k in range(1, i + 1)))
        curves["accumulate_bound"].append(unit * math.pi**2 / 6)
    params = {"d": d, "t": t, "sigma": sigma, "generations": generations, "seeds": seeds, "seed": seed}
    return SimResult("regression", params, curves, _regression_summary(curves, unit, generations))


def _label(rng: np.random.Generator, x: np.ndarray, w: np.ndarray, sigma: float) -> np.ndarray:
    return np.einsum("sti,si->st", x, w) + sigma * rng.standard_normal(x.shape[:2])


def _ols(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.linalg.solve(np.einsum("sti,stj->sij", x, x), np.einsum("sti,st->si", x, y)[..., None])[..., 0]


def _regression_summary(curves: dict[str, list[float]], unit: float, n: int) -> list[SummaryRow]:
    gens = np.arange(1, n + 1)
    slope = float(np.polyfit(gens, curves["replace"], 1)[0])
    low_acc = max(m - 2 * se for m, se in zip(curves["accumulate"], curves["accumulate_se"]))
    return [
        SummaryRow(f"replace: test error at n={n}", curves["replace"][-1], n * unit, "±15% of n·σ²d/(T-d-1)",
                   _rel_ok(curves["replace"][-1], n * unit, 0.15)),
        SummaryRow("replace: slope of error per generation", slope, unit, "±15% of σ²d/(T-d-1)",
                   _rel_ok(slope, unit, 0.15)),
        SummaryRow(f"accumulate: max test error over n=1..{n}", max(curves["accumulate"]), unit * math.pi**2 / 6,
                   "below (π²/6)·σ²d/(T-d-1), within 2 standard errors of the seed mean",
                   low_acc < unit * math.pi**2 / 6),
    ]


# -- word-bigram LM on the golden Python docs -------------------------------------------------------

#: The indicators the LM setup plots; the other indicators are in the JSON too.
LM_PLOTTED = ("golden_ppl_ratio", "tail_coverage_ratio", "frechet_norm", "distinct_2_ratio", "vendi_ratio",
              "entropy_2_ratio")
DIVERSITY_ONLY = tuple(k for k, v in INDICATORS.items() if v.family == "diversity")
#: Diversity-only indicators driven by the head of the distribution. distinct-2 is left out: it
#: counts rare bigram *types*, so it is a tail measure in disguise and does fall at temperature 1.
SPREAD_ONLY = ("vendi_ratio", "cov_trace_ratio", "entropy_2_ratio", "compression_ratio_rel")
GOLDEN_ANCHORED = ("golden_ppl_ratio", "tail_coverage_ratio")


def python_docs_golden() -> tuple[list[str], list[str]]:
    """The built-in python-docs golden set (train, held-out) from `synthloop.grounding`."""
    from synthloop.grounding import golden_texts, load_builtin

    g = load_builtin("python-docs")
    return golden_texts(g, "train"), golden_texts(g, "heldout")


@dataclass(frozen=True)
class LMScenario:
    name: str
    temperature: float
    golden_share: float  # share of each generation's training tokens that is the golden train set


def lm_scenarios(low_temperature: float = 0.7, golden_share: float = 0.5) -> list[LMScenario]:
    return [LMScenario(f"T={low_temperature:g} replace", low_temperature, 0.0),
            LMScenario("T=1 replace", 1.0, 0.0),
            LMScenario(f"T=1 golden {golden_share:.0%}", 1.0, golden_share)]


def simulate_lm(*, generations: int = 8, low_temperature: float = 0.7, golden_share: float = 0.5,
                seed: int = 0, golden: tuple[Sequence[str], Sequence[str]] | None = None,
                embed: Embedder | None = None, max_texts: int = 256) -> SimResult:
    """Train a bigram LM on the golden train split; each generation samples as many tokens as the
    golden train split holds and retrains on them (mixed with golden when `golden_share` > 0)."""
    train, heldout = golden or python_docs_golden()
    vocab = Vocab.from_texts(train)
    golden_lm = BigramLM.fit(vocab.encode(train), len(vocab))
    cfg = CollapseConfig(embedder="hash", max_texts=max_texts, stop_on_fail=False, seed=seed)
    embed = embed or hash_embedder()
    curves: dict[str, list[float]] = {}
    statuses: dict[str, list[dict[str, str]]] = {}
    for k, sc in enumerate(lm_scenarios(low_temperature, golden_share)):
        monitor = CollapseMonitor(cfg, embed=embed)
        reports = _run_lm_scenario(sc, vocab, golden_lm, train, heldout, monitor, generations, seed + 1000 * k)
        for name in INDICATORS:
            curves[f"{sc.name}/{name}"] = [_nan(r.results[name].assessed) for r in reports]
            curves[f"{sc.name}/{name}/vs_golden"] = [_nan(r.values[name]) for r in reports]
        curves[f"{sc.name}/golden_ppl"] = [r.raw.get("golden_ppl", math.nan) for r in reports]
        statuses[sc.name] = [{n: r.results[n].status for n in INDICATORS} for r in reports]
    params = {"generations": generations, "low_temperature": low_temperature, "golden_share": golden_share,
              "seed": seed, "tokens_per_generation": golden_lm.n_tokens, "golden_train_texts": len(train),
              "golden_heldout_texts": len(heldout), "embedder": "hash", "max_texts": max_texts}
    summary = _lm_summary(curves, statuses, lm_scenarios(low_temperature, golden_share))
    return SimResult("lm", params, curves, summary, extra={"statuses": statuses})


def _nan(v: float | None) -> float:
    return math.nan if v is None else v


def _run_lm_scenario(sc: LMScenario, vocab: Vocab, golden_lm: BigramLM, train: Sequence[str],
                     heldout: Sequence[str], monitor: CollapseMonitor, generations: int,
                     seed: int) -> list[CollapseReport]:
    rng = np.random.default_rng(seed)
    model, n_tokens = golden_lm, golden_lm.n_tokens
    reports = []
    for g in range(generations + 1):
        samples = model.sample(n_tokens if sc.golden_share == 0 else int(n_tokens * (1 - sc.golden_share)
                                                                          / sc.golden_share),
                               rng, temperature=sc.temperature)
        texts = vocab.decode(np.concatenate(samples))
        reports.append(monitor.check(texts, train, heldout, round=g, model_logprob=_scorer(model, vocab)))
        fresh = BigramLM.fit(samples, len(vocab))
        model = fresh + golden_lm if sc.golden_share > 0 else fresh
    return reports


def _scorer(model: BigramLM, vocab: Vocab) -> Callable[[Sequence[str]], tuple[float, int]]:
    return lambda texts: model.logprob(vocab.encode(texts))


def _first_status(statuses: list[dict[str, str]], names: Sequence[str], status: str) -> int | None:
    """The first generation at which any of `names` reaches `status` (fail counts for warn)."""
    hit = {"warn": ("warn", "fail"), "fail": ("fail",)}[status]
    return next((g for g, s in enumerate(statuses) if any(s[n] in hit for n in names)), None)


def _lm_summary(curves: dict[str, list[float]], statuses: dict[str, list[dict[str, str]]],
                scenarios: list[LMScenario]) -> list[SummaryRow]:
    low, one, mixed = (s.name for s in scenarios)
    last = len(statuses[one]) - 1
    rows = []
    for sc, diversity_expected in ((low, True), (one, False)):
        spread = DIVERSITY_ONLY if diversity_expected else SPREAD_ONLY
        for family, names, expected in ((f"diversity-only ({', '.join(spread)})", spread, diversity_expected),
                                        ("golden-anchored", GOLDEN_ANCHORED, True)):
            first = _first_status(statuses[sc], names, "fail")
            rows.append(SummaryRow(f"{sc}: first generation a {family} indicator fails",
                                   math.nan if first is None else float(first), None,
                                   "fails within 3 generations" if expected else "never fails",
                                   (first is not None and first <= 3) if expected else first is None))
    for name in ("golden_ppl_ratio", "tail_coverage_ratio", *DIVERSITY_ONLY):
        v = curves[f"{one}/{name}"][-1]
        rows.append(SummaryRow(f"{one}: {name} vs round 0 at g={last}", v, None,
                               f"status {statuses[one][-1][name]}", True))
    fail_at = INDICATORS["golden_ppl_ratio"].fail.high
    worst_mixed = max(curves[f"{mixed}/golden_ppl_ratio"])
    no_golden = curves[f"{one}/golden_ppl_ratio"][-1]
    rows.append(SummaryRow(f"{mixed}: max golden_ppl_ratio over g=0..{last} (without golden: {no_golden:.3g} at "
                           f"g={last})", worst_mixed, None, f"bounded: below the fail threshold {fail_at:g}",
                           worst_mixed < fail_at))
    return rows


# -- running and writing ---------------------------------------------------------------------------

SETUPS: dict[str, Callable[..., SimResult]] = {"gaussian": simulate_gaussian, "regression": simulate_regression,
                                               "lm": simulate_lm}


def run_setup(name: str, out_dir: str | Path, **kwargs: Any) -> SimResult:
    """Run one setup and write `<name>.json` and `<name>.png` into out_dir."""
    if name not in SETUPS:
        raise RecipeError(f"unknown simulation setup {name!r}: use one of {', '.join(SETUPS)} or all")
    result = SETUPS[name](**kwargs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(json_finite(result.to_dict()), indent=2) + "\n", encoding="utf-8")
    plot(result, out / f"{name}.png")
    return result


def plot(result: SimResult, path: Path) -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingDependency.for_package("matplotlib", "Simulation plots", extra="local") from None
    painters = {"gaussian": _plot_gaussian, "regression": _plot_regression, "lm": _plot_lm}
    fig = painters[result.setup](plt, result)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _plot_gaussian(plt: Any, r: SimResult) -> Any:
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    c = r.curves
    a.plot(c["replace_geo"], label="replace (geometric mean)")
    a.plot(c["theory_replace"], "k--", label="theory ≈ exp(-g/N)")
    a.plot(c["accumulate"], label="accumulate")
    a.plot(c["keep_real"], label=f"keep {r.params['keep_real']:.0%} real")
    a.set(xlabel="generation", ylabel="fitted sigma", title=f"Gaussian refit, N={r.params['n']}")
    a.legend()
    b.semilogy(np.maximum(c["tail_replace"], 1e-12), label="replace")
    b.axhline(2 * float(ndtr(-3)), color="k", ls="--", label="true")
    b.set(xlabel="generation", ylabel="P(|x| > 3)", title="tail mass")
    b.legend()
    return fig


def _plot_regression(plt: Any, r: SimResult) -> Any:
    fig, a = plt.subplots(figsize=(6, 4))
    c = r.curves
    x = np.arange(1, len(c["replace"]) + 1)
    a.plot(x, c["replace"], "o-", label="replace")
    a.plot(x, c["theory_replace"], "k--", label="n·σ²d/(T-d-1)")
    a.plot(x, c["accumulate"], "o-", label="accumulate")
    a.plot(x, c["accumulate_bound"], "k:", label="(π²/6)·σ²d/(T-d-1)")
    p = r.params
    a.set(xlabel="model-fitting iteration n", ylabel="test error ||w - w*||²",
          title=f"linear regression d={p['d']}, T={p['t']}, σ={p['sigma']}")
    a.legend()
    return fig


def _plot_lm(plt: Any, r: SimResult) -> Any:
    fig, axes = plt.subplots(2, 3, figsize=(14, 7))
    scenarios = list(dict.fromkeys(k.split("/")[0] for k in r.curves))
    fig.suptitle("word-bigram LM retrained on its own samples: indicators vs round 0 (dotted warn, dashed fail)")
    for ax, name in zip(axes.flat, LM_PLOTTED):
        for sc in scenarios:
            ax.plot(r.curves[f"{sc}/{name}"], "o-", ms=3, label=sc)
        ind = INDICATORS[name]
        for band, style in ((ind.warn, ":"), (ind.fail, "--")):
            for v in (band.low, band.high):
                if math.isfinite(v):
                    ax.axhline(v, color="grey", ls=style, lw=1)
        ax.set(title=f"{name} ({ind.family})", xlabel="generation")
        if name == "golden_ppl_ratio":
            ax.set_yscale("log")
    axes.flat[0].legend(fontsize=8)
    return fig
