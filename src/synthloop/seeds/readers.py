"""Documents as plain text: each reader returns the text that chunk offsets point into."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from synthloop.errors import InputError

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst")
HTML_SUFFIXES = (".html", ".htm")
SUFFIXES = (*TEXT_SUFFIXES, *HTML_SUFFIXES, ".pdf")


class _TextOfHTML(HTMLParser):
    """Visible text, a blank line after each block element; script and style dropped."""

    BLOCKS = {"p", "div", "section", "article", "li", "h1", "h2", "h3", "h4", "h5", "h6", "br", "tr", "blockquote", "pre"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_text(html: str) -> str:
    parser = _TextOfHTML()
    parser.feed(html)
    text = "".join(parser.parts)
    text = re.sub(r"[ \t]+", " ", text)
    return re.sub(r"\s*\n\s*\n\s*", "\n\n", text).strip()


def pdf_text(path: Path) -> str:
    """Every page's text (pypdf), pages separated by a blank line."""
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError:  # pragma: no cover - pypdf is a core dependency
        raise InputError("reading PDF seeds needs pypdf: pip install pypdf") from None
    try:
        reader = PdfReader(str(path))
        return "\n\n".join((page.extract_text() or "").strip() for page in reader.pages).strip()
    except (PdfReadError, OSError, ValueError) as e:
        raise InputError(f"{path}: cannot read this PDF: {e} (re-export it, or convert it to text)") from None


def read_document(path: Path) -> str:
    """The document's text; an unsupported type is a one-line error naming the types there are."""
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        return pdf_text(path)
    if suffix not in SUFFIXES:
        raise InputError(f"{path}: unsupported seed document type {suffix!r} (use one of {', '.join(SUFFIXES)})")
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text (save it as UTF-8)") from None
    return html_text(raw) if suffix in HTML_SUFFIXES else raw


__all__ = ["SUFFIXES", "html_text", "pdf_text", "read_document"]
