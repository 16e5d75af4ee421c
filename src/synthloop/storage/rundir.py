"""The run directory: one folder per run. `RunDir` owns every path in it; nothing else builds one.

    runs/<name>/
      recipe.toml                     resolved recipe (secrets are never in a recipe: env var names only)
      manifest.json                   the typed manifest (storage/manifest.py)
      cache.sqlite                    every teacher/judge response, keyed by the request's hash
      data/accepted/rRRR-part-CCCCC.parquet   accepted records, one shard per committed chunk of round RRR
      data/rejected/rRRR-part-CCCCC.parquet   every rejection with stage and reason
      data/mix/round-RRR/             that round's training mix (golden + synthetic), each row with its source
      stats/round-RRR.json            per-stage statistics of the round (seen / kept / rejected by reason)
      stats/round-RRR/chunk-CCCCC.json  the same per committed chunk (summed into the round's file)
      collapse/                       collapse reports and their round-over-round history
      student/round-RRR/              the student's checkpoint and evaluation (with a [student] section)
      export/                         chat-format JSONL of what is published
      README.md, report.html          dataset card and report (reports/ builds them from the files)

Resume works by chunks: a chunk's shards and stats are written (atomically) before the manifest
marks the chunk done; a chunk not marked done is redone from the start, its answers served by the
cache. Shard names carry the round, so rounds never collide.
"""

from __future__ import annotations

import json
import platform
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import tomli_w
import xxhash

from synthloop.errors import StorageError
from synthloop.recipe import Recipe
from synthloop.records import Record, canonical_json
from synthloop.storage.atomic import atomic_write_json, atomic_write_text
from synthloop.storage.manifest import Manifest
from synthloop.storage.shards import read_shards, write_shard

Kind = Literal["accepted", "rejected"]


