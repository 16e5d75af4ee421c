"""The recipe's `[student]` section: which model learns from each round's mix, how it is trained,
evaluated skill by skill, and how its errors steer the next round.

Light on purpose (pydantic only): `recipe.py` imports this module, and a recipe without a student
must not pay for torch. Every key here is read by code in this package; the comment on each says
which function reads it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: The base model's default: the embedded SmolLM2-135M-Instruct, converted once to an HF directory.
EMBEDDED_STUDENT = "smollm2-135m"
#: One line instead of SmolLM2's default system prompt: 20-25% fewer tokens per training example.
DEFAULT_SYSTEM_PROMPT = "You are a concise assistant."


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class EvalConfig(_Section):
    """How the student is examined after each round (read by `evaluate.load_eval_items` / `evaluate`)."""

    #: "arithmetic" (the built-in skill family), "golden" (the golden held-out split; the caller
    #: passes its rows) or the path of a JSONL file of items ({id, skill, messages, reference}).
    sets: list[str] = Field(default_factory=lambda: ["golden"], min_length=1)
    #: How an answer is scored unless the item names its own scorer.
    scorer: Literal["exact", "verifier", "judge"] = "exact"
    max_new_tokens: int = Field(64, ge=1)
    #: At most this many items per skill (a seeded sample); None keeps all.
    items_per_skill: int | None = Field(200, ge=1)
    #: How many prompts the student answers per generate call.
    batch_size: int = Field(16, ge=1)


class SteerConfig(_Section):
    """How per-skill results become the next round's budget (read by `steer.allocate`)."""

    #: A name in `steer.ALLOCATORS`: "expected_gain" (default), "expected_gain_v1", "error" or "uniform".
    allocator: str = "expected_gain"
    #: Each skill gets at least this many examples per round (when the round's budget allows).
    floor_examples: int = Field(100, ge=0)
    #: expected_gain: a skill whose accuracy rose by less than this after its last budget increase
    #: counts as not responding to data and gets its floor. 0 disables the check.
    response_min_gain: float = Field(0.03, ge=0.0, le=1.0)
    #: Failed evaluation items per skill kept as seeds for the next round's prompts (LLM2LLM); 0: none.
    failed_seeds_per_skill: int = Field(20, ge=0)


class StudentConfig(_Section):
    """The student: trained on each round's `mix.jsonl`, then evaluated and used for steering."""

    #: "smollm2-135m" (embedded GGUF, converted once to an HF directory), a .gguf file or an HF directory.
    base_model: str = EMBEDDED_STUDENT
    method: Literal["lora", "full"] = "lora"
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    #: Module names LoRA adapts; "all-linear" adapts every linear layer except the output head.
    lora_targets: list[str] = Field(default_factory=lambda: ["all-linear"], min_length=1)
    lr: float = Field(2e-4, gt=0)
    epochs: int = Field(2, ge=1)
    batch_size: int = Field(8, ge=1)
    #: Longer training examples are cut at this many tokens (the assistant part last).
    max_seq_len: int = Field(512, ge=16)
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    #: "base": each round trains from the base model on that round's mix; "continue": from the
    #: previous round's checkpoint.
    init: Literal["base", "continue"] = "continue"
    #: Prepended as the system turn of every training and evaluation conversation that has none;
    #: "" keeps the model's own default.
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    #: Train with this command instead of the built-in trainer, e.g.
    #: "accelerate launch my_sft.py --data {mix} --model {base_model} --out {output_dir}".
    external_command: str | None = None
    eval: EvalConfig = Field(default_factory=EvalConfig)
    steer: SteerConfig = Field(default_factory=SteerConfig)
    #: Stop rule: the run ends after the round in which every evaluated skill reached this
    #: accuracy (read by `synthloop.classroom`); None: run every round.
    target_accuracy: float | None = Field(None, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _check(self) -> "StudentConfig":
        if self.external_command is not None:
            missing = [k for k in ("{mix}", "{output_dir}") if k not in self.external_command]
            if missing:
                raise ValueError(f"student.external_command must contain {' and '.join(missing)} "
                                 "(also available: {base_model})")
        return self


__all__ = ["DEFAULT_SYSTEM_PROMPT", "EMBEDDED_STUDENT", "EvalConfig", "SteerConfig", "StudentConfig"]
