"""Grounding: golden sets of human data and the policies that mix them with synthetic data.

- `load_golden(cfg)` / `load_builtin("python-docs")` / `load_golden_file(path, mapping)` give a
  `GoldenSet` whose `train` rows may be mixed and whose `heldout` rows are for evaluation only.
- `build_mix(golden, synthetic_by_round, cfg, round=, seed=)` keeps every golden training row and at
  most `max_lambda` synthetic rows per golden row; `write_mix` writes Parquet + chat JSONL.
"""

from typing import TYPE_CHECKING

from synthloop.lazy import lazy_exports

if TYPE_CHECKING:  # the names, for type checkers and editors
    from synthloop.grounding.builtin import build_python_docs_snapshot, load_builtin
    from synthloop.grounding.config import BUILTIN_GOLDEN_SETS, FieldMapping, GroundingConfig
    from synthloop.grounding.golden import BadRow, GoldenSet, LoadReport, golden_texts, is_heldout, load_golden_file
    from synthloop.grounding.load import load_golden
    from synthloop.grounding.mix import MixResult, MixStats, SampledOut, build_mix, chat_row, write_mix

_EXPORTS = {
    "BUILTIN_GOLDEN_SETS": "config",
    "BadRow": "golden",
    "FieldMapping": "config",
    "GoldenSet": "golden",
    "GroundingConfig": "config",
    "LoadReport": "golden",
    "MixResult": "mix",
    "MixStats": "mix",
    "SampledOut": "mix",
    "build_mix": "mix",
    "build_python_docs_snapshot": "builtin",
    "chat_row": "mix",
    "golden_texts": "golden",
    "is_heldout": "golden",
    "load_builtin": "builtin",
    "load_golden": "load",
    "load_golden_file": "golden",
    "write_mix": "mix",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = [
    "BUILTIN_GOLDEN_SETS",
    "BadRow",
    "FieldMapping",
    "GoldenSet",
    "GroundingConfig",
    "LoadReport",
    "MixResult",
    "MixStats",
    "SampledOut",
    "build_mix",
    "build_python_docs_snapshot",
    "chat_row",
    "golden_texts",
    "is_heldout",
    "load_builtin",
    "load_golden",
    "load_golden_file",
    "write_mix",
]
