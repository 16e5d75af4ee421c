"""The DPO export is what TRL's DPOTrainer reads: one training step on a tiny random model, with
the embedded model's tokenizer (offline). And the two non-Python examples on the embedded teacher.
Slow: imports TRL/transformers and runs real models on the CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _tokenizer() -> object:
    from synthloop.backends.local import load_model

    return load_model("smollm2-135m").tokenizer


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_dpo_export_trains_with_trl_dpotrainer(tmp_path: Path) -> None:
    from datasets import Dataset
    from transformers import LlamaConfig, LlamaForCausalLM
    from trl import DPOConfig, DPOTrainer

    from synthloop.recipe import load_recipe
    from synthloop.rounds import run

    # the fake teacher's canned problems are one template a few words apart: near dedup would merge them
    recipe = load_recipe(EXAMPLES / "fractions.toml", overrides={"teacher.backend": "fake", "judge.enabled": False, "curate.near.threshold": 0.99})
    run(recipe, runs_dir=tmp_path)
    rows = [json.loads(x) for x in (tmp_path / "fractions/export/dpo.jsonl").read_text().splitlines()]
    assert len(rows) >= 2
    data = Dataset.from_list([{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows])
    tok = _tokenizer()
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,  # type: ignore[arg-type]
                                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512))
    args = DPOConfig(output_dir=str(tmp_path / "dpo"), per_device_train_batch_size=2, max_steps=1, report_to=[],
                     logging_steps=1, save_strategy="no", use_cpu=True, max_length=256)
    import copy

    trainer = DPOTrainer(model=model, ref_model=copy.deepcopy(model), args=args, train_dataset=data, processing_class=tok)
    out = trainer.train()
    assert out.global_step == 1 and out.training_loss > 0


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", ["maritime-law.toml", "fractions.toml"])
def test_non_python_examples_on_the_embedded_teacher(name: str, tmp_path: Path) -> None:
    from synthloop.recipe import load_recipe
    from synthloop.rounds import run
    from synthloop.storage import RunDir

    overrides = {"plan.max_records": 2, "output.shard_size": 2}
    recipe = load_recipe(EXAMPLES / name, overrides=overrides)
    result = run(recipe, runs_dir=tmp_path)
    assert result.planned == 2 and result.accepted + result.rejected == 2
    rd = RunDir(tmp_path / recipe.name)
    records = list(rd.records("accepted")) + list(rd.records("rejected"))
    assert all(r.teacher.backend == "local" and r.teacher.template_id.startswith("spec:") for r in records)
    if name == "maritime-law.toml":  # lineage holds whatever the weak teacher wrote
        assert all(r.parent_ids == [r.meta["seed_chunk"]["id"]] for r in records)