@dataclass
class RunDir:
    path: Path

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    # -- paths ------------------------------------------------------------------------------
    @property
    def accepted_dir(self) -> Path:
        return self.path / "data" / "accepted"

    @property
    def rejected_dir(self) -> Path:
        return self.path / "data" / "rejected"

    @property
    def export_dir(self) -> Path:
        return self.path / "export"

    @property
    def cache_path(self) -> Path:
        return self.path / "cache.sqlite"

    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    @property
    def recipe_path(self) -> Path:
        return self.path / "recipe.toml"

    @property
    def card_path(self) -> Path:
        return self.path / "README.md"

    @property
    def report_path(self) -> Path:
        return self.path / "report.html"

    @property
    def collapse_dir(self) -> Path:
        return self.path / "collapse"

    def folder(self, kind: Kind) -> Path:
        return self.accepted_dir if kind == "accepted" else self.rejected_dir

    def shard_path(self, kind: Kind, round: int, chunk: int) -> Path:
        return self.folder(kind) / f"r{round:03d}-part-{chunk:05d}.parquet"

    def mix_dir(self, round: int) -> Path:
        return self.path / "data" / "mix" / f"round-{round:03d}"

    def stats_path(self, round: int) -> Path:
        return self.path / "stats" / f"round-{round:03d}.json"

    def chunk_stats_path(self, round: int, chunk: int) -> Path:
        return self.path / "stats" / f"round-{round:03d}" / f"chunk-{chunk:05d}.json"

    def collapse_report_path(self, round: int) -> Path:
        return self.collapse_dir / f"round-{round:03d}.json"

    def student_dir(self, round: int) -> Path:
        return self.path / "student" / f"round-{round:03d}"

    # -- records ----------------------------------------------------------------------------
    def shards(self, kind: Kind, rounds: Iterable[int] | None = None) -> list[Path]:
        """The shards of `kind`, in (round, chunk) order; only those of `rounds` when given."""
        wanted = None if rounds is None else {f"r{r:03d}-" for r in rounds}
        found = sorted(self.folder(kind).glob("*.parquet"))
        return [p for p in found if wanted is None or p.name[:5] in wanted]

    def records(self, kind: Kind = "accepted", rounds: Iterable[int] | None = None) -> Iterator[Record]:
        """The one reader of a run's records."""
        return read_shards(self.shards(kind, rounds))

    def write_chunk(self, round: int, chunk: int, accepted: list[Record], rejected: list[Record]) -> None:
        """Both shards of a committed chunk (an empty side leaves no file)."""
        for kind, rows in (("accepted", accepted), ("rejected", rejected)):
            path = self.shard_path(kind, round, chunk)  # type: ignore[arg-type]
            if rows:
                write_shard(rows, path)
            else:
                path.unlink(missing_ok=True)

    def drop_rounds_from(self, round: int) -> None:
        """Remove the shards, stats, mixes and collapse reports of `round` and every later one
        (their inputs changed). The request cache stays: identical requests are still answered."""
        kinds: tuple[Kind, ...] = ("accepted", "rejected")
        for kind in kinds:
            for p in self.folder(kind).glob("r*-part-*.parquet"):
                if int(p.name[1:4]) >= round:
                    p.unlink()
        for pattern in ("stats/round-*", "data/mix/round-*", "collapse/round-*"):
            for p in self.path.glob(pattern):
                if int(p.name[6:9]) >= round:
                    shutil.rmtree(p) if p.is_dir() else p.unlink()

    # -- manifest ---------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.manifest_path.is_file()

    def read_manifest(self) -> Manifest:
        if not self.exists():
            raise StorageError(f"{self.path} is not a synthloop run directory (no manifest.json); pass the folder `synthloop run` created, e.g. runs/<name>")
        try:
            return Manifest.from_json(json.loads(self.manifest_path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, ValueError) as e:
            raise StorageError(f"{self.manifest_path} is corrupt ({str(e).splitlines()[0]}); delete the run directory and run again") from None

    def write_manifest(self, manifest: Manifest) -> None:
        atomic_write_json(self.manifest_path, manifest.to_json())

    def start(self, recipe: Recipe) -> Manifest:
        """Create the layout, or check that an existing run is the same recipe, and return its manifest."""
        rhash = recipe_hash(recipe)
        if self.exists():
            manifest = self.read_manifest()
            if manifest.recipe_hash != rhash:
                raise StorageError(
                    f"{self.path} holds a run of a different recipe; use a new `name` in the recipe, "
                    "or delete that directory to start over"
                )
            return manifest
        for d in (self.accepted_dir, self.rejected_dir, self.export_dir):
            d.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.recipe_path, tomli_w.dumps(recipe.to_toml_dict()))
        manifest = Manifest(name=recipe.name, recipe_hash=rhash, seed=recipe.seed,
                            created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), versions=_versions())
        self.write_manifest(manifest)
        return manifest

    def save_recipe(self, recipe: Recipe) -> None:
        """The resolved recipe as run last (rounds, budget and output may change between sessions)."""
        atomic_write_text(self.recipe_path, tomli_w.dumps(recipe.to_toml_dict()))


#: Sections that decide when a run stops or where it writes, never what a record is: changing them
#: resumes the same run (`engine` decides where stages run, never what they decide). `rounds` is checked per round instead (a finished round is kept while its
#: own inputs are unchanged).
_NOT_IDENTITY = ("output", "budget", "rounds", "student", "engine")
_KNOBS = ("concurrency", "timeout_s", "requests_per_minute", "tokens_per_minute", "max_retries")


def recipe_hash(recipe: Recipe) -> str:
    """What decides the records: everything but output placement, stop rules and concurrency knobs."""
    d = recipe.to_toml_dict()
    for key in _NOT_IDENTITY:
        d.pop(key, None)
    for section in ("teacher", "judge"):
        sub = d.get(section) or {}
        for k in _KNOBS:
            sub.pop(k, None)
    return "v1:" + xxhash.xxh3_64_hexdigest(canonical_json(d).encode())


def inputs_hash(recipe_identity: str, weights: dict[str, float], extra: str = "") -> str:
    """A round's inputs: the recipe's identity, its plan weights, and anything else it reads."""
    return "v1:" + xxhash.xxh3_64_hexdigest(canonical_json([recipe_identity, weights, extra]).encode())


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("synthloop", "pyarrow", "pydantic", "httpx", "torch", "transformers"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


__all__ = ["RunDir", "inputs_hash", "recipe_hash"]
