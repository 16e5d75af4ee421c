"""Per-skill evaluation: answer extraction, Wilson intervals, the worst skill, sets, perplexity."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthloop.backends import FakeBackend, Request, make_client
from synthloop.errors import InputError
from synthloop.recipe import BackendConfig
from synthloop.student import skills
from synthloop.student.config import EvalConfig
from synthloop.student.evaluate import (EvalItem, EvalResult, decontaminate, evaluate, extract_answer,
                                        load_eval_items, score, wilson)


def item(i: int, skill: str, ref: str, scorer: str = "exact") -> EvalItem:
    return EvalItem.from_row({"id": f"{skill}-{i}", "skill": skill, "reference": ref, "scorer": scorer,
                              "messages": [{"role": "user", "content": f"q{i} {skill}"}]})


def test_wilson_interval_matches_the_formula_and_stays_inside_0_1() -> None:
    lo, hi = wilson(5, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.2366, 0.7634)
    assert wilson(0, 10)[0] == 0.0 and round(wilson(0, 10)[1], 4) == 0.2775
    assert wilson(10, 10)[1] == 1.0 and wilson(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize("reply, expected", [
    ("40 + 30 = 70 ...\nAnswer: 1,200.", "1200"), ("Answer: 4 / 3", "4/3"), ("answer: +7.50", "7.5"),
    ("Answer: 3\nwait. Answer: 5", "5"), ("The result is 12", None), ("Answer: 6/8", "6/8"),
])
def test_the_final_answer_is_extracted_and_normalised(reply: str, expected: str | None) -> None:
    assert extract_answer(reply) == expected


def test_per_skill_accuracy_intervals_and_the_worst_skill() -> None:
    items = [item(i, "add", "5") for i in range(10)] + [item(i, "frac", "1/2") for i in range(4)]
    replies = ["Answer: 5"] * 8 + ["Answer: 4"] * 2 + ["Answer: 1/2", "Answer: 2/4", "no idea", "Answer: 1/2"]
    result = score(items, replies)
    assert (result.skills["add"].correct, result.skills["frac"].correct) == (8, 2)
    assert result.skills["add"].low == pytest.approx(wilson(8, 10)[0])
    assert result.worst == "frac" and result.mean == pytest.approx((0.8 + 0.5) / 2)
    again = EvalResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.worst == "frac" and again.items[1].correct


def test_verifier_and_judge_scorers_are_callables_and_a_missing_one_is_named() -> None:
    items = [item(0, "code", "x", scorer="verifier"), item(1, "essay", "y", scorer="judge")]
    result = score(items, ["ok", "meh"], {"verifier": lambda it, r: r == "ok", "judge": lambda it, r: len(r) > 5})
    assert result.accuracy() == {"code": 1.0, "essay": 0.0}
    with pytest.raises(InputError, match="scored by 'judge' but no such scorer"):
        score(items[1:], ["x"])


def test_the_student_answers_through_the_backend_layer_with_the_system_prompt() -> None:
    def respond(req: Request) -> str:
        q = req.messages[-1][1]
        a, b = (int(x) for x in q.removeprefix("What is ").removesuffix("?").split(" + "))
        return f"Answer: {a + b if a < 50 else 0}"

    fake = FakeBackend(respond, model="student")
    client = make_client(BackendConfig(backend="fake", model="student"), backend=fake)
    items = load_eval_items(EvalConfig(sets=["arithmetic"], items_per_skill=30), seed=1)
    adds = [i for i in items if i.skill == "add"]
    result = evaluate(client, adds, model="student", system_prompt="Be brief.")
    expected = sum(int(i.question().split()[2]) < 50 for i in adds)
    assert result.skills["add"].correct == expected and len(adds) == 30
    assert all(r.messages[0] == ("system", "Be brief.") and r.temperature == 0.0 for r in fake.calls)


def test_eval_sets_are_disjoint_from_training_and_decontamination_is_checked(tmp_path: Path) -> None:
    train_q = {p.question for s in skills.SKILLS for p in skills.problems(s, "train")}
    items = load_eval_items(EvalConfig(sets=["arithmetic"], items_per_skill=None))
    assert {i.skill for i in items} == set(skills.SKILLS)
    assert min(sum(i.skill == s for i in items) for s in skills.SKILLS) >= 200
    assert not train_q & {i.question() for i in items}
    leaked = [{"messages": [{"role": "user", "content": "  " + items[0].question().upper()}]}]
    kept, dropped = decontaminate(items, leaked)
    assert dropped == [items[0].id] and len(kept) == len(items) - 1
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps({"id": "m1", "skill": "s", "prompt": "hi", "reference": "1"}) + "\n")
    golden = [{"id": "g1", "messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "ref"}]}]
    mixed = load_eval_items(EvalConfig(sets=[str(path), "golden"], scorer="judge"), golden_rows=golden)
    assert [(i.id, i.skill, i.reference, i.scorer) for i in mixed] == [("g1", "golden", "ref", "judge"), ("m1", "s", "1", "judge")]
    with pytest.raises(InputError, match="no golden held-out rows"):
        load_eval_items(EvalConfig(sets=["golden"]))


def test_answer_only_problems_are_scored_like_reasoned_ones() -> None:
    from synthloop.student.skills import sample

    p = sample("add", 1, "train", 0)[0]
    short, full = p.messages(reasoning=False), p.messages()
    assert short[0] == full[0] and short[1]["content"] == f"Answer: {p.answer}"
    assert full[1]["content"].endswith(short[1]["content"]) and len(full[1]["content"]) > len(short[1]["content"])


def test_tiny_tokenizer_can_keep_every_digit_its_own_token() -> None:
    from synthloop.student.tiny import tiny_tokenizer

    split = tiny_tokenizer(split_digits=True)
    assert [t for t in split.tokenize("x 1234") if t.strip("Ġ")] == ["x", "1", "2", "3", "4"]
