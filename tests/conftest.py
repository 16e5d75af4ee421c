"""Shared fixtures. Keep this small: a fixture belongs here only when several test files use it."""

from __future__ import annotations

import pytest

import synthloop.backends.client as client_module


@pytest.fixture
def backoff_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the client's retry / rate-limit sleeps instead of sleeping them."""
    delays: list[float] = []

    async def record(seconds: float) -> None:
        delays.append(seconds)

    monkeypatch.setattr(client_module, "_sleep", record)
    return delays
