"""The built-in trainer on a tiny random model: the loss mask, learning, seeding, resume, merge."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from synthloop.errors import InputError
from synthloop.student import skills
from synthloop.student import train as tr
from synthloop.student.config import StudentConfig
from synthloop.student.tiny import tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def write_mix(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_loss_mask_covers_only_assistant_turns(tiny: Path) -> None:
    tok = tr.load_tokenizer(tiny)
    msgs = tr.with_system([{"role": "user", "content": "What is 2 + 3?"}, {"role": "assistant", "content": "Answer: 5"},
                           {"role": "user", "content": "And 4 + 4?"}, {"role": "assistant", "content": "Answer: 8"}],
                          "Be brief.")
    ids, labels = tr.encode(tok, msgs, 512)
    trained = tok.decode([t for t, y in zip(ids, labels) if y != tr.IGNORE])
    assert trained == "Answer: 5<|im_end|>\nAnswer: 8<|im_end|>\n"
    assert all(y in (tr.IGNORE, t) for t, y in zip(ids, labels))
    assert msgs[0] == {"role": "system", "content": "Be brief."}


def test_training_lowers_the_loss_and_writes_a_complete_checkpoint(tiny: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    mix = write_mix(tmp_path / "mix.jsonl", skills.training_rows({"add": 16}, seed=0))
    cfg = StudentConfig(base_model=str(tiny), method="full", lr=3e-3, epochs=4, batch_size=8, seed=3)
    result = tr.train(cfg, mix, tmp_path / "r0")
    assert sum(result.losses[-2:]) / 2 < result.losses[0] - 0.3
    assert (tmp_path / "r0" / tr.COMPLETE).is_file() and (tmp_path / "r0" / tr.WEIGHTS / "config.json").is_file()
    saved = json.loads((tmp_path / "r0" / tr.TRAIN_JSON).read_text())
    assert saved["seed"] == 3 and saved["examples"] == 16 and saved["losses"] == result.losses
    assert 0 < saved["trained_tokens"] < saved["tokens"]

    def no_training(*a: object, **k: object) -> list[float]:
        raise AssertionError("a complete round was retrained")

    monkeypatch.setattr(tr, "run_epochs", no_training)
    assert tr.train(cfg, mix, tmp_path / "r0").losses == result.losses  # complete: resumed, not retrained
    write_mix(mix, skills.training_rows({"mul": 16}, seed=0))
    with pytest.raises(InputError, match="another mix"):
        tr.train(cfg, mix, tmp_path / "r0")


def test_same_seed_same_losses_and_a_killed_round_is_retrained(tiny: Path, tmp_path: Path) -> None:
    mix = write_mix(tmp_path / "mix.jsonl", skills.training_rows({"units": 8}, seed=1))
    cfg = StudentConfig(base_model=str(tiny), lr=1e-3, epochs=1, batch_size=4, seed=7)
    first = tr.train(cfg, mix, tmp_path / "a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "half-written.bin").write_bytes(b"x")  # a kill before COMPLETE
    second = tr.train(cfg, mix, tmp_path / "b")
    assert first.losses == second.losses
    assert not (tmp_path / "b" / "half-written.bin").exists()


def test_lora_continue_from_previous_round_and_merge_for_serving(tiny: Path, tmp_path: Path) -> None:
    mix = write_mix(tmp_path / "mix.jsonl", skills.training_rows({"mul": 8}, seed=2))
    cfg = StudentConfig(base_model=str(tiny), lr=1e-3, epochs=1, batch_size=4, init="continue")
    tr.train(cfg, mix, tmp_path / "r0")
    r1 = tr.train(cfg, mix, tmp_path / "r1", previous=tmp_path / "r0")
    assert r1.init_from == str(tmp_path / "r0" / tr.ADAPTER)
    merged = tr.merged_dir(tmp_path / "r1")
    assert (merged / "config.json").is_file() and not (merged / "adapter_config.json").exists()
    with pytest.raises(InputError, match="not complete"):
        tr.train(cfg, mix, tmp_path / "r2", previous=tmp_path / "missing")


def test_config_refuses_unknown_keys_and_a_template_without_placeholders() -> None:
    with pytest.raises(ValueError, match="extra"):
        StudentConfig.model_validate({"epoch": 2})
    with pytest.raises(ValueError, match=r"\{mix\}"):
        StudentConfig(external_command="train.sh {output_dir}")


def test_student_logprob_scores_every_token_after_the_first(tiny: Path) -> None:
    from synthloop.backends.local import unload_model
    from synthloop.student.evaluate import student_logprob

    texts = ["What is 2 + 3?", "Answer: 5", "How many m are in 3 km?"]
    total, n = student_logprob(tiny, batch_size=2)(texts)
    tok = tr.load_tokenizer(tiny)
    assert n == sum(len(tok(t)["input_ids"]) - 1 for t in texts)
    assert total < 0 and math.isfinite(total)
    assert unload_model(str(tiny))
