"""Recipe-defined tasks: compiled and checked at recipe load (one clear line per mistake), parsed
from structured output or from text, mapped onto records and chat messages, and run end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from synthloop.backends.base import Request, Response
from synthloop.backends.client import ParseFailure
from synthloop.errors import RecipeError
from synthloop.recipe import load_recipe, recipe_from_dict
from synthloop.tasks.schema import extract_json, parse_output, parse_sections

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
QA_SCHEMA = {"type": "object", "properties": {"question": {"type": "string"}, "answer": {"type": "string", "minLength": 5}},
             "required": ["question", "answer"]}


def recipe_with(task: dict[str, Any], **top: Any) -> Any:
    return recipe_from_dict({"name": "t", "plan": {"topics": ["photosynthesis"], "tasks": ["bio_qa"]},
                             "tasks": {"bio_qa": task}, **top})


def qa_task(**kw: Any) -> dict[str, Any]:
    return {"system": "You teach biology.", "user": "Ask {{ persona }} about {{ topic }} ({{ difficulty }}).", "output": QA_SCHEMA, **kw}


def test_a_recipe_task_registers_and_renders_jinja_with_few_shot_turns() -> None:
    from synthloop.pipeline.plan import plan
    from synthloop.tasks import get_task

    r = recipe_with(qa_task(examples=[{"user": "Ask about cells.", "assistant": '{"question": "What is a cell?", "answer": "The unit of life."}'}]))
    record = plan(r)[0]
    reqs = get_task("bio_qa", r).requests(record, r.teacher, seed=3)
    roles = [role for role, _ in reqs[0].messages]
    assert roles == ["system", "user", "assistant", "user"]
    assert reqs[0].messages[-1][1].startswith("Ask a student who knows basic Python about photosynthesis (easy).")
    assert "JSON object with the keys: question, answer" in reqs[0].messages[-1][1]
    fmt = json.loads(reqs[0].response_format)
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"] == QA_SCHEMA


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        (qa_task(user="Ask about {{ topic }.\n"), "recipe: tasks.bio_qa.user line 1: Jinja2 syntax error"),
        (qa_task(user="Line one.\nAsk about {{ topik }}."), "recipe: tasks.bio_qa.user line 2: unknown variable 'topik' (use one of:"),
        (qa_task(output={"type": "object", "properties": {"answer": {"type": "strin"}}}), "recipe: tasks.bio_qa.output: invalid JSON Schema at 'properties.answer.type'"),
        (qa_task(output={"type": "object"}), "at least one entry in 'properties'"),
        (qa_task(verify=["faithful"]), "tasks.bio_qa.verify: unknown check 'faithful' (use any of faithfulness, execute,"),
        (qa_task(verify=["faithfulness"]), "'faithfulness' needs seeds = true"),
        (qa_task(samples=2), "need preference = \"verifier\""),
        (qa_task(rubric="nope"), "tasks.bio_qa.rubric: unknown rubric 'nope'"),
        (qa_task(fields={"solution": "{{ answer }}"}), "unknown record field 'solution'"),
        (qa_task(user="Use {{ chunk }}"), "unknown variable 'chunk'"),
    ],
)
def test_a_bad_task_is_one_line_naming_where_and_the_fix(task: dict[str, Any], expected: str) -> None:
    with pytest.raises(RecipeError) as e:
        recipe_with(task)
    assert expected in str(e.value) and "\n" not in str(e.value)


def test_bad_template_and_schema_files_name_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "qa.j2").write_text("[system]\nTeach.\n[user]\nAsk about\n{% if topic %}{{ topic }}\n", encoding="utf-8")
    (tmp_path / "qa.json").write_text('{\n  "type": "object",\n  "properties": {,}\n}\n', encoding="utf-8")
    recipe = tmp_path / "r.toml"
    recipe.write_text('name = "t"\n[plan]\ntopics = ["x"]\ntasks = ["qa"]\n[tasks.qa]\ntemplate = "qa.j2"\noutput = "qa.json"\n', encoding="utf-8")
    with pytest.raises(RecipeError, match=r"qa\.json:3: not valid JSON"):
        load_recipe(recipe)
    (tmp_path / "qa.json").write_text(json.dumps(QA_SCHEMA), encoding="utf-8")
    with pytest.raises(RecipeError) as e:
        load_recipe(recipe)
    assert f"{tmp_path / 'qa.j2'}:5: Jinja2 syntax error" in str(e.value) and "'endif'" in str(e.value)


def test_json_is_extracted_from_chatty_text_and_validated() -> None:
    assert extract_json('Sure! Here it is:\n```json\n{"question": "q?", "answer": "an answer"}\n```') == {"question": "q?", "answer": "an answer"}
    assert extract_json('Result: {"a": "x } y", "b": {"c": 1}} trailing') == {"a": "x } y", "b": {"c": 1}}
    with pytest.raises(ParseFailure, match="no_json"):
        extract_json("no object here")
    with pytest.raises(ParseFailure, match="schema_mismatch: answer: 'no' is too short"):
        parse_output(Response('{"question": "Why?", "answer": "no"}'), QA_SCHEMA, "json")
    with pytest.raises(ParseFailure, match="truncated"):
        parse_output(Response('{"question": "Why?", "answer": "becau', finish_reason="length"), QA_SCHEMA, "json")


def test_sections_format_takes_code_from_its_section() -> None:
    schema = {"type": "object", "properties": {"problem": {"type": "string"}, "program": {"type": "string", "contentMediaType": "text/x-python"},
                                               "answer": {"type": "string"}}}
    text = "**Problem:** Add 1/2 and 1/4.\nProgram:\n```python\nprint(3/4)\n```\nAnswer: 3/4\nProblem: another"
    assert parse_sections(text, schema) == {"problem": "Add 1/2 and 1/4.", "program": "print(3/4)", "answer": "3/4"}


def test_request_response_format_is_in_the_cache_key_only_when_set() -> None:
    plain = Request.chat([{"role": "user", "content": "hi"}], model="m")
    structured = Request.chat([{"role": "user", "content": "hi"}], model="m", response_format='{"type":"json_object"}')
    assert plain.cache_key() != structured.cache_key()
    assert plain.cache_key() == Request.chat([{"role": "user", "content": "hi"}], model="m", response_format="").cache_key()


def test_structured_output_against_an_openai_compatible_server(tmp_path: Path) -> None:
    """A new user's task, in a recipe file alone, run against a real HTTP server that honours
    response_format (the stub, with a responder that answers in the requested schema)."""
    from synthloop.rounds import run
    from synthloop.testing.openai_stub import OpenAIStub

    def responder(body: dict[str, Any]) -> str:
        if "response_format" not in body:  # the judge asks in text
            return "Score: 4\nReason: clear."
        schema = body["response_format"]["json_schema"]["schema"]
        assert set(schema["required"]) == {"question", "answer"}
        if "photosynthesis" in body["messages"][-1]["content"]:
            qa = {"question": "What does a leaf make from light?", "answer": "In a leaf, chloroplasts use light to turn water and carbon dioxide into sugar, releasing oxygen."}
        else:
            qa = {"question": "How do cells get energy from food?", "answer": "In a cell, mitochondria break glucose down with oxygen, storing the energy as ATP and giving off CO2."}
        return json.dumps(qa)

    with OpenAIStub(responder=responder) as stub:
        recipe = tmp_path / "bio.toml"
        recipe.write_text(f'''name = "bio"
[plan]
topics = ["photosynthesis", "respiration"]
tasks = ["bio_qa"]
[tasks.bio_qa]
system = "You are a biology teacher."
user = "Write one question {{{{ persona }}}} would ask about {{{{ topic }}}}, and answer it."
output = {{ type = "object", properties = {{ question = {{ type = "string" }}, answer = {{ type = "string" }} }}, required = ["question", "answer"] }}
[teacher]
backend = "openai_compat"
base_url = "{stub.base_url}"
model = "stub-model"
[judge]
calibration = "none"        # the stub's judge always says 4: it could not pass calibration
allow_uncalibrated = true
''', encoding="utf-8")
        result = run(load_recipe(recipe), runs_dir=tmp_path / "runs")
        sent = [b for b in stub.requests if "response_format" in b]
    assert len(sent) == 2 and sent[0]["response_format"]["type"] == "json_schema"
    assert result.accepted == 2
    rows = [json.loads(line) for line in (tmp_path / "runs/bio/export/train.jsonl").read_text().splitlines()]
    assert {"role": "user", "content": "What does a leaf make from light?"} in [row["messages"][0] for row in rows]
    assert all(row["messages"][1]["content"].startswith("In ") for row in rows)


def test_multi_turn_conversation_from_a_turns_property() -> None:
    from synthloop.pipeline.plan import plan
    from synthloop.records import Record
    from synthloop.tasks import get_task

    schema = {"type": "object", "properties": {"question": {"type": "string"}, "answer": {"type": "string"},
                                               "turns": {"type": "array", "items": {"type": "object"}}}}
    r = recipe_with(qa_task(output=schema, turns="turns"))
    record: Record = plan(r)[0]
    get_task("bio_qa", r).apply(record, [{"question": "Q1?", "answer": "A1.", "turns": [{"user": "Q2?", "assistant": "A2."}]}])
    assert [m["content"] for m in record.messages] == ["Q1?", "A1.", "Q2?", "A2."]
    assert record.answer == "A1."


@pytest.mark.parametrize("name", ["maritime-law.toml", "fractions.toml"])
def test_example_recipes_run_end_to_end_on_the_fake_backend(name: str, tmp_path: Path) -> None:
    from synthloop.rounds import run

    # The fake teacher's canned answers are one template a few words apart: near dedup (rightly)
    # merges them at its default; this test is about the wiring, so it only merges exact copies.
    recipe = load_recipe(EXAMPLES / name, overrides={"teacher.backend": "fake", "curate.near.threshold": 0.99})
    result = run(recipe, runs_dir=tmp_path)
    rows = [json.loads(x) for x in (tmp_path / recipe.name / "export/train.jsonl").read_text().splitlines()]
    assert result.accepted >= 5 and len(rows) == result.accepted
    if name == "maritime-law.toml":
        for row in rows:  # every record links to its chunk, and the chunk's offsets point into its file
            chunk = row["seed_chunk"]
            assert row["parent_ids"] == [chunk["id"]]
            text = (Path.cwd() / chunk["file"]).read_text(encoding="utf-8") if not Path(chunk["file"]).is_absolute() else Path(chunk["file"]).read_text()
            assert 0 <= chunk["start"] < chunk["end"] <= len(text)
    else:
        pairs = [json.loads(x) for x in (tmp_path / recipe.name / "export/dpo.jsonl").read_text().splitlines()]
        assert pairs and all(p["chosen"] != p["rejected"] for p in pairs)
        assert all(p["prompt"][-1]["role"] == "user" and p["chosen"][0]["role"] == "assistant" for p in pairs)
        assert all(row["reasoning"].startswith("```python") and row["reasoning"].strip("`python\n") in row["messages"][-1]["content"] for row in rows)


def test_output_prediction_answer_comes_from_the_sandbox(tmp_path: Path) -> None:
    from synthloop.rounds import run

    recipe = recipe_from_dict({"name": "op", "plan": {"topics": ["sum"], "tasks": ["output_prediction"]}, "teacher": {"backend": "fake"}})
    result = run(recipe, runs_dir=tmp_path)
    rows = [json.loads(x) for x in (tmp_path / "op/export/train.jsonl").read_text().splitlines()]
    assert result.accepted == 1
    code = rows[0]["messages"][0]["content"]
    n = int(code.split("values = [", 1)[1].split(",")[0])
    assert rows[0]["messages"][1]["content"] == f"It prints:\n\n```\n{n + 5}\n```"


def test_output_prediction_rejects_programs_that_fail_or_change(tmp_path: Path) -> None:
    from synthloop.records import Record
    from synthloop.tasks import get_task
    from synthloop.tasks.verify import TaskVerifier

    task = get_task("output_prediction")
    v = TaskVerifier()
    for code, reason in [("print(1/0)", "program_error: ZeroDivisionError"), ("x = 1", "no_output"),
                         ("import time\nprint(time.time_ns())", "nondeterministic")]:
        r = Record(id="x", task="output_prediction", topic="t")
        task.apply(r, [{"code": code}])
        verdict = v.verify(r)
        assert not verdict.ok and verdict.reason.startswith(reason), verdict.reason


def test_plan_weights_and_excludes_leave_other_recipes_unchanged() -> None:
    from synthloop.pipeline.plan import cells, plan

    base = {"topics": ["a", "b"], "personas": ["p1", "p2"], "difficulties": ["easy", "hard"]}
    ids = [r.id for r in plan(recipe_from_dict({"name": "t", "seed": 1, "plan": base}))]
    assert ids == [r.id for r in plan(recipe_from_dict({"name": "t", "seed": 1, "plan": {**base, "weights": {}, "exclude": []}}))]
    r = recipe_from_dict({"name": "t", "seed": 1, "plan": {**base, "exclude": [{"persona": "p2", "difficulty": ["hard"]}],
                                                           "weights": {"topic": {"a": 3}}}})
    assert not any(c.persona == "p2" and c.difficulty == "hard" for c in cells(r)) and len(cells(r)) == 6
    records = plan(r)
    assert len(records) == 6 and sum(x.topic == "a" for x in records) > sum(x.topic == "b" for x in records)
    with pytest.raises(RecipeError, match="unknown axis 'personas'"):
        recipe_from_dict({"name": "t", "plan": {**base, "weights": {"personas": {"p1": 2}}}})
