"""A SQLite index of a run's records for fast filtering and full-text search, in `review/index.sqlite`.

The shards stay the truth: the index holds one summary row per record (the facets, the judge
score, where the record lives: shard and row) plus an FTS5 table over its text, and it is rebuilt
whenever the set of shards changes (name, size, mtime). The review state of each record (from
`review/decisions.jsonl`) is mirrored into a `review` table so "not reviewed yet" is a join, not a
scan. A page of 50 over 100,000 records is a few milliseconds (bench/bench_review.py).
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from synthloop.pipeline.context import reason_key
from synthloop.records import Record
from synthloop.review.decisions import ReviewState
from synthloop.storage import RunDir

INDEX_VERSION = "1"
_COLUMNS = ["id", "task", "topic", "skill", "persona", "difficulty", "round", "rejected_stage", "rejected_reason",
            "verdicts", "messages", "text", "explanation", "problem", "reasoning", "answer", "tests"]
#: Filters a page query understands (query parameters of the app's /api/records).
FACETS = ("round", "kind", "task", "topic", "skill", "persona", "stage", "reason")
REVIEWED = ("", "yes", "no", "accepted", "rejected", "flagged", "edited", "noted")

_SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE shards(sid INTEGER PRIMARY KEY, kind TEXT, path TEXT, size INTEGER, mtime_ns INTEGER);
CREATE TABLE records(rid INTEGER PRIMARY KEY, id TEXT, kind TEXT, round INTEGER, task TEXT, topic TEXT, skill TEXT,
  persona TEXT, difficulty TEXT, stage TEXT, reason TEXT, score REAL, sid INTEGER, row INTEGER, preview TEXT);
CREATE INDEX records_id ON records(id);
CREATE VIRTUAL TABLE fts USING fts5(body, content='', tokenize='unicode61');
CREATE TABLE review(rid INTEGER PRIMARY KEY, label TEXT, flagged INTEGER, edited INTEGER, noted INTEGER, reviewers INTEGER);
"""


def review_dir(rd: RunDir) -> Path:
    """`RUN/review/`: the decisions log, the index, and the exports of the review app."""
    return rd.path / "review"


def decisions_path(rd: RunDir) -> Path:
    return review_dir(rd) / "decisions.jsonl"


@dataclass
class Filters:
    """What a page shows: facets (exact match), a judge score range, the review state and text."""

    round: int | None = None
    kind: str = ""
    task: str = ""
    topic: str = ""
    skill: str = ""
    persona: str = ""
    stage: str = ""
    reason: str = ""
    min_score: float | None = None
    max_score: float | None = None
    reviewed: str = ""
    q: str = ""

    @classmethod
    def from_params(cls, params: dict[str, str]) -> "Filters":
        def num(key: str) -> float | None:
            v = params.get(key, "").strip()
            return float(v) if v else None

        rnd = params.get("round", "").strip()
        reviewed = params.get("reviewed", "")
        return cls(round=int(rnd) if rnd else None, reviewed=reviewed if reviewed in REVIEWED else "",
                   min_score=num("min_score"), max_score=num("max_score"), q=params.get("q", ""),
                   **{k: params.get(k, "") for k in FACETS if k != "round"})

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if self.round is not None:
            clauses.append("r.round = ?")
            args.append(self.round)
        for key in FACETS[1:]:
            value = getattr(self, key)
            if value:
                clauses.append(f"r.{key} = ?")
                args.append(value)
        if self.min_score is not None:
            clauses.append("r.score >= ?")
            args.append(self.min_score)
        if self.max_score is not None:
            clauses.append("r.score <= ?")
            args.append(self.max_score)
        clauses += _reviewed_clause(self.reviewed)
        match = fts_query(self.q)
        if match:
            clauses.append("r.rid IN (SELECT rowid FROM fts WHERE fts MATCH ?)")
            args.append(match)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


def _reviewed_clause(reviewed: str) -> list[str]:
    return {
        "yes": ["v.label IS NOT NULL"],
        "no": ["v.label IS NULL"],
        "accepted": ["v.label = 'accepted'"],
        "rejected": ["v.label = 'rejected'"],
        "flagged": ["v.flagged = 1"],
        "edited": ["v.edited = 1"],
        "noted": ["v.noted = 1"],
    }.get(reviewed, [])


