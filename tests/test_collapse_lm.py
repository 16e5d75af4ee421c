"""The retrain-on-own-samples loop (`synthloop.collapse.generations`): what each regime trains on,
that every generation's golden perplexity is recorded and cached, and that a rerun resumes.

The fast tests use a word-bigram student (milliseconds per generation); the slow one runs the
bench's tiny transformer (`bench/bench_collapse_lm.py`) for 2 generations."""

from __future__ import annotations

import importlib.util
import math
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from synthloop.collapse.config import CollapseConfig
from synthloop.collapse.embed import hash_embedder
from synthloop.collapse.generations import (
    REGIMES,
    Experiment,
    Generation,
    build_training_set,
    curation_verifier,
    run_regime,
)
from synthloop.collapse.monitor import CollapseMonitor
from synthloop.collapse.ngram import BigramLM, Vocab
from synthloop.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
WORDS = ["the", "function", "returns", "a", "list", "of", "values", "from", "file", "and", "option", "sets", "how",
         "many", "lines", "are", "read", "when", "path", "is", "given", "command", "prints", "each", "name", "in"]


def human(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(12, 30))) + f" item{i} ." for i in range(n)]


class BigramStudent:
    """A student that trains in milliseconds: a word-bigram LM over the human vocabulary."""

    def __init__(self, train: Sequence[str]) -> None:
        self.vocab = Vocab.from_texts(train)
        self.trained: list[list[str]] = []

    def train(self, texts: Sequence[str], seed: int) -> BigramLM:
        self.trained.append(list(texts))
        return BigramLM.fit(self.vocab.encode(texts), len(self.vocab))

    def sample(self, model: BigramLM, n: int, seed: int) -> list[str]:
        rng = np.random.default_rng(seed)
        out: list[str] = []
        while len(out) < n:
            out += self.vocab.decode(np.concatenate(model.sample(40 * n, rng, chains=n)))
        return out[:n]

    def logprob(self, model: BigramLM, texts: Sequence[str]) -> tuple[float, int]:
        return model.logprob(self.vocab.encode(texts))


def experiment(tmp_path: Path, student: Any, train: list[str], heldout: list[str], n: int = 40) -> Experiment:
    return Experiment(student, train, heldout, n_samples=n, pool=n + n // 4, cache_dir=tmp_path, seed=0,
                      verifier=curation_verifier(), log=lambda s: None)


def monitor() -> CollapseMonitor:
    return CollapseMonitor(CollapseConfig(embedder="hash", stop_on_fail=False, max_texts=16), embed=hash_embedder())


# -- the training sets -----------------------------------------------------------------------------------


def test_each_regime_builds_the_training_set_the_papers_describe() -> None:
    real = human(50)
    pools = [[f"gen{g} sample {i} words here" for i in range(60)] for g in range(3)]
    rng = random.Random(0)
    replace = build_training_set(REGIMES["replace"], real, pools, 50, rng)
    assert replace.texts == pools[-1][:50] and replace.human == 0
    acc = build_training_set(REGIMES["accumulate"], real, pools, 50, rng)
    assert acc.texts == [*real, *pools[0][:50], *pools[1][:50], *pools[2][:50]] and acc.human == 50
    gold = build_training_set(REGIMES["golden10"], real, pools, 50, rng)
    assert len(gold.texts) == 50 and gold.human == 5 and sum(t in real for t in gold.texts) == 5
    assert gold.texts[:45] == pools[-1][:45]
    first = build_training_set(REGIMES["golden10"], real, [], 50, rng)
    assert first.texts == real and first.synthetic == 0  # generation 0 trains on the human split


def test_filtered_regime_tops_up_from_the_pool_and_counts_every_rejection() -> None:
    pool = human(12, seed=5)
    pool[3] = pool[2]  # an exact duplicate
    pool[5] = "too short"
    t = build_training_set(REGIMES["filtered"], human(10), [pool], 8, random.Random(0), curation_verifier())
    assert len(t.texts) == 8 and pool[5] not in t.texts and t.texts.count(pool[2]) == 1
    assert t.verified_pool == 12 and t.human == 0
    assert sum(t.rejected.values()) >= 2 and any(k.startswith("quality:") for k in t.rejected)
    with pytest.raises(InputError, match="verifier"):
        build_training_set(REGIMES["filtered"], human(10), [pool], 8, random.Random(0), None)


# -- the loop ----------------------------------------------------------------------------------------------


def test_loop_records_golden_perplexity_per_generation_and_resumes_from_the_cache(tmp_path: Path) -> None:
    train, heldout = human(40, seed=1), human(20, seed=2)
    student = BigramStudent(train)
    exp = experiment(tmp_path, student, train, heldout)
    runs = {name: run_regime(exp, REGIMES[name], 2, monitor()) for name in REGIMES}
    for gens in runs.values():
        assert [g.generation for g in gens] == [0, 1, 2]
        assert all(math.isfinite(g.golden_ppl) and g.golden_ppl > 1 for g in gens)
        assert all(g.report is not None and g.report.raw["golden_ppl"] == g.golden_ppl for g in gens)
        assert gens[0].golden_ppl == runs["replace"][0].golden_ppl  # generation 0 is shared
        assert gens[0].report is not None and gens[0].report.results["golden_ppl_ratio"].assessed == 1.0
    # 4 regimes x 2 generations + the shared generation 0
    assert len(student.trained) == 9
    assert [g.train_human for g in runs["accumulate"]] == [40, 40, 40]
    assert [g.train_texts for g in runs["accumulate"]] == [40, 80, 120]
    assert [g.train_human for g in runs["golden10"]] == [40, 4, 4]
    assert [g.train_human for g in runs["replace"]] == [40, 0, 0]
    # replace trains on its own (poorer) samples only: its golden perplexity grows past generation 0's
    assert runs["replace"][2].golden_ppl > runs["replace"][0].golden_ppl

    class Refuses(BigramStudent):
        def train(self, texts: Sequence[str], seed: int) -> BigramLM:
            raise AssertionError("a cached generation was trained again")

    again = run_regime(experiment(tmp_path, Refuses(train), train, heldout), REGIMES["replace"], 2, monitor())
    assert [g.golden_ppl for g in again] == [g.golden_ppl for g in runs["replace"]]
    assert again[2].report is not None and runs["replace"][2].report is not None
    assert again[2].report.values == runs["replace"][2].report.values


