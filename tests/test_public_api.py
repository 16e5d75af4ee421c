"""Every name a module exports in `__all__` exists, and every CLI command has --help."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import synthloop
from synthloop.cli import COMMANDS, main

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(synthloop.__path__, "synthloop.")
    if not m.name.endswith("__main__") and ".verifiers._" not in m.name
)


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    missing = [n for n in getattr(module, "__all__", []) if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names missing attributes: {missing}"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    assert "usage: synthloop " + command in capsys.readouterr().out
