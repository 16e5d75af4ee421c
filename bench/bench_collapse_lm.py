"""Model collapse with a real language model: a student retrained on its own samples for G
generations under `replace`, `accumulate`, `golden10` (10% human data kept) and `filtered` (samples
pass synthloop's quality filter + exact + near dedup first), measured every generation with the
collapse monitor's indicators (golden held-out perplexity under the student, tail coverage,
diversity). See `synthloop.collapse.generations` for the regimes.

    python bench/bench_collapse_lm.py                     # tiny transformer from scratch, 4 regimes, g = 0..5
    python bench/bench_collapse_lm.py --cached-only       # table + plot of what is cached, train nothing
    python bench/bench_collapse_lm.py --regimes accumulate # one regime per process: run four in parallel
    python bench/bench_collapse_lm.py --model smollm2 --jobs 2 --threads 2
                                                          # SmolLM2-135M LoRA, 40 texts per generation, 4 regimes

Cost (tiny): generation 0 took 75 s on one core of the loaded shared machine (train 45 s, sample
26 s, measure 4 s); the whole default run is ~40 min of one core (accumulate's sets grow to 6x).
SmolLM2 (the command above, measured in docs/collapse.md): generation 0 on 2 threads, then the
regimes in 2 one-thread processes (accumulate alone, the other three together).

Corpus: human paragraphs found on this machine (`synthloop.curation.planted.human_paragraphs`: the
packaged python-docs snapshot first, then man pages, then standard-library docstrings), 250-600
characters, shuffled with the seed and split into a train set (generation 0's data) and a golden
held-out set that no generation ever trains on. Sampling: temperature 1, no top-k / top-p (the full
distribution). Every generation is cached under bench/out/collapse_lm/<model>-<settings hash>/, so a
rerun resumes; `results.json`, `collapse_lm.png` and a markdown table are written next to it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from synthloop.collapse.config import CollapseConfig
from synthloop.collapse.embed import hash_embedder
from synthloop.collapse.generations import (
    REGIMES,
    Experiment,
    Generation,
    Student,
    cached_generations,
    curation_verifier,
    run_regime,
)
from synthloop.collapse.monitor import CollapseMonitor

OUT = Path(__file__).resolve().parent / "out" / "collapse_lm"
#: The indicators in the table and the plot (every indicator is in results.json).
SHOWN = ("golden_ppl_ratio", "tail_coverage_ratio", "distinct_2_ratio", "entropy_2_ratio", "vendi_ratio",
         "ref_ppl_ratio", "compression_ratio_rel")


# -- the corpus --------------------------------------------------------------------------------------
def human_corpus(n_train: int, n_heldout: int, seed: int, *, min_chars: int = 250,
                 max_chars: int = 600) -> tuple[list[str], list[str]]:
    """Disjoint human train and held-out paragraphs, a seeded draw from the first 4 * (n_train +
    n_heldout) distinct paragraphs on this machine."""
    from synthloop.curation.planted import human_paragraphs

    need = n_train + n_heldout
    paras = human_paragraphs(min_chars=min_chars, max_chars=max_chars, limit=4 * need)
    if len(paras) < need:
        sys.exit(f"only {len(paras)} human paragraphs of {min_chars}-{max_chars} characters on this machine; "
                 f"lower --n-train / --n-heldout (need {need})")
    random.Random(seed).shuffle(paras)
    return paras[:n_train], paras[n_train:need]


# -- the tiny transformer, trained from scratch ---------------------------------------------------------
@dataclass(frozen=True)
class TinyConfig:
    vocab: int = 1024
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    block: int = 128  # training context (packed)
    max_new_tokens: int = 160  # a sample stops at </s> or here (human paragraphs: median ~100 tokens)
    epochs: int = 5
    batch: int = 8  # small batches: at this size the number of steps is what the model lacks
    lr: float = 3e-3
    sample_batch: int = 320
    #: True: no generation takes more optimiser steps than generation 0, so `accumulate` sees each
    #: text fewer times as its set grows. False (default): `epochs` passes over whatever the set is,
    #: as in Gerstgrasser et al., so accumulate's training cost grows with the generation.
    match_compute: bool = False


class TinyStudent:
    """A Llama-architecture transformer with a byte-level BPE tokenizer trained once on the human
    train split (fixed across generations, as a pretrained tokenizer would be). Each generation
    starts from a fresh random init with its own seed: packed blocks, AdamW, warmup + cosine."""

    def __init__(self, cfg: TinyConfig, human_train: Sequence[str]) -> None:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        self.cfg = cfg
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=cfg.vocab, special_tokens=["</s>"], show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(list(human_train), trainer)
        self.tok, self.eos = tok, tok.token_to_id("</s>")
        self.max_steps = cfg.epochs * math.ceil(self._blocks(human_train)[0].shape[0] / cfg.batch)

    def _blocks(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and next-token targets: the texts joined by </s>, cut into `block`-token rows."""
        block = self.cfg.block
        stream = [i for ids in self._ids(texts) for i in (self.eos, *ids)] + [self.eos]
        n_blocks = (len(stream) - 1) // block
        data = torch.tensor(stream[: n_blocks * block + 1])
        return data[:-1].view(n_blocks, block), data[1:].view(n_blocks, block)

    def _ids(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self.tok.encode_batch(list(texts))]

    def _model(self, seed: int) -> Any:
        from transformers import LlamaConfig, LlamaForCausalLM

        c = self.cfg
        torch.manual_seed(seed)
        config = LlamaConfig(vocab_size=self.tok.get_vocab_size(), hidden_size=c.hidden, intermediate_size=c.hidden * 3,
                             num_hidden_layers=c.layers, num_attention_heads=c.heads, num_key_value_heads=c.heads,
                             max_position_embeddings=c.max_new_tokens + 8, tie_word_embeddings=True,
                             bos_token_id=self.eos, eos_token_id=self.eos, pad_token_id=self.eos)
        return LlamaForCausalLM(config)

    def train(self, texts: Sequence[str], seed: int) -> Any:
        c = self.cfg
        x, y = self._blocks(texts)
        n_blocks = x.shape[0]
        model = self._model(seed)
        opt = torch.optim.AdamW(model.parameters(), lr=c.lr, weight_decay=0.1, betas=(0.9, 0.95))
        steps = c.epochs * math.ceil(n_blocks / c.batch)
        steps = min(self.max_steps, steps) if c.match_compute else steps
        gen = torch.Generator().manual_seed(seed)
        step = 0
        model.train()
        while step < steps:
            for b in torch.randperm(n_blocks, generator=gen).split(c.batch):
                if step >= steps:
                    break
                lr = c.lr * min(1.0, (step + 1) / max(1, steps // 20)) * 0.5 * (1 + math.cos(math.pi * step / steps))
                for group in opt.param_groups:
                    group["lr"] = lr
                logits = model(input_ids=x[b]).logits
                loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), y[b].reshape(-1))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                step += 1
        model.eval()
        return model

    @torch.no_grad()
    def sample(self, model: Any, n: int, seed: int) -> list[str]:
        """n texts at temperature 1 from the full distribution, each started at </s>."""
        torch.manual_seed(seed + 7)
        out: list[str] = []
        while len(out) < n:
            b = min(self.cfg.sample_batch, n - len(out))
            start = torch.full((b, 1), self.eos)
            rows = model.generate(start, attention_mask=torch.ones_like(start), do_sample=True, temperature=1.0,
                                  top_k=0, top_p=1.0, max_new_tokens=self.cfg.max_new_tokens,
                                  eos_token_id=self.eos, pad_token_id=self.eos)
            for row in rows[:, 1:].tolist():
                ids = row[: row.index(self.eos)] if self.eos in row else row
                out.append(self.tok.decode(ids).strip())
        return out

    @torch.no_grad()
    def logprob(self, model: Any, texts: Sequence[str]) -> tuple[float, int]:
        """Sum of ln p over every token of every text and its closing </s>, each text scored alone."""
        total, count = 0.0, 0
        seqs = [[self.eos, *ids[: self.cfg.max_new_tokens], self.eos] for ids in self._ids(texts)]
        for i in range(0, len(seqs), 64):
            chunk = seqs[i : i + 64]
            width = max(map(len, chunk))
            ids = torch.tensor([s + [self.eos] * (width - len(s)) for s in chunk])
            mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in chunk])
            logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits[:, :-1].float(), -1)
            tok_lp = logp.gather(-1, ids[:, 1:, None])[..., 0] * mask[:, 1:]
            total += float(tok_lp.sum())
            count += int(mask[:, 1:].sum())
        return total, count


