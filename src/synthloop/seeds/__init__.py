"""Seed documents: the user's own files (plain text, Markdown, HTML, PDF), read and chunked, so a
task can write grounded questions, explanations and exercises from them. Each record made from a
chunk names it in `parent_ids` (its lineage) and carries `meta["seed_chunk"]` (file, offsets,
text); the faithfulness check scores the answer against that chunk, and the memorisation check
refuses long verbatim copies of any chunk. See docs/tasks.md."""

from synthloop.seeds.chunk import Chunk, chunk_text, load_chunks, seed_texts
from synthloop.seeds.config import SeedsConfig
from synthloop.seeds.readers import read_document
from synthloop.seeds.support import support_score

__all__ = ["Chunk", "SeedsConfig", "chunk_text", "load_chunks", "read_document", "seed_texts", "support_score"]
