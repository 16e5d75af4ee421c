"""The recipe's `[curate]` section. Owned by the curation package; `recipe.py` imports it.

Switches at the top level, the numbers of each stage in its own sub-table
(`[curate.near]`, `[curate.quality]`, ...). Every default names where it comes from.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class NearDedupConfig(_Section):
    """MinHash LSH for candidates, word-level edit similarity to decide (src/synthloop/curation/
    minhash.py). Every value comes from `python bench/bench_dedup.py` on human paragraphs
    (250-2000 chars) with 2/5/10% of words edited (docs/curation.md, "Near dedup"):
    - `threshold` 0.82 on the Indel word similarity: 10%-edited pairs measured >= 0.85, unrelated
      paragraphs >= 0.82 were 7 templated pairs in 14k documents (0.80: 20; 0.84: 3).
    - `ngram` 2: the 10%-edit pairs' word-2-gram Jaccard is >= 0.44 (5-grams: 0.19, 3-grams: 0.36),
      while unrelated text rarely shares bigram bands.
    - 42 bands x 3 rows (`num_perm` 126): a pair at Jaccard 0.44 becomes a candidate with
      probability 1-(1-0.44^3)^42 = 0.98, at 0.6 > 0.9999 (32x4 at 0.44: 0.87).
    - `prefilter` 0.25: candidates whose estimated Jaccard is lower skip the edit similarity
      (4 standard errors below the lowest 10%-edit pair at 126 permutations).
    - `max_bucket` 16: earliest occupants returned per band key, so a hub key (a boilerplate
      bigram pair shared by thousands) costs bounded work."""

    ngram: int = Field(2, ge=1)
    num_perm: int = Field(126, ge=8)
    bands: int = Field(42, ge=1)
    threshold: float = Field(0.82, gt=0.0, le=1.0)
    prefilter: float = Field(0.25, ge=0.0, le=1.0)
    max_bucket: int = Field(16, ge=1)
    seed: int = 42

    @model_validator(mode="after")
    def _bands_divide(self) -> NearDedupConfig:
        if self.num_perm % self.bands:
            raise ValueError(f"num_perm ({self.num_perm}) must be a multiple of bands ({self.bands})")
        return self


class SemanticDedupConfig(_Section):
    """Embeddings from all-MiniLM-L6-v2; cosine >= 0.95 is a semantic duplicate (the SemDeDup
    paper's conservative end, 1 - eps with eps = 0.05).

    `candidates = "lexical"` (default): a record is embedded only when a MinHash LSH over its
    content words (stop words dropped) finds an earlier kept record with estimated Jaccard >=
    `gate`; then both are embedded and the cosine decides. Measured (bench/bench_dedup.py
    --semantic): every pair MiniLM put at cosine >= 0.95 had content-word Jaccard >= 0.81 (1,500
    paragraphs, 177 pairs), so `gate` 0.5 keeps the model's recall while most records never reach
    the model. 32 bands x 3 rows over 96 permutations: a pair at Jaccard 0.5 is a candidate with
    probability 0.986, at 0.6 0.9992.
    `candidates = "lsh"`: every record embedded, random-hyperplane LSH (`tables` x `bits` sign bits)
    over the embeddings: catches paraphrases sharing few words, at the model's full cost.

    The embedder (synthloop.curation.encoder; figures from bench/bench_dedup.py --semantic 400 on
    this project's 2-core machine, docs/curation.md): `backend` auto = onnxruntime when installed
    (torch otherwise; the same embeddings, cosine >= 0.9999). `max_tokens` 256: what the packaged
    model's sentence_bert_config.json uses (128 changed 7 of 400 decisions). `padded` False:
    every forward pass holds texts of one word-piece count, so nothing is padded and the graph
    has no mask (the gate's calls had 19% padding in batches of 16; the gate row went from 5.1x
    to 8.8x today's CPU docs/s). `batch_tokens` 256: word pieces per pass; texts of equal length
    share a pass up to it (one ~130-piece text a pass ran faster per word piece than 16-text
    passes; 2-4 texts of 64-128 pieces a pass a few % faster than one). `batch_size` 16: at most
    this many texts a pass (and the padded path's batch, measured before). `threads` None: all
    usable cores; onnx runs that many one-thread passes at once (9% less CPU than one pass on 2
    intra-op threads)."""

    threshold: float = Field(0.95, gt=0.0, le=1.0)
    model: str = "all-MiniLM-L6-v2"
    candidates: Literal["lexical", "lsh"] = "lexical"
    gate: float = Field(0.5, ge=0.0, le=1.0)
    gate_perm: int = Field(96, ge=8)
    gate_bands: int = Field(32, ge=1)
    max_bucket: int = Field(16, ge=1)
    bits: int = Field(8, ge=1, le=62)
    tables: int = Field(8, ge=1)
    backend: Literal["auto", "onnx", "torch", "sentence-transformers"] = "auto"  # auto: onnx if installed, else torch
    max_tokens: int = Field(256, ge=8, le=512)  # word pieces kept per text; see docs/curation.md
    batch_tokens: int = Field(256, ge=1)  # word pieces per unpadded forward pass (a longer text runs alone)
    batch_size: int = Field(16, ge=1)  # at most this many texts per forward pass
    padded: bool = False  # True: the previous batching, `batch_size` length-sorted texts padded to the longest
    threads: int | None = Field(None, ge=1)  # onnx unpadded: passes at once; else intra-op threads. None: all cores
    seed: int = 0

    @model_validator(mode="after")
    def _bands_divide(self) -> SemanticDedupConfig:
        if self.gate_perm % self.gate_bands:
            raise ValueError(f"gate_perm ({self.gate_perm}) must be a multiple of gate_bands ({self.gate_bands})")
        return self


class QualityConfig(_Section):
    """Heuristic filters. Sources: Gopher (Rae et al. 2021, App. A) for the word, symbol,
    alphabetic and repetition rules; refusal phrases from the community cleaning lists used on
    ShareGPT-style data. Word-count bounds are lowered from Gopher's 50 because synthetic records
    (an instruction answer, a worked exercise) are legitimately short."""

    min_words: int = Field(3, ge=0)
    max_words: int = Field(100_000, ge=1)  # Gopher
    min_mean_word_len: float = Field(2.0, ge=0)  # Gopher uses 3; code/math tokens are shorter
    max_mean_word_len: float = Field(12.0, ge=0)  # Gopher uses 10; identifiers run longer
    max_symbol_ratio: float = Field(0.1, ge=0)  # Gopher: '#' and '...' per word
    min_alpha_word_ratio: float = Field(0.5, ge=0, le=1)  # Gopher uses 0.8 on web text; code has x=1
    max_dup_line_ratio: float = Field(0.3, ge=0, le=1)  # Gopher: duplicate-line fraction
    max_dup_ngram_char_ratio: float = Field(0.15, ge=0, le=1)  # Gopher: chars in dup 5-grams
    max_non_alnum_char_ratio: float = Field(0.5, ge=0, le=1)  # chars that are neither letter, digit nor space
    refusals: bool = True
    require_reasoning: bool = True
    require_answer: bool = True


class PIIConfig(_Section):
    """Which detectors run; `action` is redact (typed placeholder, record kept) or reject."""

    action: Literal["redact", "reject"] = "redact"
    email: bool = True
    phone: bool = True
    credit_card: bool = True
    iban: bool = True
    ip: bool = True
    national_id: bool = True
    secret: bool = True
    name: bool = True  # title-led names ("Dr. Jane Doe"): regex, works offline


class DecontamConfig(_Section):
    """Overlap with evaluation sets. 13-gram: GPT-3 (Brown et al. 2020) and its followers;
    50 characters: the GPT-4 technical report's substring match."""

    eval_sets: list[str] = []
    text_field: str | None = None  # None: "text", "question", "prompt", "problem", ... (first present)
    ngram: int = Field(13, ge=1)
    substring_chars: int = Field(50, ge=8)


class MemorizationConfig(_Section):
    """Long verbatim spans copied from golden/seed data. 32 words (~50 tokens: the span length
    Carlini et al. 2022 use to call text extractable)."""

    ngram: int = Field(32, ge=4)
    action: Literal["reject", "flag"] = "reject"


class CurateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    exact_dedup: bool = True
    near_dedup: bool = True
    semantic_dedup: bool = False  # needs the embedding model (the `local` extra)
    quality_filters: bool = True
    pii: bool = True
    memorization: bool = True  # runs when golden texts are given
    near: NearDedupConfig = NearDedupConfig()
    semantic: SemanticDedupConfig = SemanticDedupConfig()
    quality: QualityConfig = QualityConfig()
    pii_detect: PIIConfig = PIIConfig()
    decontam: DecontamConfig = DecontamConfig()
    memorize: MemorizationConfig = MemorizationConfig()