# -- SmolLM2-135M, fine-tuned per generation ---------------------------------------------------------
PROMPT = "Write one paragraph of technical documentation."


class SmolStudent:
    """SmolLM2-135M fine-tuned (LoRA, `synthloop.student.train`) from the base model each generation
    on chat rows (user: a fixed instruction, assistant: a paragraph), so the loss is on the paragraph
    only; sampled and scored with the same prompt through the adapter folded into the base in memory
    (`merged_dir` would write a 540 MB directory per generation)."""

    def __init__(self, work: Path, *, epochs: int, max_new_tokens: int = 128, batch: int = 8,
                 sample_batch: int = 64) -> None:
        from synthloop.student.config import StudentConfig

        self.work, self.max_new_tokens, self.sample_batch = work, max_new_tokens, sample_batch
        self.cfg = StudentConfig(method="lora", init="base", epochs=epochs, batch_size=batch, max_seq_len=320,
                                 device="cpu", lr=2e-4)

    def _messages(self, text: str | None = None) -> list[dict[str, str]]:
        from synthloop.student.train import with_system

        msgs = [{"role": "user", "content": PROMPT}] + ([{"role": "assistant", "content": text}] if text else [])
        return with_system(msgs, self.cfg.system_prompt)

    def train(self, texts: Sequence[str], seed: int) -> Any:
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        from synthloop.student.train import TrainResult, load_tokenizer, train

        digest = hashlib.sha256("\x1e".join(texts).encode()).hexdigest()[:12]
        out = self.work / f"ckpt-{seed}-{digest}"
        mix = self.work / f"mix-{seed}-{digest}.jsonl"
        mix.parent.mkdir(parents=True, exist_ok=True)
        mix.write_text("".join(json.dumps({"messages": self._messages(t)[1:]}) + "\n" for t in texts), encoding="utf-8")
        done = train(self.cfg.model_copy(update={"seed": seed}), mix, out)
        base = AutoModelForCausalLM.from_pretrained(done.base_model, dtype=torch.float32)
        lm = PeftModel.from_pretrained(base, TrainResult.read(out).checkpoint).merge_and_unload().eval()
        tok = load_tokenizer(Path(done.base_model))
        tok.padding_side = "left"
        return lm, tok

    def _prompt(self, tok: Any) -> list[int]:
        text = tok.apply_chat_template(self._messages(), tokenize=False, add_generation_prompt=True)
        return list(tok(text, add_special_tokens=False)["input_ids"])

    @torch.no_grad()
    def sample(self, model: Any, n: int, seed: int) -> list[str]:
        """n paragraphs at temperature 1 from the full distribution, `sample_batch` at a time (one
        prompt, so no padding: a big batch costs little more per step than a small one on CPU)."""
        lm, tok = model
        torch.manual_seed(seed + 7)
        prompt = torch.tensor([self._prompt(tok)])
        stop = tok.convert_tokens_to_ids("<|im_end|>")
        out: list[str] = []
        while len(out) < n:
            b = min(self.sample_batch, n - len(out))
            ids = prompt.repeat(b, 1)
            rows = lm.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=1.0, top_k=0,
                               top_p=1.0, max_new_tokens=self.max_new_tokens, eos_token_id=stop,
                               pad_token_id=tok.pad_token_id or stop)
            for row in rows[:, ids.shape[1]:].tolist():
                row = row[: row.index(stop)] if stop in row else row
                out.append(tok.decode(row, skip_special_tokens=True).strip())
        return out

    @torch.no_grad()
    def logprob(self, model: Any, texts: Sequence[str]) -> tuple[float, int]:
        """ln p of each paragraph's tokens and its <|im_end|> after the prompt, 16 texts a forward
        pass (right-padded; the padding is masked out of the sum)."""
        lm, tok = model
        prompt = self._prompt(tok)
        stop = tok.convert_tokens_to_ids("<|im_end|>")
        bodies = [ids[: self.max_new_tokens] + [stop] for ids in tok(list(texts), add_special_tokens=False)["input_ids"]]
        total, count = 0.0, 0
        for i in range(0, len(bodies), 16):
            chunk = bodies[i : i + 16]
            width = len(prompt) + max(map(len, chunk))
            ids = torch.tensor([prompt + b + [stop] * (width - len(prompt) - len(b)) for b in chunk])
            mask = torch.tensor([[1] * (len(prompt) + len(b)) + [0] * (width - len(prompt) - len(b)) for b in chunk])
            logp = torch.log_softmax(lm(input_ids=ids, attention_mask=mask).logits[:, :-1].float(), -1)
            tok_lp = logp.gather(-1, ids[:, 1:, None])[..., 0]
            scored = mask[:, 1:].clone()
            scored[:, : len(prompt) - 1] = 0  # the prompt's own tokens are given, not scored
            total += float((tok_lp * scored).sum())
            count += int(scored.sum())
        return total, count


