"""LocalBackend: fast checks of model resolution, and one slow test with the real embedded model."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import synthloop.backends.local as local
from synthloop.backends import Request, Response
from synthloop.errors import BackendError


def test_embedded_gguf_is_found_without_importing_the_package() -> None:
    path = local.resolve_model(local.EMBEDDED)
    assert path.suffix == ".gguf" and path.is_file()


def test_unknown_model_says_what_is_accepted(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="neither 'smollm2-135m', a .gguf file nor an HF model directory"):
        local.LocalBackend(str(tmp_path / "nothing-here"))


def test_converted_dir_lives_under_the_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHLOOP_CACHE_DIR", str(tmp_path))
    gguf = local.embedded_gguf()
    target = local.converted_dir(gguf)
    assert target.parent == tmp_path / "models" and target.name.startswith(gguf.stem + "-")
    assert local.converted_dir(gguf) == target  # stable for an unchanged file


@pytest.mark.slow
def test_real_embedded_model_batch_and_converted_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHLOOP_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(local, "_LOADED", {})
    backend = local.LocalBackend(batch_size=2)
    requests = [
        Request.chat([{"role": "user", "content": q}], model=local.EMBEDDED, temperature=0.0, max_tokens=16)
        for q in ("What is 2+2?", "Name one colour.")
    ]
    first = asyncio.run(backend.generate(requests))
    assert backend.loaded().source == local.embedded_gguf()  # converted from the GGUF this time
    for answer in first:
        assert isinstance(answer, Response) and answer.text.strip()
        assert answer.prompt_tokens > 5 and 0 < answer.completion_tokens <= 16

    monkeypatch.setattr(local, "_LOADED", {})  # as if a new process started
    second = asyncio.run(backend.generate(requests))
    assert backend.loaded().source == local.converted_dir(local.embedded_gguf())  # read the cache
    assert [a.text for a in second if isinstance(a, Response)] == [a.text for a in first if isinstance(a, Response)]


@pytest.mark.slow
def test_a_requests_answer_does_not_depend_on_its_batch() -> None:
    """Per-row seeded sampling: what a resumed run regenerates matches the uninterrupted run."""
    backend = local.LocalBackend()

    def req(q: str, seed: int) -> Request:
        return Request.chat([{"role": "user", "content": q}], model="smollm2-135m", temperature=0.3, top_p=0.9, max_tokens=40, seed=seed)

    target = req("Explain Python's zip in two sentences.", 11)
    others = [req("What is a dict?", 1), req("Write a haiku about lists, with many long words.", 2)]
    alone = asyncio.run(backend.generate([target]))[0]
    in_batch = asyncio.run(backend.generate([*others, target]))[-1]
    assert isinstance(alone, Response) and isinstance(in_batch, Response)
    assert alone.text == in_batch.text and alone.text
    reseeded = asyncio.run(backend.generate([req("Explain Python's zip in two sentences.", 12)]))[0]
    assert isinstance(reseeded, Response) and reseeded.text != alone.text


def test_torch_threads_come_from_the_environment_or_every_core(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from synthloop.backends.local import torch_threads
    from synthloop.errors import InputError

    monkeypatch.delenv("SYNTHLOOP_TORCH_THREADS", raising=False)
    assert torch_threads() == (os.cpu_count() or 1)
    monkeypatch.setenv("SYNTHLOOP_TORCH_THREADS", "1")
    assert torch_threads() == 1
    monkeypatch.setenv("SYNTHLOOP_TORCH_THREADS", "two")
    with pytest.raises(InputError, match="SYNTHLOOP_TORCH_THREADS='two'"):
        torch_threads()
