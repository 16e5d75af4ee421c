"""Near dedup on human paragraphs (2-10% of words edited), the band table, PII in prose, and the
semantic stage's lexical gate (with an injected embedder: no model in the default suite)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from synthloop.curation import NearDedup, PIIScrubber, SemanticDedup
from synthloop.curation.config import SemanticDedupConfig
from synthloop.curation.minhash import (
    BandTable,
    near_duplicate_clusters,
    word_similarity,
)
from synthloop.curation.planted import (
    edit_words,
    human_paragraphs,
    plant_near_duplicates,
    plant_pii,
)
from synthloop.pipeline import RunContext, Stage, run_stages
from synthloop.records import Record


@pytest.fixture(scope="module")
def paragraphs() -> list[str]:
    found = human_paragraphs(limit=400)  # the packaged python-docs snapshot comes first: fast
    assert len(found) == 400 and all(250 <= len(p) <= 2000 for p in found)
    return found


def run_chunks(stage: Stage, texts: list[str], chunk: int = 64) -> tuple[list[str], RunContext]:
    ctx, kept = RunContext(), []
    for i in range(0, len(texts), chunk):
        recs = [Record(id=f"r{j}", text=t) for j, t in enumerate(texts[i : i + chunk], start=i)]
        kept += [r.id for r in run_stages(recs, [stage], ctx)]
    return kept, ctx


def test_planted_human_near_duplicates_found_at_every_edit_rate(paragraphs: list[str]) -> None:
    corpus = plant_near_duplicates(paragraphs, seed=4, near_share=0.3)
    found = {(c[0], m) for c in near_duplicate_clusters(corpus.docs) for m in c[1:]}
    for rate in (0.02, 0.05, 0.10):
        truth = {p for p, r in corpus.near.items() if r == rate}
        assert len(truth) >= 10 and truth <= found, rate
    assert found <= set(corpus.near) | corpus.exact  # nothing else merged


def test_near_dedup_keeps_templated_but_different_texts() -> None:
    a = ("gcloud compute instances create NAME --zone=ZONE --machine-type=TYPE creates a virtual machine "
         "instance in the given zone, with the given machine type and the default boot disk image.")
    b = ("gcloud compute disks delete NAME --zone=ZONE --quiet deletes a persistent disk in the given zone; "
         "a disk attached to a running instance must be detached before it can be deleted.")
    assert word_similarity(a, b) < 0.5
    kept, _ = run_chunks(NearDedup(), [a, b])
    assert kept == ["r0", "r1"]


def test_near_dedup_ten_percent_edit_across_chunks_names_the_first(paragraphs: list[str]) -> None:
    rng = random.Random(1)
    base = paragraphs[7]
    edited = edit_words(base, 0.10, rng, ["alpha", "beta", "gamma", "delta"])
    kept, ctx = run_chunks(NearDedup(), [base, paragraphs[8], edited], chunk=2)
    assert kept == ["r0", "r1"]
    [rej] = ctx.rejected
    assert rej.rejected_reason.startswith("near_duplicate: ~0.") and rej.rejected_reason.endswith("similarity with r0")


def test_band_table_returns_earliest_occupants_up_to_cap() -> None:
    table = BandTable()
    for start in range(0, 40, 8):  # five runs, merged like a binary counter
        table.add(np.array([7] * 8, dtype=np.uint64), np.arange(start, start + 8))
    q, slots = table.lookup(np.array([7, 9], dtype=np.uint64), cap=3)
    assert set(q.tolist()) == {0}  # key 9 has no occupant
    assert sorted(slots.tolist())[:3] == [0, 1, 2] and len(table.runs) < 5


@pytest.mark.parametrize("text, expected", [
    ("Traffic came from 93.184.216.34.", "Traffic came from [IP]."),
    ("hosts (8.8.8.8), 1.1.1.1, and 203.0.113.7.", "hosts ([IP]), [IP], and 203.0.113.7."),
    ("see 192.0.2.1, 198.51.100.20 and 10.0.0.1.", "see 192.0.2.1, 198.51.100.20 and 10.0.0.1."),
    ("version 1.2.3.4.5 stays", "version 1.2.3.4.5 stays"),
    ("v6 2606:4700:4700::1111: then 2001:db8::1", "v6 [IP]: then 2001:db8::1"),
    ("C++ Face::add and std::map at 12:30:45", "C++ Face::add and std::map at 12:30:45"),
])
def test_ip_addresses_in_prose(text: str, expected: str) -> None:
    assert PIIScrubber().scrub(text)[0] == expected


def test_planted_pii_in_paragraphs_none_leaks_and_documentation_values_stay(paragraphs: list[str]) -> None:
    corpus = plant_pii(paragraphs, n=400, seed=2, share=0.5)
    scrubber = PIIScrubber()
    out = {d: scrubber.scrub(corpus.docs[d])[0] for d in range(len(corpus.docs))}
    squash = lambda s: "".join(s.split()).replace("-", "")
    assert len({k for _, k, _ in corpus.planted}) == 8
    assert [v for d, _, v in corpus.planted if squash(v) in squash(out[d])] == []
    assert corpus.kept and [v for d, v in corpus.kept if v not in out[d]] == []


class CountingEmbed:
    """Bag-of-words vectors over a hashed vocabulary; counts the texts it is asked to embed."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls += len(texts)
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, hash(w) % 64] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def test_semantic_lexical_gate_embeds_only_records_with_a_lexical_candidate(paragraphs: list[str]) -> None:
    rng = random.Random(3)
    texts = paragraphs[:30] + [edit_words(paragraphs[4], 0.02, rng, ["extra"])]
    embed = CountingEmbed()
    stage = SemanticDedup(SemanticDedupConfig(threshold=0.9), embed=embed)
    kept, ctx = run_chunks(stage, texts, chunk=8)
    assert len(kept) == 30 and [r.id for r in ctx.rejected] == ["r30"]
    assert ctx.rejected[0].rejected_reason.endswith("with r4")
    assert embed.calls == 2  # the copy and its original, nothing else
    # a resumed run re-processing an accepted record keeps it and does not re-index it
    again = list(stage.run([Record(id="r4", text=paragraphs[4])], RunContext()))
    assert [r.id for r in again] == ["r4"] and len(stage.gate.ids) == 30


def test_semantic_gate_config_validates() -> None:
    with pytest.raises(ValueError, match="multiple of gate_bands"):
        SemanticDedupConfig(gate_perm=100, gate_bands=32)
