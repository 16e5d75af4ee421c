"""Prompt templates live in files (`templates/*.txt`), so a prompt change is a reviewed diff and every
record names the template id and hash it was written from."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import xxhash

_SECTION = re.compile(r"^\[(system|user|assistant)\]\s*$", re.M)


@dataclass(frozen=True)
class Template:
    id: str
    text: str

    @property
    def hash(self) -> str:
        return xxhash.xxh3_64_hexdigest(self.text.encode("utf-8"))

    def render(self, **values: str) -> list[dict[str, str]]:
        """Chat messages with `{name}` placeholders filled. Sections start with `[role]` lines."""
        parts = _SECTION.split(self.text)
        messages = []
        for role, body in zip(parts[1::2], parts[2::2]):
            messages.append({"role": role, "content": body.strip().format(**values)})
        return messages


def load_template(template_id: str) -> Template:
    text = resources.files("synthloop.tasks").joinpath("templates", f"{template_id}.txt").read_text(encoding="utf-8")
    return Template(template_id, text)
