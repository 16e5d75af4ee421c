"""A tiny, randomly initialised chat model built offline in under a second: for tests and smoke runs
of the classroom loop, where the embedded SmolLM2 (seconds to load, minutes to train) is too slow.

The tokenizer is a byte-level BPE trained on the spot on arithmetic text, with a ChatML template
(the same shape as SmolLM2's), so the trainer and the evaluator run through exactly the code paths
the real student uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
          "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
SPECIAL = ["<pad>", "<|im_start|>", "<|im_end|>"]


def tiny_tokenizer(corpus: list[str] | None = None, vocab_size: int = 300, *, split_digits: bool = False) -> Any:
    """A fast tokenizer with a chat template, trained on `corpus` (default: arithmetic questions).
    `split_digits` keeps every digit its own token (as SmolLM2's tokenizer does): a model trained
    from scratch learns arithmetic digit by digit, not from merged multi-digit tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from synthloop.student.skills import sample

    texts = corpus or [m["content"] for s in ("add", "mul", "frac", "units")
                       for p in sample(s, 40, "train", 0) for m in p.messages()]
    tok = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.pre_tokenizer = (pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
                         if split_digits else byte_level)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts + ["system user assistant"], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<|im_end|>",
                                   bos_token="<|im_start|>", chat_template=CHATML)


def tiny_model(dest: str | Path, *, hidden: int = 32, layers: int = 2, seed: int = 0,
               split_digits: bool = False) -> Path:
    """Write a random Llama-architecture chat model (config, weights, tokenizer) to `dest`.
    The defaults are the tests' (built in a second); `bench/bench_classroom.py --student tiny`
    trains a larger one (hidden 128, 4 layers, digits split) from scratch as a student."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = Path(dest)
    tok = tiny_tokenizer(split_digits=split_digits)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=4,
                         max_position_embeddings=512, tie_word_embeddings=True,
                         pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                         bos_token_id=tok.bos_token_id)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


__all__ = ["CHATML", "tiny_model", "tiny_tokenizer"]
