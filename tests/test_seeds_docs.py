"""Seed documents: read (text, Markdown, HTML, PDF), chunked with offsets that point into the
text, and planned so each record names its chunk; the expand command writes an editable plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthloop.errors import InputError
from synthloop.seeds import SeedsConfig, chunk_text, load_chunks, read_document, support_score


def test_chunks_are_whole_paragraphs_with_offsets_into_the_text() -> None:
    text = "First paragraph here.\n\nSecond one, a bit longer than the first.\n\n" + "Long sentence number. " * 20
    chunks = chunk_text(text, "doc.md", max_chars=80)
    assert all(text[c.start:c.end] == c.text for c in chunks)
    assert chunks[0].text == "First paragraph here.\n\nSecond one, a bit longer than the first."
    assert all(len(c.text) <= 80 for c in chunks) and len({c.id for c in chunks}) == len(chunks)
    assert [c.id for c in chunk_text(text, "doc.md", max_chars=80)] == [c.id for c in chunks]


def test_html_and_pdf_are_read_as_text(tmp_path: Path) -> None:
    html = tmp_path / "a.html"
    html.write_text("<html><style>p{}</style><body><h1>Salvage</h1><p>No cure, <b>no pay</b>.</p><script>x()</script></body></html>")
    assert read_document(html) == "Salvage\n\nNo cure, no pay."
    pdf = tmp_path / "b.pdf"
    _tiny_pdf(pdf, "General average is shared")
    assert "General average is shared" in read_document(pdf)
    with pytest.raises(InputError, match="unsupported seed document type '.docx'"):
        read_document(tmp_path / "c.docx")


def test_missing_seed_path_is_one_line() -> None:
    with pytest.raises(InputError, match="seeds.paths: 'nowhere/\\*.md' matches no file"):
        load_chunks(SeedsConfig(paths=["nowhere/*.md"]))


def test_support_score_flags_answers_about_other_things() -> None:
    chunk = "Salvage is the reward paid to a voluntary salvor who saves a ship or cargo from peril at sea."
    assert support_score("A voluntary salvor who saves a ship from peril is paid a reward.", chunk)[0] == 1.0
    score, missing = support_score("Insurance premiums depend on the underwriter's assessment.", chunk)
    assert score < 0.3 and "insurance" in missing


def test_a_seeded_task_without_seeds_says_what_to_add() -> None:
    from synthloop.errors import RecipeError
    from synthloop.pipeline.plan import plan
    from synthloop.recipe import recipe_from_dict

    r = recipe_from_dict({"name": "t", "plan": {"topics": ["law"], "tasks": ["g"]},
                          "tasks": {"g": {"user": "{{ chunk }}", "output": {"type": "object", "properties": {"question": {"type": "string"}, "answer": {"type": "string"}}}, "seeds": True}}})
    with pytest.raises(RecipeError, match=r"add a \[seeds\] section"):
        plan(r)


def test_expand_writes_a_deduplicated_capped_plan_file_the_recipe_can_include(tmp_path: Path) -> None:
    from synthloop.backends import make_client
    from synthloop.backends.fake import FakeBackend
    from synthloop.cli.expand import expand, plan_file
    from synthloop.pipeline.plan import plan
    from synthloop.recipe import load_recipe

    recipe_path = tmp_path / "r.toml"
    recipe_path.write_text('name = "law"\ndescription = "maritime law"\n[plan]\ninclude = "law.plan.toml"\n', encoding="utf-8")
    (tmp_path / "law.plan.toml").write_text('[plan]\ntopics = ["salvage"]\n', encoding="utf-8")
    recipe = load_recipe(recipe_path)

    def answer(req: object) -> str:
        tag = req.tag  # type: ignore[attr-defined]
        return {"expand:topics": "- Salvage\n- salvage.\n- General average\n- Liens\n- Arrest",
                "expand:rare": "1. A derelict ship with no crew\n2. Salvage by a sister ship",
                "expand:personas": "- a law student\n- A law student"}[tag]

    client = make_client(recipe.teacher.model_copy(update={"backend": "fake"}), backend=FakeBackend(answer))
    out = expand(recipe, client, cap=3)
    assert out["topics"] == ["salvage", "General average", "Liens", "Arrest"]  # dups dropped, capped at 3 new
    assert out["personas"] == ["a student who knows basic Python", "a law student"]
    (tmp_path / "law.plan.toml").write_text(plan_file(out, 2.0, "r.toml"), encoding="utf-8")
    again = load_recipe(recipe_path)
    assert "A derelict ship with no crew" in again.plan.topics
    assert again.plan.weights["topic"]["A derelict ship with no crew"] == 2.0
    assert len(plan(again)) == len(again.plan.topics) * 2


def _tiny_pdf(path: Path, text: str) -> None:
    """A one-page PDF with `text`, written by hand (no PDF writer needed)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = b"%PDF-1.4\n", []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1) + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    path.write_bytes(out)
