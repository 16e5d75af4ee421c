"""`synthloop backends` and `synthloop backends test`, through the real CLI entry point."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from synthloop.cli import main
from synthloop.testing import OpenAIStub


def test_list_shows_every_backend_and_availability(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backends"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["local", "openai_compat", "fake"]
    assert all(line.split()[1] in ("available", "missing") for line in lines)


def test_test_against_the_stub(capsys: pytest.CaptureFixture[str]) -> None:
    with OpenAIStub() as stub:
        code = main(["backends", "test", "--backend", "openai_compat", "--base-url", stub.base_url, "--model", "stub-model"])
        assert stub.count == 1
    out = capsys.readouterr().out
    assert code == 0
    assert "model     stub-model" in out and "reply     stub reply to: Say hello in one short sentence." in out
    assert "tokens    6 prompt + 9 completion" in out


def test_test_failure_is_one_line(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYNTHLOOP_RAISE_ERRORS", raising=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    import synthloop.backends.client as client_module

    async def no_sleep(seconds: float) -> None:
        return None

    monkeypatch.setattr(client_module, "_sleep", no_sleep)
    code = main(["backends", "test", "--backend", "openai_compat", "--base-url", f"http://127.0.0.1:{port}/v1", "--model", "m"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in err
    assert err.startswith("synthloop: error: cannot reach http://127.0.0.1:") and "is the server running" in err


def test_test_with_recipe_and_bad_override(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text('name = "t"\n[plan]\ntopics = ["loops"]\n[teacher]\nbackend = "fake"\nmodel = "canned"\n')
    assert main(["backends", "test", str(recipe)]) == 0
    assert "model     canned" in capsys.readouterr().out
    assert main(["backends", "test", str(recipe), "--backend", "openai_compat"]) == 2
    assert "needs base_url" in capsys.readouterr().err
