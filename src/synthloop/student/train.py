"""The built-in student trainer: one round's `mix.jsonl` in, one checkpoint directory out.

Read it top to bottom, like nanoGPT's train.py:
  1. a round whose checkpoint is complete is not trained again (resume after a kill);
  2. the mix rows become token ids, with labels only on the assistant turns (the model learns to
     answer, not to predict the questions it is asked);
  3. the model is the base (or the previous round's checkpoint, with `init = "continue"`), wrapped
     in LoRA adapters unless `method = "full"`;
  4. a plain AdamW loop with warmup + cosine decay, seeded, on CPU or GPU;
  5. the adapter (or full weights), `train.json` (what was trained on, the seed, the losses) and,
     last, the `COMPLETE` marker are written. A directory without the marker is a killed run.

Serving: the local backend loads HF model directories, not adapters, so `merged_dir` folds a LoRA
checkpoint into a full HF directory (also what vLLM or `transformers serve` would load).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from synthloop.errors import InputError
from synthloop.student.config import EMBEDDED_STUDENT, StudentConfig

log = logging.getLogger("synthloop.student")

COMPLETE = "COMPLETE"  # written last: its presence means every other file is whole
TRAIN_JSON = "train.json"
ADAPTER = "adapter"  # LoRA weights (peft format)
WEIGHTS = "model"  # full fine-tuning: a complete HF model directory
MERGED = "merged"  # LoRA folded into the base: a complete HF model directory for serving
IGNORE = -100  # label of a token the loss skips


@dataclass
class TrainResult:
    """What `train.json` records about one round's training."""

    checkpoint: str  # the adapter or full-weights directory
    base_model: str  # the HF directory the weights started from
    method: str
    init_from: str | None  # the previous round's checkpoint when init = "continue"
    seed: int
    mix: str
    mix_sha256: str
    fingerprint: str  # mix + training settings + starting point: a changed one is refused, not resumed
    examples: int
    tokens: int  # tokens seen, epochs included
    trained_tokens: int  # of which assistant tokens (the ones with a loss)
    losses: list[float] = field(default_factory=list)  # one per optimiser step
    seconds: float = 0.0
    device: str = "cpu"

    @classmethod
    def read(cls, output_dir: Path) -> "TrainResult":
        return cls(**json.loads((output_dir / TRAIN_JSON).read_text(encoding="utf-8")))


# -- 0. where the base model lives ----------------------------------------------------------------
def base_model_dir(model: str = EMBEDDED_STUDENT) -> Path:
    """An HF directory for `model`: the embedded GGUF (or any .gguf) is converted once by the local
    backend and cached; an HF directory is returned as is."""
    from synthloop.backends.local import converted_dir, load_model, resolve_model

    path = resolve_model(model)
    if path.suffix != ".gguf":
        return path
    cached = converted_dir(path)
    if not (cached / "config.json").is_file():
        load_model(model)  # converts and writes the cache
    if not (cached / "config.json").is_file():
        raise InputError(f"could not cache the converted {model!r} at {cached}: check that the directory is writable "
                         "(or set SYNTHLOOP_CACHE_DIR)")
    return cached


# -- 1. the whole round ----------------------------------------------------------------------------
def train(cfg: StudentConfig, mix: str | Path, output_dir: str | Path, *, previous: str | Path | None = None) -> TrainResult:
    """Train one round on `mix` (chat JSONL) into `output_dir`; return what was trained.

    `previous` is the previous round's output directory, used when `cfg.init == "continue"`.
    A complete checkpoint with the same fingerprint is returned without training."""
    out, mix = Path(output_dir), Path(mix)
    base = base_model_dir(cfg.base_model)
    start = _starting_point(cfg, previous)
    fingerprint = _fingerprint(cfg, mix, base, start)
    if (out / COMPLETE).is_file():
        return _resumed(out, fingerprint)
    shutil.rmtree(out, ignore_errors=True)  # a killed run's leftovers
    out.mkdir(parents=True)

    seed_everything(cfg.seed)
    device = pick_device(cfg.device)
    if device.type == "cpu":
        from synthloop.backends.local import torch_threads

        torch.set_num_threads(torch_threads())
    tokenizer = load_tokenizer(base)
    rows = read_mix(mix)
    examples = [encode(tokenizer, with_system(r["messages"], cfg.system_prompt), cfg.max_seq_len) for r in rows]
    model = build_model(cfg, base, start).to(device)

    began = time.monotonic()
    losses = run_epochs(model, examples, cfg, device, pad_id=tokenizer.pad_token_id)
    result = TrainResult(
        checkpoint=str(out / (ADAPTER if cfg.method == "lora" else WEIGHTS)), base_model=str(base),
        method=cfg.method, init_from=str(start) if start else None, seed=cfg.seed, mix=str(mix),
        mix_sha256=_sha256(mix), fingerprint=fingerprint, examples=len(examples),
        tokens=cfg.epochs * sum(len(ids) for ids, _ in examples),
        trained_tokens=cfg.epochs * sum(sum(1 for x in labels if x != IGNORE) for _, labels in examples),
        losses=losses, seconds=round(time.monotonic() - began, 2), device=str(device))
    save_checkpoint(model, tokenizer, out, result)
    return result