def fts_query(q: str) -> str:
    """Words of a search box as an FTS5 query: every word must appear (prefix match on the last)."""
    words = re.findall(r"\w+", q, flags=re.UNICODE)
    if not words:
        return ""
    quoted = [f'"{w}"' for w in words]
    quoted[-1] += "*"
    return " AND ".join(quoted)


class RecordIndex:
    """Open (building or refreshing when the shards changed) the index of a run directory."""

    def __init__(self, rd: RunDir, path: Path | None = None) -> None:
        self.rd = rd
        self.path = path or review_dir(rd) / "index.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._tables: OrderedDict[int, pa.Table] = OrderedDict()
        self.db = sqlite3.connect(self.path, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        if not self._fresh():
            self.rebuild()

    # -- building -------------------------------------------------------------------------------
    def _signature(self) -> list[tuple[str, str, int, int]]:
        out = []
        for kind in ("accepted", "rejected"):
            for p in self.rd.shards(kind):
                st = p.stat()
                out.append((kind, p.name, st.st_size, st.st_mtime_ns))
        return out

    def _fresh(self) -> bool:
        try:
            row = self.db.execute("SELECT value FROM meta WHERE key = 'signature'").fetchone()
        except sqlite3.OperationalError:
            return False
        return row is not None and row[0] == json.dumps([INDEX_VERSION, self._signature()])

    def rebuild(self) -> None:
        """Drop and rebuild from the shards (minutes for millions of records; seconds for 100k)."""
        with self._lock:
            self._tables.clear()
            for (name,) in self.db.execute("SELECT name FROM sqlite_master WHERE type IN ('table') AND name NOT LIKE 'fts_%'").fetchall():
                self.db.execute(f"DROP TABLE IF EXISTS {name}")
            self.db.executescript(_SCHEMA)
            rid = 0
            signature = self._signature()
            for sid, (kind, name, size, mtime) in enumerate(signature):
                path = self.rd.folder(kind).joinpath(name)  # type: ignore[arg-type]
                self.db.execute("INSERT INTO shards VALUES (?,?,?,?,?)", (sid, kind, name, size, mtime))
                rows = list(_summaries(path, kind, sid, rid))
                self.db.executemany("INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", [r[:-1] for r in rows])
                self.db.executemany("INSERT INTO fts(rowid, body) VALUES (?,?)", [(r[0], r[-1]) for r in rows])
                rid += len(rows)
            self.db.execute("INSERT INTO meta VALUES ('signature', ?)", (json.dumps([INDEX_VERSION, signature]),))
            self.db.commit()

    # -- review state mirror --------------------------------------------------------------------
    def set_states(self, states: Iterable[ReviewState]) -> None:
        """Mirror these records' review states (a state with nothing left removes the row)."""
        with self._lock:
            ids: dict[str, ReviewState] = {s.record_id: s for s in states}
            rows = []
            gone = []
            for rid_, rec_id in self._rids(list(ids)):
                s = ids[rec_id]
                if s.label is None and not s.flagged and not s.edits and not s.notes:
                    gone.append((rid_,))
                else:
                    rows.append((rid_, s.label, int(s.flagged), int(bool(s.edits)), int(bool(s.notes)), len(s.labels)))
            self.db.executemany("DELETE FROM review WHERE rid = ?", gone)
            self.db.executemany("INSERT OR REPLACE INTO review VALUES (?,?,?,?,?,?)", rows)
            self.db.commit()

    def reset_states(self, states: Iterable[ReviewState]) -> None:
        with self._lock:
            self.db.execute("DELETE FROM review")
            self.set_states(states)

    def _rids(self, record_ids: list[str]) -> Iterator[tuple[int, str]]:
        for i in range(0, len(record_ids), 500):
            part = record_ids[i:i + 500]
            marks = ",".join("?" * len(part))
            yield from self.db.execute(f"SELECT rid, id FROM records WHERE id IN ({marks})", part).fetchall()

    # -- queries --------------------------------------------------------------------------------
    def page(self, f: Filters, offset: int = 0, limit: int = 50) -> tuple[int, list[dict[str, Any]]]:
        """(how many match, one page of summaries in run order)."""
        where, args = f.where()
        base = f"FROM records r LEFT JOIN review v ON v.rid = r.rid{where}"
        # The count needs the review join only when a review filter is set (it is most of the cost).
        counted = base if f.reviewed else f"FROM records r{where}"
        with self._lock:
            total = self.db.execute(f"SELECT count(*) {counted}", args).fetchone()[0]
            cur = self.db.execute(
                "SELECT r.rid, r.id, r.kind, r.round, r.task, r.topic, r.skill, r.persona, r.stage, r.reason, r.score, "
                f"r.preview, v.label, v.flagged, v.edited, v.noted {base} ORDER BY r.rid LIMIT ? OFFSET ?",
                [*args, max(1, min(limit, 500)), max(0, offset)])
            names = [c[0] for c in cur.description]
            rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        return total, rows

    def matching_ids(self, f: Filters) -> list[str]:
        where, args = f.where()
        with self._lock:
            return [r[0] for r in self.db.execute(f"SELECT r.id FROM records r LEFT JOIN review v ON v.rid = r.rid{where} ORDER BY r.rid", args)]

    def facets(self) -> dict[str, list[tuple[Any, int]]]:
        """Each facet's values with their counts (for the filter menus)."""
        out = {}
        with self._lock:
            for key in FACETS:
                rows = self.db.execute(f"SELECT {key}, count(*) FROM records GROUP BY {key} ORDER BY {key}").fetchall()
                out[key] = [(v, n) for v, n in rows if v not in (None, "")]
        return out

    def count(self) -> int:
        with self._lock:
            return int(self.db.execute("SELECT count(*) FROM records").fetchone()[0])

    def locate(self, record_id: str) -> tuple[str, Path, int] | None:
        """(kind, shard, row) of a record id."""
        with self._lock:
            row = self.db.execute(
                "SELECT r.kind, s.path, r.row FROM records r JOIN shards s ON s.sid = r.sid WHERE r.id = ? ORDER BY r.rid LIMIT 1",
                (record_id,)).fetchone()
        if row is None:
            return None
        kind, name, n = row
        return kind, self.rd.folder(kind).joinpath(name), int(n)

    def record(self, record_id: str) -> Record | None:
        """The full record from its shard (the last few shards read are kept in memory)."""
        where = self.locate(record_id)
        if where is None:
            return None
        _, path, row = where
        return Record.from_dict(self._table(path).slice(row, 1).to_pylist()[0])

    def _table(self, path: Path) -> pa.Table:
        key = hash(path)
        with self._lock:
            if key in self._tables:
                self._tables.move_to_end(key)
                return self._tables[key]
            table = pq.read_table(path)
            self._tables[key] = table
            while len(self._tables) > 8:
                self._tables.popitem(last=False)
            return table

    def close(self) -> None:
        with self._lock:
            self.db.close()


def _summaries(path: Path, kind: str, sid: int, first_rid: int) -> Iterator[tuple[Any, ...]]:
    """(rid, id, kind, round, task, topic, skill, persona, difficulty, stage, reason, score, sid, row, preview, body)."""
    rows = pq.read_table(path, columns=_COLUMNS).to_pylist()
    for n, r in enumerate(rows):
        body = record_text(r)
        yield (first_rid + n, r["id"], kind, r["round"], r["task"], r["topic"], r["skill"], r["persona"], r["difficulty"],
               r["rejected_stage"] or "", reason_key(r["rejected_reason"] or "") if r["rejected_reason"] else "",
               judge_score(r["verdicts"]), sid, n, _preview(r), body)


def judge_score(verdicts: list[dict[str, Any]] | None) -> float | None:
    for v in verdicts or []:
        if v.get("name") == "judge" and v.get("score") is not None:
            return float(v["score"])
    return None


def record_text(r: dict[str, Any]) -> str:
    """Everything searchable in a record row: the conversation and the lesson fields."""
    parts = [m.get("content") or "" for m in r.get("messages") or []]
    parts += [r.get(k) or "" for k in ("text", "explanation", "problem", "reasoning", "answer", "tests")]
    return "\n".join(p for p in parts if p)


def _preview(r: dict[str, Any], limit: int = 160) -> str:
    msgs = r.get("messages") or []
    user = next((m.get("content") or "" for m in msgs if m.get("role") == "user"), "")
    text = user or r.get("problem") or r.get("text") or (msgs[-1].get("content") if msgs else "") or ""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


__all__ = ["FACETS", "REVIEWED", "Filters", "RecordIndex", "decisions_path", "fts_query", "judge_score", "record_text", "review_dir"]
