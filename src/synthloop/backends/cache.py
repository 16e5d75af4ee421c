"""The request cache: every answered request, keyed by `Request.cache_key()`. Never pay twice.

SQLite in WAL mode, one row per answer, each `put` committed on its own: a `kill -9` right after
an answer arrived loses nothing (WAL with `synchronous=NORMAL` survives a process crash; only an
OS crash or power loss can drop the last commits, which costs a re-ask, never a wrong answer).
"""

from __future__ import annotations

import sqlite3
import threading
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
)
"""


class RequestCache:
    """Answers by request hash. Safe to share between an asyncio loop and worker threads (a lock
    serialises the one connection; every call is a single short statement)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        except sqlite3.Error as e:
            raise StorageError(f"cannot open the request cache {self.path}: {e} (check the path is writable, or delete a corrupt file to start a fresh cache)") from None
        self._lock = threading.Lock()

    def get(self, key: str) -> Response | None:
        with self._lock:
            row = self._db.execute(
                "SELECT text, prompt_tokens, completion_tokens, finish_reason FROM responses WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        return Response(text=row[0], prompt_tokens=row[1], completion_tokens=row[2], finish_reason=row[3], cached=True)

    def put(self, key: str, response: Response) -> None:
        """Store (or replace) one answer; committed before returning (autocommit mode)."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)",
                (key, response.text, response.prompt_tokens, response.completion_tokens, response.finish_reason),
            )

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


__all__ = ["RequestCache"]
