"""The SQLite request cache: round trip, persistence, and surviving kill -9 right after a put."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from synthloop.backends import RequestCache, Response


def test_round_trip_marks_cached(tmp_path: Path) -> None:
    with RequestCache(tmp_path / "c.sqlite") as cache:
        assert cache.get("k") is None and len(cache) == 0
        cache.put("k", Response(text="héllo", prompt_tokens=3, completion_tokens=2, finish_reason="length"))
        hit = cache.get("k")
        assert hit == Response(text="héllo", prompt_tokens=3, completion_tokens=2, finish_reason="length", cached=True)
        assert len(cache) == 1 and "k" in cache


def test_wal_mode(tmp_path: Path) -> None:
    RequestCache(tmp_path / "c.sqlite").close()
    mode = sqlite3.connect(tmp_path / "c.sqlite").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_put_survives_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    script = (
        "import os, signal\n"
        "from synthloop.backends import RequestCache, Response\n"
        f"c = RequestCache({str(path)!r})\n"
        "c.put('answered', Response(text='kept'))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], env=os.environ.copy(), timeout=60)
    assert proc.returncode == -signal.SIGKILL
    hit = RequestCache(path).get("answered")
    assert hit is not None and hit.text == "kept"
