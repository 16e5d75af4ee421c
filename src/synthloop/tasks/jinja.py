"""Jinja2 prompt templates for recipe-defined tasks: sandboxed, strict, checked at recipe load.

A template is compiled in a `SandboxedEnvironment` (a recipe is data: its templates may not reach
Python internals) with `StrictUndefined` (a misspelt variable is an error, never an empty string).
Both kinds of mistake are found before any request: a syntax error by compiling, an unknown name by
listing the template's free variables against the names the task provides. Either is one line:

    examples/maritime.toml: tasks.maritime_qa.user line 2: unknown variable 'chunck' (use one of: chunk, topic, ...)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import jinja2
import jinja2.meta
from jinja2.sandbox import SandboxedEnvironment

from synthloop.errors import RecipeError

_ENV = SandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)
_SECTION = re.compile(r"^\[(system|user|assistant)\]\s*$", re.M)


@dataclass(frozen=True)
class JinjaText:
    """One compiled template and where it came from (for error lines)."""

    where: str  # "path/to/file.j2" or "recipe.toml: tasks.x.user"
    source: str
    first_line: int = 1  # line of the source's first line in its file

    def render(self, values: dict[str, Any]) -> str:
        try:
            return _ENV.from_string(self.source).render(**values).strip()
        except jinja2.TemplateError as e:  # StrictUndefined, a filter on the wrong type, ...
            raise RecipeError(f"{self.where}: {type(e).__name__}: {e} (fix the template)") from None


def compile_text(where: str, source: str, known: set[str], first_line: int = 1) -> JinjaText:
    """Compile and check one template; a problem is one `RecipeError` line naming where and the fix."""
    try:
        ast = _ENV.parse(source)
    except jinja2.TemplateSyntaxError as e:
        line = first_line + (e.lineno or 1) - 1
        raise RecipeError(f"{_at(where, line)}: Jinja2 syntax error: {e.message} (fix the template syntax at that line)") from None
    unknown = sorted(jinja2.meta.find_undeclared_variables(ast) - known)
    if unknown:
        name = unknown[0]
        line = first_line + _line_of(source, name) - 1
        raise RecipeError(f"{_at(where, line)}: unknown variable {name!r} (use one of: {', '.join(sorted(known))})")
    return JinjaText(where, source, first_line)


def compile_sections(where: str, source: str, known: set[str]) -> list[tuple[str, JinjaText]]:
    """A template file with `[system]` / `[user]` / `[assistant]` lines (the built-in templates'
    format): (role, compiled body) per section. Assistant sections are the few-shot answers."""
    matches = list(_SECTION.finditer(source))
    if not matches:
        raise RecipeError(f"{where}:1: no [system]/[user]/[assistant] section line (start the file with '[user]')")
    out: list[tuple[str, JinjaText]] = []
    for m, nxt in zip(matches, [*matches[1:], None]):
        body = source[m.end() + 1 : nxt.start() if nxt else len(source)]
        first = source.count("\n", 0, m.end()) + 2
        out.append((m.group(1), compile_text(where, body, known, first_line=first)))
    if out[-1][0] != "user":
        raise RecipeError(f"{where}: the last section is [{out[-1][0]}]; end the file with the [user] turn the teacher answers")
    return out


def _at(where: str, line: int) -> str:
    return f"{where}:{line}" if ":" not in where.split("/")[-1] else f"{where} line {line}"


def _line_of(source: str, name: str) -> int:
    m = re.search(rf"\b{re.escape(name)}\b", source)
    return source.count("\n", 0, m.start()) + 1 if m else 1


__all__ = ["JinjaText", "compile_sections", "compile_text"]
