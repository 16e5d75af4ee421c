"""The student: train a small model on each round's mix, evaluate it skill by skill, steer the next
round to its weaknesses.

Light on import: `recipe.py` imports `student.config`; the trainer (torch, transformers, peft) is
imported only when used. Modules: `config` (the `[student]` section), `train` (built-in trainer),
`external` (command hook), `evaluate` (per-skill accuracy, student perplexity), `steer`
(allocators), `skills` (the arithmetic task family), `tiny` (a tiny random model for tests).
"""

from __future__ import annotations

from synthloop.student.config import EvalConfig, SteerConfig, StudentConfig

__all__ = ["EvalConfig", "SteerConfig", "StudentConfig"]
