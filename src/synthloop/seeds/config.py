"""The recipe's `[seeds]` section (owned here, validated with the rest of the recipe)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator


class SeedsConfig(BaseModel):
    """Which documents, and how they are cut into chunks."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    #: Files, folders or glob patterns (relative to the recipe file): .txt, .md, .html/.htm, .pdf.
    paths: list[str] = Field(min_length=1)
    #: A chunk is whole paragraphs up to this many characters (a longer paragraph is cut at sentences).
    chunk_chars: int = Field(1200, ge=200)
    #: Characters of the previous chunk repeated at the start of the next (context across a cut).
    overlap_chars: int = Field(0, ge=0)
    #: Chunks shorter than this (headings, page numbers) are dropped.
    min_chunk_chars: int = Field(120, ge=1)
    #: Faithfulness: at least this share of the answer's content words must occur in its chunk.
    min_support: float = Field(0.6, ge=0, le=1)

    @field_validator("paths")
    @classmethod
    def _absolute(cls, paths: list[str], info: ValidationInfo) -> list[str]:
        """Relative paths are relative to the recipe file (its folder comes in the context)."""
        base = Path((info.context or {}).get("base_dir") or ".")
        return [p if Path(p).is_absolute() else str(base / p) for p in paths]


__all__ = ["SeedsConfig"]
