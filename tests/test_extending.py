"""The worked examples of docs/extending.md, run: a verifier, a filter and a steer, each one file's
worth of code plus one registration, wired into a real run on the fake backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from synthloop.pipeline import Filter, KeepResult
from synthloop.pipeline.filters import register_filter, unregister_filter
from synthloop.pipeline.plan import weights_by_axis
from synthloop.recipe import Recipe, recipe_from_dict
from synthloop.records import Record, Verdict
from synthloop.rounds import STEERS, RoundSummary, register_steer, run
from synthloop.verifiers.registry import register_verifier, unregister_verifier


# -- the docs' examples (kept identical to docs/extending.md) ----------------------------------
class MentionsTopic:
    """Passes a lesson whose explanation names its topic."""

    name = "mentions_topic"

    def verify(self, record: Record) -> Verdict:
        ok = record.topic.lower() in record.explanation.lower()
        return Verdict(stage="verify", name=self.name, ok=ok, reason="" if ok else "off_topic: the topic is never named")


class NoTodo(Filter):
    """Rejects a record whose text still says TODO."""

    name = "no_todo"

    def keep(self, record: Record) -> KeepResult:
        return (False, "todo_left: the text says TODO") if "TODO" in record.main_text() else True


def favour_weak_skills(recipe: Recipe, summary: RoundSummary) -> dict[str, float]:
    """Twice the weight for skills that had fewer accepted records than the best one."""
    best = max(summary.accepted_by_skill.values(), default=0)
    weights = {s: 2.0 if summary.accepted_by_skill.get(s, 0) < best else 1.0 for s in recipe.plan.skills}
    return weights_by_axis(recipe, "skill", weights)
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def registered() -> Iterator[None]:
    register_verifier("mentions_topic", lambda recipe: MentionsTopic(), applies=lambda r: bool(r.explanation))
    register_filter("no_todo", lambda recipe: NoTodo())
    register_steer("favour_weak_skills", favour_weak_skills)
    yield
    unregister_verifier("mentions_topic")
    unregister_filter("no_todo")
    STEERS.pop("favour_weak_skills", None)


def recipe(tmp_path: Path, **extra: object) -> Recipe:
    return recipe_from_dict({"name": "ext", "plan": {"topics": ["pathlib", "re"], "skills": ["a", "b"]},
                             "teacher": {"backend": "fake"}, "verify": {"code": False},
                             "curate": {"near_dedup": False}, "output": {"runs_dir": str(tmp_path)}, **extra})


def test_a_registered_verifier_checks_records(registered: None, tmp_path: Path) -> None:
    result = run(recipe(tmp_path))
    assert result.accepted == 4
    assert result.stats["0"]["verify:mentions_topic"]["seen"] == 4


def test_a_registered_filter_rejects_with_its_reason(registered: None, tmp_path: Path) -> None:
    from synthloop.backends.fake import FakeBackend, canned_responders

    responders = canned_responders()
    explain = responders["textbook:textbook_explanation"]
    responders["textbook:textbook_explanation"] = lambda req: explain(req) + ("\n\nTODO: finish" if req.seed % 2 else "")
    result = run(recipe(tmp_path), backend=FakeBackend(responders=responders))
    stats = result.stats["0"]["no_todo"]
    assert stats["rejected"] == result.rejected > 0 and stats["reasons"] == {"todo_left": result.rejected}
    assert result.accepted + result.rejected == 4


def test_a_registered_steer_is_chosen_by_name(registered: None, tmp_path: Path) -> None:
    result = run(recipe(tmp_path, rounds={"count": 2, "steer": "favour_weak_skills"}))
    assert result.finished and result.rounds == 2


class Shout:
    """A backend is one method: answer a batch (here: the last message, in capitals)."""

    name = "shout"
    model = "shout-1"
    batch_size = 4

    async def generate(self, requests: list[object]) -> list[object]:
        from synthloop.backends import Response

        return [Response(text=r.messages[-1][1].upper(), prompt_tokens=1, completion_tokens=1) for r in requests]  # type: ignore[attr-defined]

    async def aclose(self) -> None:
        """Nothing to release."""


def test_a_registered_backend_is_chosen_by_name() -> None:
    from synthloop.backends import BackendSpec, Request, make_client, register_backend
    from synthloop.backends.registry import _BACKENDS
    from synthloop.errors import RecipeError
    from synthloop.recipe import BackendConfig

    register_backend(BackendSpec("shout", lambda cfg: Shout(), "capitals, for the docs", free=True))  # type: ignore[arg-type,return-value]
    try:
        client = make_client(BackendConfig(backend="shout", model="shout-1"))
        [answer] = client.complete_sync([Request.chat([{"role": "user", "content": "hello"}], model="shout-1")])
        assert answer.text == "HELLO"  # type: ignore[union-attr]
    finally:
        _BACKENDS.pop("shout")
    with pytest.raises(RecipeError, match="'teacher.backend': unknown backend 'shout': use one of local, openai_compat, fake"):
        recipe_from_dict({"name": "x", "plan": {"topics": ["t"]}, "teacher": {"backend": "shout"}})


def test_split_stages_puts_dedup_and_everything_after_it_in_the_ordered_tail() -> None:
    from synthloop.pipeline import split_stages
    from synthloop.pipeline.build import curation_stages
    from synthloop.recipe import CurateConfig, Recipe

    recipe = Recipe.model_validate({"name": "t", "plan": {"tasks": ["textbook"], "topics": ["x"]},
                                    "curate": CurateConfig(semantic_dedup=False).model_dump()})
    head, tail = split_stages(curation_stages(recipe, None))
    assert [s.name for s in tail][:2] == ["dedup_exact", "dedup_near"]
    assert all(not s.ordered for s in head) and all(s.name != "dedup_exact" for s in head)
    assert head and tail
