"""The real student: SmolLM2-135M (the embedded model, converted once) trained for a few LoRA steps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthloop.student import skills
from synthloop.student.config import StudentConfig
from synthloop.student.evaluate import EvalItem, evaluate_checkpoint
from synthloop.student.train import COMPLETE, IGNORE, base_model_dir, encode, load_tokenizer, train, with_system


@pytest.mark.slow
def test_smollm2_trains_a_few_lora_steps_and_answers_through_the_local_backend(tmp_path: Path) -> None:
    tok = load_tokenizer(base_model_dir())
    ids, labels = encode(tok, with_system(skills.sample("add", 1, "train", 0)[0].messages(), "Be brief."), 512)
    assert tok.decode([t for t, y in zip(ids, labels) if y != IGNORE]).endswith("<|im_end|>\n")
    mix = tmp_path / "mix.jsonl"
    mix.write_text("".join(json.dumps(r) + "\n" for r in skills.training_rows({"add": 16, "mul": 16}, seed=0)))
    cfg = StudentConfig(epochs=1, batch_size=8, lr=5e-4)
    result = train(cfg, mix, tmp_path / "r0")
    assert len(result.losses) == 4 and result.losses[-1] < result.losses[0]
    assert (tmp_path / "r0" / COMPLETE).is_file()
    items = [EvalItem.from_row(r) for r in skills.eval_rows(["add"], per_skill=4)]
    ev = evaluate_checkpoint(cfg.model_copy(update={"eval": cfg.eval.model_copy(update={"max_new_tokens": 40})}),
                             tmp_path / "r0", items)
    assert ev.skills["add"].n == 4 and all(i.reply for i in ev.items)
