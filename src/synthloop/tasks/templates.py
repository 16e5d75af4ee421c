"""Prompt templates live in files (`templates/*.txt`), so a prompt change is a reviewed diff and every
record names the template id and hash it was written from."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import xxhash

_SECTION = re.compile(r"^\[(system|user|assistant)\]\s*$", re.M)
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True)
class Template:
    id: str
    text: str

    @property
    def hash(self) -> str:
        return xxhash.xxh3_64_hexdigest(self.text.encode("utf-8"))

    def render(self, **values: str) -> list[dict[str, str]]:
        """Chat messages with `{name}` placeholders filled; other braces (code in a worked
        example) are left alone. Sections start with `[role]` lines; `[assistant]` sections are
        demonstrations, which small teachers follow far better than written format rules."""
        parts = _SECTION.split(self.text)

        def fill(m: re.Match[str]) -> str:
            return values.get(m.group(1), m.group(0))

        return [{"role": role, "content": _PLACEHOLDER.sub(fill, body.strip())} for role, body in zip(parts[1::2], parts[2::2])]


def load_template(template_id: str) -> Template:
    text = resources.files("synthloop.tasks").joinpath("templates", f"{template_id}.txt").read_text(encoding="utf-8")
    return Template(template_id, text)
