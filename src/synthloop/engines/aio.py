"""One event loop for a whole run, on a background thread.

Backends hold loop-bound resources (an aiohttp connection pool, semaphores); creating a new loop
per chunk would throw them away. Sync code (stages, on any thread) hands coroutines to this loop
and waits. A streaming engine runs several chunks' stages on worker threads at once: when one
fails, `cancel_all` cancels every coroutine still running so the others return at once."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="synthloop-io", daemon=True)
        self._thread.start()
        self._running: set[concurrent.futures.Future[Any]] = set()
        self._lock = threading.Lock()

    def run(self, coro: Coroutine[Any, Any, T], stop: threading.Event | None = None) -> T:
        """Run `coro` on the loop and wait for it. With `stop` set (now, or by an abort while it
        runs), it is cancelled: the caller gets `CancelledError` instead of waiting it out."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        with self._lock:
            self._running.add(future)
        if stop is not None and stop.is_set():  # checked after registering: `cancel_all` cannot miss it
            future.cancel()
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise
        finally:
            with self._lock:
                self._running.discard(future)

    def cancel_all(self) -> None:
        """Cancel every coroutine that `run` is waiting on (an engine aborting a round)."""
        with self._lock:
            running = list(self._running)
        for future in running:
            future.cancel()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()

    def __enter__(self) -> "LoopThread":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
