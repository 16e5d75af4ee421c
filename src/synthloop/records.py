"""The one record type that flows through every stage, and the verdicts stages attach to it.

A `Record` is created by the planner (one per planned item), filled by the teacher, checked by
verifiers and judges, and finally either accepted or rejected. Rejected records are kept, with the
stage and the reason, so that `accepted + rejected == planned` always holds.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import xxhash

#: Bump when the set of hashed fields or their canonical form changes: old hashes stay comparable
#: by prefix, never silently equal to new ones.
HASH_VERSION = "v1"
HASHED_FIELDS = ("messages", "text", "explanation", "problem", "reasoning", "answer", "tests")

SYNTHETIC = "synthetic"
GOLDEN = "golden"
EXTERNAL = "external"

SYNTHETIC_NOTICE = "AI-generated (synthetic) content, written by {model} via synthloop; not human-written."


@dataclass
class Verdict:
    """One stage's decision about one record."""

    stage: str
    name: str
    ok: bool
    score: float | None = None
    reason: str = ""


@dataclass
class Teacher:
    """What wrote the record: enough to reproduce the request."""

    backend: str = ""
    model: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    template_id: str = ""
    template_hash: str = ""


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    requests: int = 0
    cached_requests: int = 0

    def add(self, other: "Usage") -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cost_usd += other.cost_usd
        self.requests += other.requests
        self.cached_requests += other.cached_requests


@dataclass
class Record:
    id: str
    task: str = ""
    topic: str = ""
    skill: str = ""
    persona: str = ""
    difficulty: str = ""
    round: int = 0
    source: str = SYNTHETIC
    parent_ids: list[str] = field(default_factory=list)
    # content
    messages: list[dict[str, str]] = field(default_factory=list)
    text: str = ""
    explanation: str = ""
    problem: str = ""
    reasoning: str = ""
    answer: str = ""
    tests: str = ""
    # provenance and decisions
    teacher: Teacher = field(default_factory=Teacher)
    verdicts: list[Verdict] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    status: str = "planned"  # planned | accepted | rejected
    rejected_stage: str = ""
    rejected_reason: str = ""
    synthetic_notice: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    # -- content identity -------------------------------------------------------------------
    def content(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in HASHED_FIELDS}

    @property
    def content_hash(self) -> str:
        """`v1:` + xxh3-128 of the canonical JSON of the content fields."""
        return f"{HASH_VERSION}:{xxhash.xxh3_128_hexdigest(canonical_json(self.content()).encode())}"

    def main_text(self) -> str:
        """The text curation looks at: the structured fields of a lesson, else the conversation,
        else the plain text."""
        parts = [self.explanation, self.problem, self.reasoning, self.answer, self.tests]
        if any(parts):
            return "\n\n".join(p for p in [*parts, self.text] if p)
        if self.messages:
            return "\n\n".join(m.get("content", "") for m in self.messages)
        return self.text

    # -- decisions --------------------------------------------------------------------------
    def add_verdict(self, verdict: Verdict) -> None:
        self.verdicts.append(verdict)

    def reject(self, stage: str, reason: str) -> "Record":
        self.status = "rejected"
        self.rejected_stage = stage
        self.rejected_reason = reason
        return self

    # -- (de)serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["content_hash"] = self.content_hash
        d["meta"] = json.dumps(self.meta, sort_keys=True, default=str)
        d["teacher"]["params"] = json.dumps(self.teacher.params, sort_keys=True)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Record":
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        teacher = dict(kw.get("teacher") or {})
        if isinstance(teacher.get("params"), str):
            teacher["params"] = json.loads(teacher["params"] or "{}")
        kw["teacher"] = Teacher(**teacher)
        kw["usage"] = Usage(**(kw.get("usage") or {}))
        kw["verdicts"] = [Verdict(**v) for v in kw.get("verdicts") or []]
        if isinstance(kw.get("meta"), str):
            kw["meta"] = json.loads(kw["meta"] or "{}")
        kw["messages"] = [dict(m) for m in kw.get("messages") or []]
        kw["parent_ids"] = list(kw.get("parent_ids") or [])
        return cls(**kw)


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 kept: the same value always gives the same string."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


__all__ = [
    "EXTERNAL",
    "GOLDEN",
    "HASH_VERSION",
    "SYNTHETIC",
    "SYNTHETIC_NOTICE",
    "Record",
    "Teacher",
    "Usage",
    "Verdict",
    "canonical_json",
]
