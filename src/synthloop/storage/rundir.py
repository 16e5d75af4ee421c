"""The run directory: one folder per run, everything a later reader (inspect, report, card) needs.

    runs/<name>/
      recipe.toml        resolved recipe (secrets are never in a recipe: only env var names)
      manifest.json      versions, seed, recipe hash, plan size, completed chunks, totals
      cache.sqlite       every teacher/judge response, keyed by the request's hash
      data/accepted/     Parquet shards, one per committed chunk
      data/rejected/     every rejection with stage and reason
      data/mix/          the training mix (golden + synthetic), each row with its source
      export/            chat-format JSONL for SFT trainers
      README.md          dataset card

Resume works by chunks: a chunk's shards are written (atomically) before the manifest marks the
chunk done; a chunk not marked done is redone from the start, its answers served by the cache.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
import xxhash

from synthloop.errors import StorageError
from synthloop.recipe import Recipe
from synthloop.records import canonical_json

MANIFEST_VERSION = 1


@dataclass
class RunDir:
    path: Path

    @property
    def accepted_dir(self) -> Path:
        return self.path / "data" / "accepted"

    @property
    def rejected_dir(self) -> Path:
        return self.path / "data" / "rejected"

    @property
    def mix_dir(self) -> Path:
        return self.path / "data" / "mix"

    @property
    def export_dir(self) -> Path:
        return self.path / "export"

    @property
    def cache_path(self) -> Path:
        return self.path / "cache.sqlite"

    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    def shard_name(self, chunk: int) -> str:
        return f"part-{chunk:05d}.parquet"

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    # -- manifest ---------------------------------------------------------------------------
    def read_manifest(self) -> dict[str, Any]:
        if not self.exists():
            raise StorageError(f"{self.path} is not a synthloop run directory (no manifest.json); pass the folder `synthloop run` created, e.g. runs/<name>")
        try:
            return json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise StorageError(f"{self.manifest_path} is corrupt ({e}); delete the run directory and run again") from None

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        _atomic_write(self.manifest_path, json.dumps(manifest, indent=2, sort_keys=True))

    def start(self, recipe: Recipe, planned: int) -> dict[str, Any]:
        """Create the layout, or check that an existing run is the same recipe, and return its manifest."""
        rhash = recipe_hash(recipe)
        if self.exists():
            manifest = self.read_manifest()
            if manifest.get("recipe_hash") != rhash:
                raise StorageError(
                    f"{self.path} holds a run of a different recipe; use a new `name` in the recipe, "
                    "or delete that directory to start over"
                )
            return manifest
        for d in (self.accepted_dir, self.rejected_dir, self.export_dir):
            d.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.path / "recipe.toml", tomli_w.dumps(recipe.to_toml_dict()))
        manifest = {
            "manifest_version": MANIFEST_VERSION,
            "name": recipe.name,
            "recipe_hash": rhash,
            "seed": recipe.seed,
            "planned": planned,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "versions": _versions(),
            "completed_chunks": [],
            "stages_completed": [],
            "finished": False,
        }
        self.write_manifest(manifest)
        return manifest


def recipe_hash(recipe: Recipe) -> str:
    """What decides the records: everything but output placement and concurrency knobs."""
    d = recipe.to_toml_dict()
    d.pop("output", None)
    d.pop("budget", None)  # a cap decides when to stop, not what is made: raising it resumes
    for section in ("teacher", "judge"):
        sub = d.get(section) or {}
        for k in ("concurrency", "timeout_s", "requests_per_minute", "tokens_per_minute", "max_retries"):
            sub.pop(k, None)
    return "v1:" + xxhash.xxh3_64_hexdigest(canonical_json(d).encode())


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("synthloop", "pyarrow", "pydantic", "httpx", "torch", "transformers"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


__all__ = ["RunDir", "recipe_hash"]