# -- running, tabulating, plotting ----------------------------------------------------------------------
def settings_dir(args: argparse.Namespace, extra: dict[str, Any]) -> Path:
    keys = {k: v for k, v in vars(args).items() if k not in ("generations", "regimes", "out", "threads", "cached_only", "jobs")} | extra
    digest = hashlib.sha256(json.dumps(keys, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return Path(args.out) / f"{args.model}-{digest}"


def make_student(args: argparse.Namespace, train: list[str], root: Path) -> tuple[Student, dict[str, Any]]:
    if args.model == "tiny":
        cfg = TinyConfig(epochs=args.epochs or TinyConfig.epochs, match_compute=args.match_compute)
        return TinyStudent(cfg, train), asdict(cfg)
    student = SmolStudent(root / "checkpoints", epochs=args.epochs or 2, max_new_tokens=args.max_new_tokens)
    return student, {"lora": "r16 all-linear", "lr": 2e-4, "max_new_tokens": args.max_new_tokens}


def regime_cost(name: str, generations: int) -> int:
    """Texts trained on over generations 1..G (accumulate's set grows by one sample set a generation)."""
    return sum(g + 1 for g in range(1, generations + 1)) if REGIMES[name].accumulate else generations


def split_regimes(regimes: Sequence[str], generations: int, jobs: int) -> list[list[str]]:
    """Regimes over `jobs` processes, the costliest first onto the least loaded (LPT)."""
    groups: list[list[str]] = [[] for _ in range(min(jobs, len(regimes)))]
    load = [0] * len(groups)
    for name in sorted(regimes, key=lambda r: -regime_cost(r, generations)):
        i = load.index(min(load))
        groups[i].append(name)
        load[i] += regime_cost(name, generations)
    return groups


def child_argv(args: argparse.Namespace, regimes: Sequence[str]) -> list[str]:
    """The command line of one regime process: the same settings, one thread, its own regimes."""
    argv = ["--model", args.model, "--generations", str(args.generations), "--regimes", ",".join(regimes),
            "--n-train", str(args.n_train), "--n-heldout", str(args.n_heldout), "--pool", str(args.pool),
            "--max-chars", str(args.max_chars), "--seed", str(args.seed), "--threads", "1",
            "--max-new-tokens", str(args.max_new_tokens), "--out", args.out]
    return argv + (["--epochs", str(args.epochs)] if args.epochs else []) + (["--match-compute"] if args.match_compute else [])


def run_parallel(args: argparse.Namespace) -> dict[str, Any]:
    """Generation 0 here (it is shared), then the regimes in `--jobs` processes of one torch thread
    each (on 2 cores two 1-thread processes beat one 2-thread process, and no thread waits on a
    descheduled sibling), then the table and plot of everything from the cache."""
    import subprocess

    began = time.perf_counter()
    run(argparse.Namespace(**(vars(args) | {"generations": 0, "regimes": args.regimes[:1], "jobs": 1})))
    procs = [subprocess.Popen([sys.executable, __file__, *child_argv(args, group)])
             for group in split_regimes(args.regimes, args.generations, args.jobs)]
    if any(p.wait() for p in procs):
        sys.exit("a regime's process failed (see above); rerun the same command to resume from the cache")
    results = run(argparse.Namespace(**(vars(args) | {"cached_only": True, "jobs": 1})))
    wall = round(time.perf_counter() - began, 1)
    print(f"whole run: {wall} s wall with {args.jobs} processes")
    return results | {"seconds_wall": wall}


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    os.environ["SYNTHLOOP_TORCH_THREADS"] = str(args.threads)  # the local backend (sampling) reads it at load
    train, heldout = human_corpus(args.n_train, args.n_heldout, args.seed, max_chars=args.max_chars)
    student_cfg = asdict(TinyConfig(epochs=args.epochs or TinyConfig.epochs, match_compute=args.match_compute)) \
        if args.model == "tiny" else {}
    root = settings_dir(args, student_cfg)
    student, described = make_student(args, train, root)
    exp = Experiment(student, train, heldout, n_samples=args.n_train, pool=math.ceil(args.n_train * args.pool),
                     cache_dir=root, seed=args.seed, verifier=curation_verifier(),
                     log=lambda s: print(s, flush=True))
    cfg = CollapseConfig(embedder="hash", stop_on_fail=False, seed=args.seed)
    embed = hash_embedder()
    began = time.perf_counter()
    gens = {name: min(args.generations, cached_generations(exp, name) - 1) if args.cached_only else args.generations
            for name in args.regimes}
    curves = {name: run_regime(exp, REGIMES[name], gens[name], CollapseMonitor(cfg, embed=embed))
              for name in args.regimes if gens[name] >= 0}
    results = {"model": args.model, "student": described, "settings": vars(args), "cache": str(root),
               "seconds_this_run": round(time.perf_counter() - began, 1),
               "regimes": {k: [g.row() for g in v] for k, v in curves.items()}}
    (root / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n", encoding="utf-8")
    (root / "table.md").write_text(table(curves) + "\n", encoding="utf-8")
    plot(curves, root / "collapse_lm.png", args)
    print(table(curves))
    print(f"wrote {root}/results.json, table.md, collapse_lm.png ({results['seconds_this_run']} s this run)")
    return results


def _fmt(v: float | None, spec: str = ".3f") -> str:
    return "—" if v is None or not math.isfinite(v) else format(v, spec)


def _vs_golden(g: Generation, name: str) -> float | None:
    """The indicator against a same-size human sample (golden_ppl_ratio: against generation 0)."""
    value = g.measurement["values"].get(name)
    return None if value is None else float(value)


def table(curves: dict[str, list[Generation]]) -> str:
    """One row per regime and generation: golden ppl, the indicators against a same-size human
    sample (1.0 = human-like; golden_ppl_ratio is against generation 0), the training set's make-up."""
    head = ["regime", "g", "golden ppl", *SHOWN, "sample chars", "train texts (human)", "filtered out"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, gens in curves.items():
        for g in gens:
            rejected = sum(g.rejected.values())
            lines.append("| " + " | ".join([
                name, str(g.generation), _fmt(g.golden_ppl, ".1f"), *(_fmt(_vs_golden(g, k)) for k in SHOWN),
                f"{sum(map(len, g.samples)) / max(1, len(g.samples)):.0f}", f"{g.train_texts} ({g.train_human})",
                f"{rejected}/{g.verified_pool}" if g.verified_pool else "—"]) + " |")
    return "\n".join(lines)


def plot(curves: dict[str, list[Generation]], path: Path, args: argparse.Namespace) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no plot (pip install 'synthloop[local]')")
        return
    panels = ("golden_ppl", "tail_coverage_ratio", "distinct_2_ratio", "ref_ppl_ratio")
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6))
    for ax, name in zip(axes, panels):
        for regime, gens in curves.items():
            ys = [g.golden_ppl if name == "golden_ppl" else _vs_golden(g, name) for g in gens]
            ax.plot([g.generation for g in gens], [math.nan if y is None else y for y in ys], "o-", ms=3, label=regime)
        ax.set(title=name + ("" if name == "golden_ppl" else " (vs human sample)"), xlabel="generation")
    axes[0].set_ylabel("golden held-out perplexity (per token)")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{args.model}: retrained on its own samples (n_train={args.n_train}, seed {args.seed})")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=("tiny", "smollm2"), default="tiny")
    p.add_argument("--generations", type=int, default=5, help="generations after generation 0 (default 5)")
    p.add_argument("--regimes", type=lambda s: s.split(","), default=list(REGIMES),
                   help=f"comma-separated subset of {','.join(REGIMES)}")
    p.add_argument("--n-train", type=int, default=None, help="human train paragraphs = texts per generation "
                   "(default: 300 tiny, 40 smollm2)")
    p.add_argument("--n-heldout", type=int, default=None, help="golden held-out paragraphs (default: 150 tiny, 50 smollm2)")
    p.add_argument("--pool", type=float, default=1.1, help="texts sampled per generation / texts kept "
                   "(the filtered regime tops up from the extra)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per generation (default: 5 tiny, 2 smollm2)")
    p.add_argument("--max-chars", type=int, default=None, help="longest human paragraph used (characters; "
                   "default: 600 tiny, 450 smollm2)")
    p.add_argument("--match-compute", action="store_true", help="tiny: cap every generation at generation 0's "
                   "optimiser steps (accumulate then sees each text fewer times)")
    p.add_argument("--cached-only", action="store_true", help="tabulate and plot the cached generations only "
                   "(train nothing)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: on a shared 2-core machine two "
                   "threads were measured 11x slower than one)")
    p.add_argument("--max-new-tokens", type=int, default=128, help="smollm2: longest sample, in tokens")
    p.add_argument("--jobs", type=int, default=1, help="run the regimes in this many processes of one torch "
                   "thread each, after generation 0 (2 on this machine's 2 cores)")
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    bad = [r for r in args.regimes if r not in REGIMES]
    if bad:
        p.error(f"unknown regime(s) {', '.join(bad)}: use a subset of {','.join(REGIMES)}")
    small = args.model == "smollm2"
    args.n_train = args.n_train or (40 if small else 300)
    args.max_chars = args.max_chars or (450 if small else 600)
    args.n_heldout = args.n_heldout or (50 if small else 150)
    return args


if __name__ == "__main__":
    parsed = parse()
    run_parallel(parsed) if parsed.jobs > 1 and not parsed.cached_only else run(parsed)
