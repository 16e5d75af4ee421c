"""Well-formed teacher/judge answers for HTTP stubs, chosen from the request's content (an HTTP
request carries no template tag). Shared by the end-to-end tests."""

from __future__ import annotations

from typing import Any

from synthloop.backends.base import Request
from synthloop.tasks.textbook import fake_exercise, fake_explanation
from synthloop.verifiers.judge import fake_judgement


def answer_for(body: dict[str, Any]) -> str:
    """A reply to one `/chat/completions` body, deterministic in its content and seed."""
    messages = body["messages"]
    text = messages[-1]["content"]
    req = Request.chat(messages, model=body.get("model", "m"), seed=int(body.get("seed") or 0))
    if "Score:" in text or "rubric" in text.lower():
        return fake_judgement(req)  # passes judge calibration; 4 for the canned lessons
    if "practice problem about" in text:
        return fake_exercise(req)
    return fake_explanation(req)
