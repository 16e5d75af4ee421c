"""Collapse indicators: the pure functions, and the composed values on datasets with known drift."""

from __future__ import annotations

import random
import time

import numpy as np
import pytest

from synthloop.collapse import (
    INDICATORS,
    CollapseConfig,
    GoldenReference,
    compression_ratio,
    distinct_n,
    frechet_distance,
    hash_embedder,
    measure,
    mmd_rbf,
    ngram_entropy,
    tail_coverage,
    tail_vocabulary,
    vendi_score,
)
from synthloop.grounding import golden_texts, load_builtin


@pytest.fixture(scope="module")
def golden() -> tuple[list[str], list[str]]:
    g = load_builtin("python-docs")
    return golden_texts(g, "train"), golden_texts(g, "heldout")


@pytest.fixture(scope="module")
def ref(golden: tuple[list[str], list[str]]) -> GoldenReference:
    return GoldenReference(*golden, hash_embedder(), max_texts=200)


def test_lexical_functions_on_hand_made_texts() -> None:
    assert distinct_n(["a b c d"], 2) == 1.0
    assert distinct_n(["a b a b a b"], 2) == pytest.approx(2 / 5)
    assert ngram_entropy(["a b c d e"], 1) == pytest.approx(np.log2(5))
    assert compression_ratio(["the same line"] * 200) > 10 * compression_ratio(["the same line"])
    tail = tail_vocabulary(["common common common common common common common common rare1 rare2"], 0.2)
    assert tail == {"rare1", "rare2"}
    assert tail_coverage(["rare1 and more"], tail) == 0.5


def test_embedding_functions_on_gaussians() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((400, 8)), rng.standard_normal((400, 8))
    shifted = b + 1.0
    # Fréchet distance of N(0,I) and N(1,I) in 8 dims is |mu|^2 = 8, up to sampling noise.
    assert frechet_distance(a, shifted) == pytest.approx(8.0, rel=0.15)
    assert frechet_distance(a, b) < 0.5
    assert mmd_rbf(a, shifted) > 10 * mmd_rbf(a, b)
    # Vendi: n copies of one vector count as 1; orthogonal unit vectors count as n.
    assert vendi_score(np.ones((50, 8))) == pytest.approx(1.0)
    assert vendi_score(np.eye(8)) == pytest.approx(8.0)


def _values(synthetic: list[str], ref: GoldenReference) -> dict[str, float]:
    m = measure(synthetic, ref)
    return {k: v for k, v in m.values.items() if v is not None}


def test_golden_heldout_looks_like_golden(ref: GoldenReference) -> None:
    v = _values(ref.heldout, ref)
    for name in ("tail_coverage_ratio", "frechet_norm", "cov_trace_ratio", "vendi_ratio", "distinct_2_ratio",
                 "entropy_2_ratio", "compression_ratio_rel", "ref_ppl_ratio"):
        assert INDICATORS[name].status(v[name]) == "ok", (name, v[name])


def test_duplicated_texts_lose_diversity(ref: GoldenReference) -> None:
    v = _values(ref.train[:20] * 15, ref)
    assert v["distinct_2_ratio"] < 0.2
    assert v["vendi_ratio"] < 0.4
    assert v["compression_ratio_rel"] > 3
    assert v["tail_coverage_ratio"] < 0.2
    for name in ("distinct_2_ratio", "vendi_ratio", "compression_ratio_rel", "tail_coverage_ratio", "mmd_norm"):
        assert INDICATORS[name].status(v[name]) == "fail", name


def test_shuffled_vocabulary_is_far_from_golden(ref: GoldenReference) -> None:
    """Same word frequencies, wrong words: embedding distance and the golden LMs see it."""
    rng = random.Random(0)
    words = sorted({w for t in ref.train for w in t.split()})
    perm = dict(zip(words, rng.sample(words, len(words))))
    v = _values([" ".join(perm[w] for w in t.split()) for t in ref.train[:300]], ref)
    assert v["frechet_norm"] > INDICATORS["frechet_norm"].warn.high
    assert v["mmd_norm"] > 10
    assert v["golden_ppl_ratio"] > 3


def test_word_order_scrambling_is_caught_by_reference_perplexity(ref: GoldenReference) -> None:
    """Bag-of-words embeddings cannot see word order; the two-sided reference LM can."""
    rng = random.Random(1)

    def scramble(t: str) -> str:
        w = t.split()
        rng.shuffle(w)
        return " ".join(w)

    v = _values([scramble(t) for t in ref.heldout], ref)
    assert v["ref_ppl_ratio"] > INDICATORS["ref_ppl_ratio"].fail.high
    assert v["frechet_norm"] < 2


def test_config_overrides_and_rejections() -> None:
    cfg = CollapseConfig(thresholds={"vendi_ratio": {"warn": 0.9, "fail": 0.7},
                                     "ref_ppl_ratio": {"warn": (0.8, 1.3)}})
    warn, fail = cfg.bands("vendi_ratio")
    assert (warn.low, fail.low) == (0.9, 0.7)
    assert cfg.bands("ref_ppl_ratio")[0].high == 1.3
    with pytest.raises(ValueError, match="unknown collapse indicator 'vendy'"):
        CollapseConfig(thresholds={"vendy": {"warn": 0.9}})
    with pytest.raises(ValueError, match="give a \\[low, high\\] pair"):
        CollapseConfig(thresholds={"ref_ppl_ratio": {"warn": 1.3}})
    with pytest.raises(ValueError, match="must lie inside the fail band"):
        CollapseConfig(thresholds={"vendi_ratio": {"warn": 0.5, "fail": 0.7}})
    with pytest.raises(ValueError, match="Extra inputs"):
        CollapseConfig(stop_on_failure=True)  # type: ignore[call-arg]


def test_every_indicator_is_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).parents[1] / "docs" / "collapse.md").read_text(encoding="utf-8")
    for name, ind in INDICATORS.items():
        assert f"`{name}`" in doc, name
        assert ind.definition and ind.source


@pytest.mark.slow  # loading MiniLM and embedding 192 texts took 22 s on the shared 2-core machine
def test_minilm_indicators_on_real_embeddings(golden: tuple[list[str], list[str]]) -> None:
    """The packaged MiniLM (loaded offline, once per process): held-out golden is near the golden
    noise floor; one document repeated is far from it and has no spread."""
    pytest.importorskip("sentence_transformers")
    from synthloop.collapse import minilm_embedder

    t0 = time.perf_counter()
    ref = GoldenReference(*golden, minilm_embedder(), max_texts=64)
    near = measure(ref.heldout[:64], ref, names=["frechet_norm", "vendi_ratio"]).values
    far = measure([ref.train[0]] * 64, ref, names=["frechet_norm", "vendi_ratio"]).values
    assert near["frechet_norm"] is not None and near["frechet_norm"] < 2
    assert far["frechet_norm"] is not None and far["frechet_norm"] > 2
    assert far["vendi_ratio"] is not None and far["vendi_ratio"] < 0.1
    assert minilm_embedder() is minilm_embedder()  # cached per process
    print(f"minilm test took {time.perf_counter() - t0:.1f}s")
