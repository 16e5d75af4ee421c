"""The request cache: every answered request, keyed by `Request.cache_key()`. Never pay twice.

SQLite in WAL mode, one row per answer. Beside the answers sits the spend ledger: one row per
*new* answer (its tokens and its cost, NULL when the model's price is unknown), written in the same
transaction as the answer. So a `kill -9` can never leave an answer whose cost was not counted, nor
a cost without its answer, and `spent()` is the run's true total across crashes and resumes.

Durability: each `put` / `put_many` is one committed transaction before it returns. WAL with
`synchronous=NORMAL` survives a process crash; only an OS crash or power loss can drop the last
commits, which costs a re-ask, never a wrong answer. The client groups the answers that arrive in
one event-loop tick into one `put_many` (see `bench/bench_client.py` for what that saves).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from synthloop.backends.base import Response
from synthloop.errors import StorageError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    finish_reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS spend (
    key TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost_usd REAL,
    at REAL NOT NULL
);
"""
_MAX_VARS = 500  # keys per SELECT ... IN (...): well under SQLite's variable limit


@dataclass(frozen=True)
class Spent:
    """What the ledger holds: tokens of every new answer, and their cost (None: some answer was
    made by a model whose price is unknown, so the total is unknown, never a false $0)."""

    tokens: int
    cost_usd: float | None
    answers: int


@dataclass(frozen=True)
class Entry:
    """One new answer to store: its key, the answer, and what it cost (None: price unknown)."""

    key: str
    response: Response
    cost_usd: float | None = None
    ledger: bool = True  # False: store the answer only (e.g. a copy, which cost nothing)
    store: bool = True  # False: the ledger row only (a second paid answer to a request already answered)


class RequestCache:
    """Answers by request hash. Safe to share between an asyncio loop and worker threads (a lock
    serialises the one connection; every call is one short transaction)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as e:
            raise StorageError(f"cannot open the request cache {self.path}: {e} (check the path is writable, or delete a corrupt file to start a fresh cache)") from None
        self._lock = threading.Lock()

    def get(self, key: str) -> Response | None:
        return self.get_many([key]).get(key)

    def get_many(self, keys: Iterable[str]) -> dict[str, Response]:
        """The cached answers among `keys` (one query per 500 keys, not one per key)."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, Response] = {}
        with self._lock:
            for i in range(0, len(wanted), _MAX_VARS):
                part = wanted[i : i + _MAX_VARS]
                marks = ",".join("?" * len(part))
                sql = f"SELECT key, text, prompt_tokens, completion_tokens, finish_reason FROM responses WHERE key IN ({marks})"
                for key, text, p, c, finish in self._db.execute(sql, part):
                    found[key] = Response(text=text, prompt_tokens=p, completion_tokens=c, finish_reason=finish, cached=True)
        return found

    def put(self, key: str, response: Response, cost_usd: float | None = None, *, ledger: bool = False) -> None:
        """Store (or replace) one answer; committed before returning. `ledger=True` also records
        its spend (use `put_many` with `Entry` for new answers: that is what the client does)."""
        self.put_many([Entry(key, response, cost_usd, ledger)])

    def put_many(self, entries: list[Entry]) -> None:
        """Store answers and their ledger rows in one transaction, committed before returning."""
        if not entries:
            return
        answers = [(e.key, e.response.text, e.response.prompt_tokens, e.response.completion_tokens, e.response.finish_reason) for e in entries if e.store]
        now = time.time()
        costs = [(e.key, e.response.prompt_tokens, e.response.completion_tokens, e.cost_usd, now) for e in entries if e.ledger]
        with self._lock:
            try:
                self._db.execute("BEGIN")
                self._db.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)", answers)
                self._db.executemany("INSERT INTO spend VALUES (?, ?, ?, ?, ?)", costs)
                self._db.execute("COMMIT")
            except sqlite3.Error as e:
                self._db.execute("ROLLBACK")
                raise StorageError(f"cannot write the request cache {self.path}: {e} (check the disk has space)") from None

    def spent(self) -> Spent:
        """Total tokens and cost of every new answer ever stored here (all sessions, crashes included)."""
        with self._lock:
            row = self._db.execute("SELECT COUNT(*), COALESCE(SUM(prompt_tokens + completion_tokens), 0), SUM(cost_usd), COUNT(cost_usd) FROM spend").fetchone()
        answers, tokens, cost, priced = int(row[0]), int(row[1]), row[2], int(row[3])
        return Spent(tokens=tokens, cost_usd=None if priced < answers else float(cost or 0.0), answers=answers)

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM responses WHERE key = ?", (key,)).fetchone() is not None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "RequestCache":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RequestCache({str(self.path)!r})"


__all__ = ["Entry", "RequestCache", "Spent"]
