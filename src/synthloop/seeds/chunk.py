"""Cutting documents into chunks with stable ids and offsets.

A chunk is whole paragraphs (blank-line separated) up to `chunk_chars`; a longer paragraph is cut
at sentence ends. `start`/`end` are character offsets into the document's text (what its reader
returns), so `text == read_document(file)[start:end]` always holds. The id is a hash of the file's
name, the offsets and the text: the same documents always give the same ids (the plan is stable)."""

from __future__ import annotations

import functools
import glob
import re
from dataclasses import dataclass
from pathlib import Path

import xxhash

from synthloop.errors import InputError
from synthloop.seeds.config import SeedsConfig
from synthloop.seeds.readers import SUFFIXES, read_document

_PARA = re.compile(r"\S(?:.*?\S)?(?=\n\s*\n|\s*\Z)", re.S)
_SENTENCE = re.compile(r"\S.*?(?:[.!?](?=\s)|\Z)", re.S)


@dataclass(frozen=True)
class Chunk:
    id: str
    file: str
    start: int
    end: int
    text: str

    def meta(self) -> dict[str, object]:
        """What a record made from this chunk carries in `meta["seed_chunk"]`."""
        return {"id": self.id, "file": self.file, "start": self.start, "end": self.end, "text": self.text}


def chunk_text(text: str, file: str, max_chars: int = 1200, min_chars: int = 1, overlap: int = 0) -> list[Chunk]:
    spans = _pack(_pieces(text, max_chars), max_chars)
    out: list[Chunk] = []
    for start, end in spans:
        if overlap and out:
            start = max(0, min(start, out[-1].end) - overlap)
        body = text[start:end]
        if len(body.strip()) < min_chars:
            continue
        digest = xxhash.xxh3_64_hexdigest(f"{Path(file).name}|{start}|{end}|{body}".encode())
        out.append(Chunk(f"chunk-{digest[:12]}", file, start, end, body))
    return out


def _pieces(text: str, max_chars: int) -> list[tuple[int, int]]:
    """Paragraph spans; a paragraph over `max_chars` becomes its sentence spans."""
    out: list[tuple[int, int]] = []
    for p in _PARA.finditer(text):
        if p.end() - p.start() <= max_chars:
            out.append((p.start(), p.end()))
            continue
        out += [(p.start() + s.start(), p.start() + s.end()) for s in _SENTENCE.finditer(p.group(0))]
    return out


def _pack(pieces: list[tuple[int, int]], max_chars: int) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for start, end in pieces:
        if spans and end - spans[-1][0] <= max_chars:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans


def files_of(paths: list[str]) -> list[Path]:
    """Every seed file the paths name (folders: their supported files), sorted; none is an error."""
    found: set[Path] = set()
    for p in paths:
        path = Path(p)
        if path.is_dir():
            found |= {f for f in path.rglob("*") if f.is_file() and f.suffix.lower() in SUFFIXES}
        elif path.is_file():
            found.add(path)
        else:
            matches = [Path(m) for m in glob.glob(p, recursive=True)]
            if not matches:
                raise InputError(f"seeds.paths: {p!r} matches no file (fix the path; it is relative to the recipe file)")
            found |= {m for m in matches if m.is_file()}
    return sorted(found)


def load_chunks(cfg: SeedsConfig) -> list[Chunk]:
    """Every chunk of every seed document, in file order (cached while the files are unchanged)."""
    files = files_of(cfg.paths)
    stamp = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    return list(_chunks(stamp, cfg.chunk_chars, cfg.min_chunk_chars, cfg.overlap_chars))


@functools.lru_cache(maxsize=8)
def _chunks(stamp: tuple[tuple[str, int, int], ...], max_chars: int, min_chars: int, overlap: int) -> tuple[Chunk, ...]:
    out: list[Chunk] = []
    for name, _, _ in stamp:
        path = Path(name)
        out += chunk_text(read_document(path), _display(path), max_chars, min_chars, overlap)
    if not out:
        raise InputError(f"seeds: the seed documents hold no chunk of {min_chars}+ characters (add text, or lower seeds.min_chunk_chars)")
    return tuple(out)


def _display(path: Path) -> str:
    """The file as a user would name it: relative to the working folder when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def seed_texts(cfg: SeedsConfig | None) -> list[str]:
    """The chunk texts, for the memorisation check (nothing may copy a long span of a chunk)."""
    return [c.text for c in load_chunks(cfg)] if cfg is not None else []


__all__ = ["Chunk", "chunk_text", "files_of", "load_chunks", "seed_texts"]
