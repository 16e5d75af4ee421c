"""The `mix` stage: golden training rows + a policy-chosen share of synthetic rows.

The invariants, checked on every mix before it is returned:
- every golden *training* row is in the mix (the golden set is never dropped or sampled down);
- no held-out golden row is (`build_mix` only ever reads `golden.train`);
- golden share >= `min_golden_share` and lambda = synthetic / golden <= `max_lambda`.

Which synthetic rows are candidates depends on the policy: `accumulate` (every round up to this one),
`replace` (this round only), `fixed_budget` (every round, sampled to `fixed_budget_size`). When there
are more candidates than the ratio allows, a sample stratified by topic then skill is kept; every
row left out is listed with the config key that left it out.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import xxhash

from synthloop.errors import InputError
from synthloop.grounding.config import GroundingConfig
from synthloop.grounding.golden import GoldenSet
from synthloop.records import GOLDEN, Record

#: Reasons a synthetic row is not in the mix (each names the config key or rule responsible).
LATER_ROUND = "later_round"
REPLACED = "policy=replace"


@dataclass(frozen=True)
class SampledOut:
    id: str
    source: str
    round: int
    topic: str
    skill: str
    reason: str


@dataclass
class MixStats:
    round: int
    policy: str
    seed: int
    golden_rows: int
    heldout_rows_excluded: int
    synthetic_candidates: int
    synthetic_rows: int
    golden_share: float
    lambda_: float
    #: source -> round -> rows in the mix
    counts: dict[str, dict[int, int]] = field(default_factory=dict)
    sampled_out_by_reason: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["lambda"] = d.pop("lambda_")
        d["counts"] = {src: {str(r): n for r, n in by_round.items()} for src, by_round in self.counts.items()}
        return d


@dataclass
class MixResult:
    rows: list[Record]
    stats: MixStats
    sampled_out: list[SampledOut]


def build_mix(golden: GoldenSet, synthetic_by_round: dict[int, list[Record]], cfg: GroundingConfig,
              *, round: int, seed: int) -> MixResult:
    """The training mix for `round`: all of `golden.train` plus synthetic rows chosen by `cfg`."""
    if not golden.train:
        raise InputError(f"golden set {golden.name!r} has no training rows (all {len(golden.heldout)} are "
                         "held out): add rows or lower grounding.heldout_fraction")
    _check_synthetic(golden, synthetic_by_round)
    candidates, out = _candidates(synthetic_by_round, cfg, round)
    target, reason = _target(len(golden.train), cfg)
    kept = stratified_sample(candidates, target, cfg.stratify_by, seed)
    kept_ids = {r.id for r in kept}
    out += [_sampled_out(r, reason) for r in candidates if r.id not in kept_ids]
    rows = sorted([*golden.train, *kept], key=lambda r: _rank(seed, r.id))
    stats = _stats(golden, rows, len(candidates), out, cfg, round, seed)
    _check_invariants(golden, rows, stats, cfg)
    return MixResult(rows, stats, out)


def _check_synthetic(golden: GoldenSet, synthetic_by_round: dict[int, list[Record]]) -> None:
    """Refuse golden rows smuggled in as synthetic, and rows filed under the wrong round."""
    golden_ids = {r.id for r in golden.train} | golden.heldout_ids
    seen: dict[str, int] = {}
    for rnd, records in synthetic_by_round.items():
        for r in records:
            if r.id in seen:
                raise InputError(f"synthetic id {r.id!r} appears twice (rounds {seen[r.id]} and {rnd}): "
                                 "every record needs a unique id")
            seen[r.id] = rnd
            if r.source == GOLDEN or r.id in golden_ids:
                raise InputError(f"synthetic_by_round[{rnd}] holds golden row {r.id!r}: golden rows enter a "
                                 "mix only through the GoldenSet (held-out rows never)")
            if r.round != rnd:
                raise InputError(f"record {r.id!r} is in synthetic_by_round[{rnd}] but its round is {r.round}: "
                                 "file it under its own round (traceability depends on it)")


def _candidates(synthetic_by_round: dict[int, list[Record]], cfg: GroundingConfig,
                round: int) -> tuple[list[Record], list[SampledOut]]:
    """The synthetic rows the policy allows this round, and the ones it leaves out (with why)."""
    candidates: list[Record] = []
    out: list[SampledOut] = []
    for rnd in sorted(synthetic_by_round):
        records = synthetic_by_round[rnd]
        if rnd > round:
            out += [_sampled_out(r, LATER_ROUND) for r in records]
        elif cfg.policy == "replace" and rnd < round:
            out += [_sampled_out(r, REPLACED) for r in records]
        else:
            candidates += records
    return candidates, out


def _target(golden_rows: int, cfg: GroundingConfig) -> tuple[int, str]:
    """How many synthetic rows the mix may hold, and the config key that sets that number."""
    by_share = (1.0 - cfg.min_golden_share) / cfg.min_golden_share
    key = "max_lambda" if cfg.max_lambda <= by_share else "min_golden_share"
    cap = math.floor(cfg.lambda_cap * golden_rows + 1e-9)
    if cfg.fixed_budget_size is not None and cfg.fixed_budget_size < cap:
        return cfg.fixed_budget_size, "fixed_budget_size"
    return cap, key


def stratified_sample(records: Sequence[Record], n: int, keys: Sequence[str], seed: int) -> list[Record]:
    """`n` of `records`, deterministic by `seed`, keeping the proportions of `keys[0]`, then within
    each of its values those of `keys[1]`, ...; every value gets a row when `n` allows it."""
    if n >= len(records):
        return list(records)
    ranked = sorted(records, key=lambda r: _rank(seed, r.id))
    if not keys or n <= 0:
        return ranked[:max(n, 0)]
    groups: dict[str, list[Record]] = defaultdict(list)
    for r in ranked:
        groups[str(getattr(r, keys[0]))].append(r)
    shares = allocate({g: len(v) for g, v in groups.items()}, n, seed)
    return [r for g, k in shares.items() for r in stratified_sample(groups[g], k, keys[1:], seed)]


def allocate(sizes: dict[str, int], n: int, seed: int) -> dict[str, int]:
    """Split `n` (<= total) over groups: one each first (largest groups first when `n` is short),
    the rest in proportion to what is left (largest remainder, exact integer arithmetic)."""
    names = sorted(sizes, key=lambda g: (-sizes[g], _rank(seed, g)))
    if n < len(names):
        return {g: 1 for g in names[:n]}
    alloc = dict.fromkeys(names, 1)
    rest, spare = n - len(names), {g: sizes[g] - 1 for g in names}
    total_spare = sum(spare.values())
    if rest == 0 or total_spare == 0:
        return alloc
    remainders = {}
    for g in names:
        alloc[g] += rest * spare[g] // total_spare
        remainders[g] = rest * spare[g] % total_spare
    left = n - sum(alloc.values())
    for g in sorted(names, key=lambda g: (-remainders[g], _rank(seed, g)))[:left]:
        alloc[g] += 1
    return alloc


def _rank(seed: int, key: str) -> int:
    return xxhash.xxh3_64_intdigest(f"{seed}\x00{key}".encode())


def _sampled_out(r: Record, reason: str) -> SampledOut:
    return SampledOut(r.id, r.source, r.round, r.topic, r.skill, reason)


def _stats(golden: GoldenSet, rows: list[Record], n_candidates: int, out: list[SampledOut],
           cfg: GroundingConfig, round: int, seed: int) -> MixStats:
    counts: dict[str, Counter[int]] = defaultdict(Counter)
    for r in rows:
        counts[r.source][r.round] += 1
    n_golden = len(golden.train)
    n_synth = len(rows) - n_golden
    return MixStats(
        round=round, policy=cfg.policy, seed=seed, golden_rows=n_golden,
        heldout_rows_excluded=len(golden.heldout), synthetic_candidates=n_candidates,
        synthetic_rows=n_synth, golden_share=n_golden / len(rows), lambda_=n_synth / n_golden,
        counts={src: dict(sorted(c.items())) for src, c in sorted(counts.items())},
        sampled_out_by_reason=dict(sorted(Counter(o.reason for o in out).items())),
    )


def _check_invariants(golden: GoldenSet, rows: list[Record], stats: MixStats, cfg: GroundingConfig) -> None:
    """Raised, not `assert`ed: these must hold under `python -O` too."""
    ids = [r.id for r in rows]
    problems = []
    if len(set(ids)) != len(ids):
        problems.append("duplicate ids in the mix (give every synthetic record a unique id)")
    if golden.heldout_ids.intersection(ids):
        problems.append("held-out golden rows in the mix")
    if not {r.id for r in golden.train} <= set(ids):
        problems.append("golden training rows missing from the mix")
    if stats.golden_share + 1e-9 < cfg.min_golden_share or stats.lambda_ > cfg.max_lambda + 1e-9:
        problems.append(f"golden share {stats.golden_share:.3f} / lambda {stats.lambda_:.3f} outside the config")
    if problems:
        raise InputError(f"mix for round {stats.round} broke its invariants: {'; '.join(problems)}")


# -- writing ----------------------------------------------------------------------------------

MIX_PARQUET = "mix.parquet"
MIX_JSONL = "mix.jsonl"
MIX_STATS = "mix_stats.json"


def write_mix(result: MixResult, out_dir: str | Path) -> dict[str, Path]:
    """Write `mix.parquet` (every Record column), `mix.jsonl` (chat `messages`) and `mix_stats.json`."""
    from synthloop.storage.shards import records_to_table

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"parquet": out / MIX_PARQUET, "jsonl": out / MIX_JSONL, "stats": out / MIX_STATS}
    _atomic(paths["parquet"], lambda tmp: pq.write_table(records_to_table(result.rows), tmp, compression="zstd"))
    _atomic(paths["jsonl"], lambda tmp: tmp.write_text(
        "".join(json.dumps(chat_row(r), ensure_ascii=False) + "\n" for r in result.rows), encoding="utf-8"))
    stats = {**result.stats.to_dict(), "sampled_out": [asdict(o) for o in result.sampled_out]}
    _atomic(paths["stats"], lambda tmp: tmp.write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8"))
    return paths


def chat_row(r: Record) -> dict[str, Any]:
    """One SFT row in `messages` format, with the traceability keys beside it.

    A row without messages (a golden text, or a record with only content fields) becomes a
    user/assistant pair: the user turn is a fixed template naming the row's subject, marked by
    `"prompt_templated": true`; the assistant turn is the human (or teacher) text, unchanged.
    """
    row: dict[str, Any] = {"id": r.id, "source": r.source, "round": r.round, "topic": r.topic, "skill": r.skill}
    if r.messages:
        return {"messages": r.messages, **row, "prompt_templated": False}
    prompt = [{"role": "user", "content": templated_prompt(r)}, {"role": "assistant", "content": r.main_text()}]
    return {"messages": prompt, **row, "prompt_templated": True}


def templated_prompt(r: Record) -> str:
    subject = str(r.meta.get("title") or r.topic).strip()
    return f"Explain {subject}." if subject else "Write a short, accurate explanation."


def _atomic(path: Path, write: Callable[[Path], object]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


__all__ = ["MixResult", "MixStats", "SampledOut", "allocate", "build_mix", "chat_row", "stratified_sample",
           "templated_prompt", "write_mix"]
