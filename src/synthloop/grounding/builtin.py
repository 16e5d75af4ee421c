"""The built-in golden set for the quickstart domain (teaching Python's standard library).

Its rows are human-written documentation that ships with CPython: the language-reference topics of
`pydoc_data.topics` and the docstrings of a fixed list of standard-library modules. The texts change
between Python versions, so `load_builtin` reads a committed snapshot (`data/python-docs.jsonl.gz`)
and never the live docs; `build_python_docs_snapshot` regenerates that snapshot (byte-identical for
the same interpreter: sorted rows, gzip without a timestamp).
"""

from __future__ import annotations

import gzip
import importlib
import inspect
import json
import platform
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from synthloop.errors import InputError
from synthloop.grounding.config import BUILTIN_GOLDEN_SETS, FieldMapping
from synthloop.grounding.golden import GoldenSet, load_golden_file

DATA_DIR = Path(__file__).with_name("data")
SNAPSHOTS = {"python-docs": DATA_DIR / "python-docs.jsonl.gz"}
SNAPSHOT_MAPPING = FieldMapping(text_field="text", topic_field="topic", skill_field="skill", id_field="id")

#: The modules whose docstrings are in the snapshot: the ones a Python-teaching recipe covers.
PYTHON_DOCS_MODULES: tuple[str, ...] = (
    "abc", "argparse", "array", "base64", "bisect", "calendar", "collections", "contextlib", "copy",
    "csv", "dataclasses", "datetime", "decimal", "difflib", "enum", "fnmatch", "fractions",
    "functools", "glob", "heapq", "io", "itertools", "json", "logging", "math", "operator",
    "os.path", "pathlib", "pprint", "queue", "random", "re", "secrets", "shutil", "sqlite3",
    "statistics", "string", "tempfile", "textwrap", "time", "timeit", "typing", "urllib.parse",
    "uuid", "zipfile",
)
LANGUAGE_SKILL = "language-reference"
LIBRARY_SKILL = "library-reference"
#: Docstrings shorter than this ("Return self.") teach nothing and only pad the set.
MIN_DOC_CHARS = 60


def load_builtin(name: str = "python-docs", *, heldout_fraction: float = 0.1, heldout_seed: int = 0) -> GoldenSet:
    """A built-in golden set, read from its committed snapshot (reproducible across Python versions)."""
    if name not in SNAPSHOTS:
        raise InputError(f"no built-in golden set {name!r}: use one of {', '.join(BUILTIN_GOLDEN_SETS)} "
                         "or a path to your own file")
    return load_golden_file(SNAPSHOTS[name], SNAPSHOT_MAPPING, format="jsonl", name=name,
                            heldout_fraction=heldout_fraction, heldout_seed=heldout_seed)


def build_python_docs_snapshot(path: str | Path) -> int:
    """Write the python-docs snapshot from this interpreter's docs; returns the number of rows."""
    rows = sorted(python_docs_rows(), key=lambda r: r["id"])
    python = platform.python_version()
    payload = "".join(json.dumps({**r, "python": python}, ensure_ascii=False, sort_keys=True) + "\n" for r in rows)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0, filename="") as gz:
        gz.write(payload.encode("utf-8"))
    return len(rows)


def python_docs_rows() -> Iterator[dict[str, Any]]:
    """Every row of the snapshot (unsorted): pydoc topics first, then the modules' docstrings."""
    yield from _pydoc_topic_rows()
    seen_docs: set[str] = set()
    for module_name in PYTHON_DOCS_MODULES:
        for row in _module_rows(module_name):
            if row["text"] not in seen_docs:  # aliases and inherited docs appear once
                seen_docs.add(row["text"])
                yield row


def _pydoc_topic_rows() -> Iterator[dict[str, Any]]:
    from pydoc_data.topics import topics

    for key, text in topics.items():
        title = next((line.strip() for line in text.splitlines() if line.strip()), key)
        yield _row(f"python-docs:topic:{key}", key, LANGUAGE_SKILL, title, text.strip())


def _module_rows(module_name: str) -> Iterator[dict[str, Any]]:
    module = importlib.import_module(module_name)
    doc = inspect.getdoc(module)
    if doc and len(doc) >= MIN_DOC_CHARS:
        yield _row(f"python-docs:{module_name}", module_name, LIBRARY_SKILL, f"the {module_name} module", doc)
    for name, obj in _public_members(module):
        qualname = f"{module_name}.{name}"
        yield from _object_rows(qualname, module_name, obj)
        if inspect.isclass(obj):
            for attr, member in sorted(vars(obj).items()):
                if not attr.startswith("_") and callable(member):
                    yield from _object_rows(f"{qualname}.{attr}", module_name, member)


def _public_members(module: Any) -> list[tuple[str, Any]]:
    """Public functions and classes the module itself defines (re-exports belong to their module)."""
    names = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
    home = {module.__name__, module.__name__.replace("os.path", "posixpath"), f"_{module.__name__}"}
    members = []
    for name in sorted(set(names)):
        obj = getattr(module, name, None)
        if (inspect.isclass(obj) or inspect.isroutine(obj)) and getattr(obj, "__module__", None) in home:
            members.append((name, obj))
    return members


def _object_rows(qualname: str, topic: str, obj: Any) -> Iterator[dict[str, Any]]:
    doc = inspect.getdoc(obj)
    if not doc or len(doc) < MIN_DOC_CHARS:
        return
    yield _row(f"python-docs:{qualname}", topic, LIBRARY_SKILL, qualname, f"{qualname}{_signature(obj)}\n\n{doc}")


def _signature(obj: Any) -> str:
    """`(a, b=1)`; a default that is not a plain literal shows as `...`, because its repr depends on
    the process (`<object at 0x7f..>`, the live list of logging handlers) and would make a rebuild
    differ."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):  # many C functions have no introspectable signature
        return ""
    params = [p.replace(default=_Opaque()) if p.default is not p.empty and not _is_literal(p.default) else p
              for p in sig.parameters.values()]
    return str(sig.replace(parameters=params))


class _Opaque:
    def __repr__(self) -> str:
        return "..."


def _is_literal(value: Any) -> bool:
    if isinstance(value, (tuple, frozenset)):
        return all(_is_literal(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, complex, str, bytes))


def _row(row_id: str, topic: str, skill: str, title: str, text: str) -> dict[str, Any]:
    return {"id": row_id, "topic": topic, "skill": skill, "title": title, "text": text}


__all__ = ["PYTHON_DOCS_MODULES", "SNAPSHOTS", "build_python_docs_snapshot", "load_builtin", "python_docs_rows"]