def _starting_point(cfg: StudentConfig, previous: str | Path | None) -> Path | None:
    """The previous round's weights to continue from, or None to start from the base model."""
    if cfg.init == "base" or previous is None:
        return None
    prev = Path(previous)
    if not (prev / COMPLETE).is_file():
        raise InputError(f"student.init = 'continue' but the previous checkpoint {prev} is not complete: "
                         "train that round first (or set student.init = 'base')")
    return prev / (ADAPTER if cfg.method == "lora" else WEIGHTS)


def _fingerprint(cfg: StudentConfig, mix: Path, base: Path, start: Path | None) -> str:
    settings = cfg.model_dump(exclude={"eval", "steer", "external_command", "device"})
    payload = json.dumps({"settings": settings, "mix": _sha256(mix), "base": str(base), "start": str(start)},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _resumed(out: Path, fingerprint: str) -> TrainResult:
    done = TrainResult.read(out)
    if done.fingerprint != fingerprint:
        raise InputError(f"the checkpoint in {out} was trained on another mix or with other settings: "
                         "delete that directory to retrain it")
    log.info("student checkpoint %s is complete; not retraining", out)
    return done


def _sha256(path: Path) -> str:
    if not path.is_file():
        raise InputError(f"training mix {path} not found: write the round's mix first (grounding.mix.write_mix)")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def pick_device(device: str) -> torch.device:
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("student.device = 'cuda' but torch sees no GPU: use 'auto' or 'cpu'")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


# -- 2. data: chat rows -> ids + labels on the assistant turns only ---------------------------------
def read_mix(mix: Path) -> list[dict[str, Any]]:
    """The rows of a chat JSONL mix; each needs `messages` ending with an assistant turn."""
    rows = []
    for n, line in enumerate(mix.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        msgs = row.get("messages")
        if not msgs or not any(m.get("role") == "assistant" for m in msgs):
            raise InputError(f"{mix}:{n}: a training row needs `messages` with an assistant turn")
        rows.append(row)
    if not rows:
        raise InputError(f"training mix {mix} is empty: nothing to train the student on")
    return rows


def with_system(messages: Sequence[dict[str, str]], system_prompt: str) -> list[dict[str, str]]:
    """`messages` with `system_prompt` as their first turn unless they bring one (or it is "")."""
    msgs = [{"role": m["role"], "content": m["content"]} for m in messages]
    if system_prompt and msgs and msgs[0]["role"] != "system":
        msgs.insert(0, {"role": "system", "content": system_prompt})
    return msgs


def load_tokenizer(model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if not getattr(tok, "chat_template", None):
        raise InputError(f"the student model at {model_dir} has no chat template: use an instruction-tuned base model")
    return tok


def encode(tokenizer: Any, messages: list[dict[str, str]], max_len: int) -> tuple[list[int], list[int]]:
    """Token ids of the conversation and labels that are the ids on assistant turns, IGNORE elsewhere.

    Each assistant turn's span is found by rendering the conversation up to it twice: with the
    generation prompt (where the answer starts) and with the turn itself (where it ends). That
    relies on the template rendering a prefix of the conversation as a prefix of the tokens,
    which is checked."""
    ids: list[int] = _render(tokenizer, messages, generation_prompt=False)
    labels = [IGNORE] * len(ids)
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        begin = len(_render(tokenizer, messages[:i], generation_prompt=True))
        upto = _render(tokenizer, messages[: i + 1], generation_prompt=False)
        if ids[: len(upto)] != upto:
            raise InputError("the student's chat template does not render a conversation's prefix as a token prefix; "
                             "the loss mask cannot be built (use a ChatML-style template)")
        labels[begin : len(upto)] = upto[begin:]
    return ids[:max_len], labels[:max_len]


def _render(tokenizer: Any, messages: list[dict[str, str]], *, generation_prompt: bool) -> list[int]:
    if not messages:
        return []
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def batches(examples: list[tuple[list[int], list[int]]], batch_size: int, rng: random.Random,
            pad_id: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Shuffled batches, right-padded: (input_ids, attention_mask, labels)."""
    order = list(range(len(examples)))
    rng.shuffle(order)
    for start in range(0, len(order), batch_size):
        chunk = [examples[i] for i in order[start : start + batch_size]]
        width = max(len(ids) for ids, _ in chunk)
        ids = torch.tensor([x + [pad_id] * (width - len(x)) for x, _ in chunk])
        mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x, _ in chunk])
        labels = torch.tensor([y + [IGNORE] * (width - len(y)) for _, y in chunk])
        yield ids, mask, labels


# -- 3. the model ------------------------------------------------------------------------------------
def build_model(cfg: StudentConfig, base: Path, start: Path | None) -> Any:
    """The base model (or the previous round's weights), LoRA-wrapped unless method = "full"."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our log lines say what is loading; no tqdm bars on stderr
    if cfg.method == "full":
        return AutoModelForCausalLM.from_pretrained(start or base, dtype=torch.float32)
    from peft import LoraConfig, PeftModel, get_peft_model

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    if start is not None:
        return PeftModel.from_pretrained(model, start, is_trainable=True)
    targets: Any = "all-linear" if cfg.lora_targets == ["all-linear"] else cfg.lora_targets
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, target_modules=targets, lora_dropout=0.0,
                      task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


# -- 4. the loop ------------------------------------------------------------------------------------
def lr_at(step: int, total: int, peak: float) -> float:
    """Linear warmup over the first 5% of steps, then cosine decay to 10% of the peak."""
    warmup = max(1, total // 20)
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def run_epochs(model: Any, examples: list[tuple[list[int], list[int]]], cfg: StudentConfig, device: torch.device,
               *, pad_id: int) -> list[float]:
    """AdamW over `cfg.epochs` passes; returns the loss of every step."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    total = cfg.epochs * math.ceil(len(examples) / cfg.batch_size)
    rng, losses = random.Random(cfg.seed), list[float]()
    model.train()
    for epoch in range(cfg.epochs):
        for ids, mask, labels in batches(examples, cfg.batch_size, rng, pad_id):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(len(losses), total, cfg.lr)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                loss = model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(round(float(loss.item()), 5))
            if len(losses) % 10 == 0 or len(losses) == total:
                log.info("student epoch %d step %d/%d loss %.4f", epoch + 1, len(losses), total, losses[-1])
    model.eval()
    return losses


# -- 5. the checkpoint --------------------------------------------------------------------------------
def save_checkpoint(model: Any, tokenizer: Any, out: Path, result: TrainResult) -> None:
    """Weights, tokenizer and train.json, then the COMPLETE marker (last, so a kill leaves none)."""
    target = Path(result.checkpoint)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    (out / TRAIN_JSON).write_text(json.dumps(asdict(result), indent=2) + "\n", encoding="utf-8")
    (out / COMPLETE).write_text(result.fingerprint + "\n", encoding="utf-8")


def merged_dir(output_dir: str | Path) -> Path:
    """A complete HF model directory for a finished round, to serve (local backend, vLLM, ...).

    Full fine-tuning already wrote one; a LoRA checkpoint is merged into its base once, into
    `<output_dir>/merged` (written to a temporary name and renamed, so it is whole or absent).
    An external trainer's output directory is used as is when it holds a full model, or merged
    when it holds a peft adapter."""
    out = Path(output_dir)
    if not (out / COMPLETE).is_file():
        raise InputError(f"{out} holds no complete student checkpoint: train the round first")
    record = json.loads((out / TRAIN_JSON).read_text(encoding="utf-8"))
    adapter, base = _adapter_and_base(out, record)
    if adapter is None:
        return Path(record["checkpoint"]) if not record.get("external") else out
    merged = out / MERGED
    if not (merged / "config.json").is_file():
        _merge(adapter, base, merged)
    return merged


def _adapter_and_base(out: Path, record: dict[str, Any]) -> tuple[Path | None, Path]:
    """(adapter dir or None for a full model, base model dir) of a finished round."""
    if not record.get("external"):
        adapter = Path(record["checkpoint"]) if record["method"] == "lora" else None
        return adapter, Path(record["base_model"])
    if (out / "config.json").is_file():
        return None, out
    if (out / "adapter_config.json").is_file():
        return out, base_model_dir(record["base_model"])
    raise InputError(f"the external trainer left neither a model (config.json) nor an adapter (adapter_config.json) "
                     f"in {out}: make the command save one into {{output_dir}}")


def _merge(adapter: Path, base: Path, merged: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), adapter)
    tmp = merged.with_name(f"{MERGED}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.merge_and_unload().save_pretrained(tmp)
    tok_src = adapter if (adapter / "tokenizer_config.json").is_file() else base
    load_tokenizer(tok_src).save_pretrained(tmp)
    os.replace(tmp, merged)


def train_round(cfg: StudentConfig, mix: str | Path, output_dir: str | Path, *, previous: str | Path | None = None) -> Path:
    """One round's checkpoint by whichever trainer the config names (built-in or external command);
    returns `output_dir`, ready for `merged_dir`."""
    if cfg.external_command is not None:
        from synthloop.student.external import run_external

        return run_external(cfg, mix, output_dir)
    train(cfg, mix, output_dir, previous=previous)
    return Path(output_dir)


__all__ = ["ADAPTER", "COMPLETE", "MERGED", "TRAIN_JSON", "WEIGHTS", "TrainResult", "base_model_dir", "batches",
           "build_model", "encode", "load_tokenizer", "lr_at", "merged_dir", "pick_device", "read_mix",
           "run_epochs", "save_checkpoint", "seed_everything", "train", "train_round", "with_system"]
