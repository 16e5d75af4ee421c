"""Lazy package exports (PEP 562): `from synthloop.collapse import CollapseMonitor` still works, but
importing a package (or only its light `config` module, as the recipe does) loads none of its heavy
submodules (numpy, pyarrow, rensa, models) until a name from them is used.

An export may share its name with a submodule (`synthloop.collapse.measure`, the function, lives
in `synthloop.collapse.measure`, the module). Importing a submodule binds it on its package, which
would hide the export; the package's module class keeps the export instead."""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable
from typing import Any


class _LazyPackage(types.ModuleType):
    _lazy_exports: dict[str, str]

    def __getattr__(self, name: str) -> Any:
        module = self.__dict__.get("_lazy_exports", {}).get(name)
        if module is None:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{self.__name__}.{module}"), name)
        types.ModuleType.__setattr__(self, name, value)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and name in self.__dict__.get("_lazy_exports", {}):
            return  # the import system binding a submodule: the export of that name wins
        types.ModuleType.__setattr__(self, name, value)

    def __dir__(self) -> list[str]:
        return sorted({*self.__dict__, *self.__dict__.get("_lazy_exports", {})})


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Make `package` lazy: `exports` maps each public name to the submodule that defines it.
    Returns `__getattr__` and `__dir__` for the package's namespace."""
    mod = sys.modules[package]
    mod.__class__ = _LazyPackage
    types.ModuleType.__setattr__(mod, "_lazy_exports", dict(exports))
    lazy = mod.__class__.__getattr__
    return (lambda name: lazy(mod, name)), (lambda: _LazyPackage.__dir__(mod))  # type: ignore[arg-type]


__all__ = ["lazy_exports"]
