"""The run's manifest: one typed, versioned document (pydantic) that says what a run directory
holds and how far the run got. Written only through `RunDir.write_manifest` (atomically).

    Manifest
      rounds: [RoundState]     one per round started: its plan size, weights, committed chunks,
                               counts, mix and collapse summaries, and whether it is finished
      status                   running | finished | stopped
      stopped_reason           budget / interrupted / collapse (<indicator> = <value>, fail band ...)
      published_round          the last good round: its mix and the rounds up to it are exported

Version 1 (one round, hand-written keys) is read and upgraded in place.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MANIFEST_VERSION = 2

RunStatus = Literal["running", "finished", "stopped"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ChunkCounts(_Model):
    accepted: int = 0
    rejected: int = 0


class RequestTotals(_Model):
    sent: int = 0
    reused: int = 0


class Spent(_Model):
    cost_usd: float = 0.0
    tokens: int = 0


class CollapseSummary(_Model):
    status: str
    reasons: list[str] = Field(default_factory=list)


class RoundState(_Model):
    round: int
    #: What this round's records depend on (the recipe's identity and the round's plan weights):
    #: a resumed run keeps a finished round only while this is unchanged.
    inputs_hash: str
    planned: int
    #: Plan weights per cell key (`topic|skill|persona|difficulty`); empty means uniform.
    weights: dict[str, float] = Field(default_factory=dict)
    chunks: int = 0
    completed_chunks: list[int] = Field(default_factory=list)
    chunk_counts: dict[str, ChunkCounts] = Field(default_factory=dict)
    finished: bool = False
    mix: dict[str, Any] | None = None
    collapse: CollapseSummary | None = None
    #: Anything a round-level step records (the student's evaluation, say), by step name.
    extra: dict[str, Any] = Field(default_factory=dict)

    @property
    def accepted(self) -> int:
        return sum(c.accepted for c in self.chunk_counts.values())

    @property
    def rejected(self) -> int:
        return sum(c.rejected for c in self.chunk_counts.values())

    @property
    def collapse_failed(self) -> bool:
        return self.collapse is not None and self.collapse.status == "fail"


class Manifest(_Model):
    manifest_version: int = MANIFEST_VERSION
    name: str
    recipe_hash: str
    seed: int
    created: str
    versions: dict[str, str] = Field(default_factory=dict)
    rounds_planned: int = 1
    rounds: list[RoundState] = Field(default_factory=list)
    status: RunStatus = "running"
    stopped_reason: str = ""
    published_round: int | None = None
    stages_completed: list[str] = Field(default_factory=list)
    requests: RequestTotals = Field(default_factory=RequestTotals)
    last_session: RequestTotals = Field(default_factory=RequestTotals)
    spent: Spent = Field(default_factory=Spent)

    # -- derived, for readers (card, report, inspect, CLI) -----------------------------------
    @property
    def finished(self) -> bool:
        return self.status == "finished"

    @property
    def planned(self) -> int:
        return sum(r.planned for r in self.rounds)

    @property
    def accepted(self) -> int:
        return sum(r.accepted for r in self.rounds)

    @property
    def rejected(self) -> int:
        return sum(r.rejected for r in self.rounds)

    def round_state(self, round: int) -> RoundState | None:
        return next((r for r in self.rounds if r.round == round), None)

    def set_round(self, state: RoundState) -> None:
        """Put `state` in place of its round; later rounds (which depended on it) are dropped."""
        self.rounds = [r for r in self.rounds if r.round < state.round] + [state]

    def to_json(self) -> dict[str, Any]:
        """What is written: the fields plus the derived totals, for people and other tools."""
        data = self.model_dump(mode="json")
        data.update(finished=self.finished, planned=self.planned, accepted=self.accepted, rejected=self.rejected)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Manifest":
        if int(data.get("manifest_version", 1)) < MANIFEST_VERSION:
            data = _upgrade_v1(data)
        known = set(cls.model_fields)
        return cls.model_validate({k: v for k, v in data.items() if k in known})


def _upgrade_v1(d: dict[str, Any]) -> dict[str, Any]:
    """Version 1 was one round with its chunk journal at the top level."""
    counts = {k: {"accepted": a, "rejected": r} for k, (a, r) in (d.get("chunk_counts") or {}).items()}
    done = bool(d.get("finished"))
    round0 = {"round": 0, "inputs_hash": "v1", "planned": int(d.get("planned", 0)),
              "completed_chunks": d.get("completed_chunks", []), "chunk_counts": counts, "finished": done,
              "mix": d.get("mix"), "collapse": d.get("collapse")}
    status = "finished" if done else ("stopped" if d.get("stopped_reason") else "running")
    return {**{k: d[k] for k in ("name", "recipe_hash", "seed", "created", "versions") if k in d},
            "rounds": [round0], "status": status, "stopped_reason": d.get("stopped_reason", ""),
            "published_round": 0 if done else None, "requests": d.get("requests") or {},
            "spent": d.get("spent") or {}, "stages_completed": d.get("stages_completed", [])}


__all__ = ["MANIFEST_VERSION", "ChunkCounts", "CollapseSummary", "Manifest", "RequestTotals", "RoundState", "Spent"]