def test_a_generation_without_its_record_is_recomputed(tmp_path: Path) -> None:
    """A kill between the samples file and the record leaves a generation that does not count."""
    train, heldout = human(40, seed=1), human(20, seed=2)
    exp = experiment(tmp_path, BigramStudent(train), train, heldout)
    first = run_regime(exp, REGIMES["replace"], 1, monitor())
    (tmp_path / "replace" / "gen_001" / "generation.json").unlink()
    student = BigramStudent(train)
    again = run_regime(experiment(tmp_path, student, train, heldout), REGIMES["replace"], 1, monitor())
    assert len(student.trained) == 1 and again[1].golden_ppl == pytest.approx(first[1].golden_ppl)


def test_rows_are_json_ready(tmp_path: Path) -> None:
    train, heldout = human(40, seed=1), human(20, seed=2)
    gens: list[Generation] = run_regime(experiment(tmp_path, BigramStudent(train), train, heldout),
                                        REGIMES["golden10"], 1, monitor())
    row = gens[1].row()
    assert row["regime"] == "golden10" and row["status"]["golden_ppl_ratio"] in ("ok", "warn", "fail")
    assert "samples" not in row and (tmp_path / "golden10" / "gen_001" / "samples.jsonl.gz").is_file()


# -- the bench's tiny transformer ------------------------------------------------------------------------


def _bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_collapse_lm", ROOT / "bench" / "bench_collapse_lm.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # ~26 s of CPU; under a load average of 12 it took 305 s of wall time
@pytest.mark.timeout(900)
def test_tiny_transformer_two_generations(tmp_path: Path) -> None:
    """The bench's own student at toy size: two generations of replace and golden10."""
    pytest.importorskip("transformers")
    bench = _bench()
    train, heldout = bench.human_corpus(40, 16, seed=0)
    cfg = bench.TinyConfig(vocab=300, hidden=16, layers=1, heads=2, block=32, max_new_tokens=32, epochs=1,
                           batch=8, sample_batch=64)
    student = bench.TinyStudent(cfg, train)
    exp = experiment(tmp_path, student, train, heldout, n=40)
    runs = {name: run_regime(exp, REGIMES[name], 2, monitor()) for name in ("replace", "golden10")}
    for gens in runs.values():
        assert all(math.isfinite(g.golden_ppl) and 1 < g.golden_ppl < 1e5 for g in gens)
        assert all(len(g.samples) == exp.pool for g in gens)
    assert [g.train_human for g in runs["golden10"]] == [40, 4, 4]
    assert runs["replace"][0].golden_ppl == runs["golden10"][0].golden_ppl
    assert runs["replace"][1].golden_ppl != runs["golden10"][1].golden_ppl  # different training sets


def test_parallel_regime_processes_share_the_parents_cache_and_split_by_cost() -> None:
    """`--jobs 2`: accumulate (its set grows every generation) gets a process of its own, and each
    child's command line resolves to the parent's settings, so every process reads and writes the
    same cache directory (generation 0 is shared)."""
    pytest.importorskip("torch")
    bench = _bench()
    args = bench.parse(["--model", "smollm2", "--n-train", "40", "--max-chars", "450", "--jobs", "2", "--threads", "2"])
    groups = bench.split_regimes(args.regimes, 5, 2)
    assert sorted(map(sorted, groups)) == [["accumulate"], ["filtered", "golden10", "replace"]]
    assert bench.regime_cost("accumulate", 5) == 20 and bench.regime_cost("replace", 5) == 5
    for group in groups:
        child = bench.parse(bench.child_argv(args, group))
        assert child.regimes == group and child.threads == 1 and child.jobs == 1
        assert bench.settings_dir(child, {}) == bench.settings_dir(args, {})


@pytest.mark.slow  # loads SmolLM2-135M (~10 s)
def test_smollm2_batched_logprob_equals_one_text_at_a_time() -> None:
    """The bench scores golden paragraphs 16 to a padded batch: padding and the prompt are masked
    out, so the sum equals scoring each paragraph alone."""
    pytest.importorskip("peft")
    from synthloop.student.train import base_model_dir, load_tokenizer
    from transformers import AutoModelForCausalLM

    bench = _bench()
    base = base_model_dir()
    student = bench.SmolStudent(Path("/nonexistent"), epochs=1, max_new_tokens=64)
    model = (AutoModelForCausalLM.from_pretrained(base).eval(), load_tokenizer(base))
    texts = ["A short line.", "The option sets how many lines are read when a path is given, and more words.",
             "Returns a list of values."]
    together = student.logprob(model, texts)
    alone = [student.logprob(model, [t]) for t in texts]
    assert together[1] == sum(c for _, c in alone)
    assert together[0] == pytest.approx(sum(s for s, _ in alone), rel=1e-4)
