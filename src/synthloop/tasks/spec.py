"""Tasks defined as data: a recipe's `[tasks.<name>]` table (or a TOML file it names) is a task.

    [tasks.maritime_qa]
    system = "You write exam questions on maritime law, grounded in the passage."
    user = "Passage:\\n{{ chunk }}\\n\\nWrite one {{ difficulty }} question {{ persona }} would ask, and its answer."
    examples = [{ user = "...", assistant = '{"question": "...", "answer": "..."}' }]
    output = { type = "object", properties = { question = { type = "string" }, answer = { type = "string" } }, required = ["question", "answer"] }
    seeds = true
    verify = ["faithfulness"]
    rubric = "instruction"

Prompts are Jinja2 (sandboxed, StrictUndefined), the output is a JSON Schema, asked for as
structured output (`response_format`) and otherwise extracted from text; `fields` and `messages`
map the output onto the record and the exported chat. Everything is compiled and checked when the
recipe is validated, and the task is registered then, so `plan.tasks` can name it. See docs/tasks.md.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from synthloop.backends.base import Request, Response
from synthloop.errors import RecipeError
from synthloop.records import Record, Teacher
from synthloop.tasks.base import TASKS, Task
from synthloop.tasks.jinja import JinjaText, compile_sections, compile_text
from synthloop.tasks.schema import check_schema, load_schema_file, parse_output, response_format

#: What a prompt template may use. `chunk`/`source` only in a task with `seeds = true`.
PROMPT_VARS = frozenset({"topic", "skill", "persona", "difficulty", "task", "seed_example"})
SEED_VARS = frozenset({"chunk", "source"})
#: Record fields a task's output may fill (`fields`); `messages` is the exported conversation.
RECORD_FIELDS = ("problem", "answer", "reasoning", "text", "explanation", "tests")
#: Checks a task may list in `verify`, besides the checker names (`verifiers.checkers.CHECKERS`).
TASK_CHECKS = ("faithfulness", "execute")
BUILTIN_NAMES = frozenset({"textbook", "instruction"})
FAKE_MEMORY = 4096
_JSON_HINT = "\n\nReply with only a JSON object with the keys: {keys}."


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FewShot(_Section):
    """A demonstration turn pair: small teachers follow an example far better than a rule."""

    user: str
    assistant: str


class MessageSpec(_Section):
    role: Literal["system", "user", "assistant"]
    content: str


class TaskSpec(_Section):
    """One recipe-defined task. See docs/tasks.md for every key."""

    #: A TOML file holding this table's keys (keys set here win); paths in it are relative to it.
    file: str | None = None
    description: str = ""
    #: A Jinja2 file with [system]/[user]/[assistant] sections; else `system`, `examples`, `user`.
    template: str | None = None
    system: str = ""
    examples: list[FewShot] = []
    user: str = ""
    #: The output as a JSON Schema object (inline table) or the path of a .json file.
    output: dict[str, Any] | str
    format: Literal["json", "sections"] = "json"
    #: Send the schema as `response_format` (servers that support structured output; fake/local ignore it).
    structured_output: bool = True
    #: Record field -> Jinja2 template over the output (and prompt variables). A field named like
    #: an output property is filled from it unless given here.
    fields: dict[str, str] = {}
    #: The exported conversation, each turn a Jinja2 template; default: question/problem -> answer.
    messages: list[MessageSpec] = []
    #: An output property holding further turns ([{user, assistant}, ...]): a multi-turn conversation.
    turns: str | None = None
    #: Samples per prompt (distinct seeds); more than one needs `preference`.
    samples: int = Field(1, ge=1, le=8)
    #: "verifier": the first sample that passes `verify` is chosen, the first that fails is rejected.
    preference: Literal["off", "verifier"] = "off"
    #: Checks, all of which must pass: checker names, "faithfulness" (seeds), "execute".
    verify: list[str] = []
    #: The output property `execute` runs in the sandbox; its stdout becomes `{{ output }}`.
    program: str = "code"
    #: Judge rubric: a built-in name (instruction, textbook, safety, grounded) or a rubric file path;
    #: "none": the task's records are not judged (their verdicts say `unjudged: ...`), for tasks
    #: whose truth comes from a check that does not depend on a model (the sandbox, a checker).
    rubric: str = "instruction"
    #: One record per seed chunk (`[seeds]`); prompts may use `{{ chunk }}` and `{{ source }}`.
    seeds: bool = False
    #: The curation refusal filter's policy for this task's records: "filter" (refusals are
    #: rejected), "expected" (the task teaches declining: refusals are kept and a reply that does not
    #: decline is rejected), "forbidden" (benign look-alikes: a refusal is rejected as over-refusal).
    refusal: Literal["filter", "expected", "forbidden"] = "filter"
    #: Output property -> Jinja2 template: the fake backend's answer (tests, --dry-run).
    fake: dict[str, Any] = {}


class CompiledSpec:
    """A `TaskSpec` with its templates compiled and its schema checked (done once, at load)."""

    def __init__(self, name: str, spec: TaskSpec, where: str, base: Path) -> None:
        self.name, self.spec, self.where = name, spec, where
        self.schema, self.schema_text = self._schema(base)
        self.props = set(self.schema["properties"])
        prompt_vars = set(PROMPT_VARS | (SEED_VARS if spec.seeds else set()))
        out_vars = prompt_vars | self.props | {"sample"} | ({"output"} if "execute" in spec.verify else set())
        self.prompt = self._prompt(base, prompt_vars)
        self.fields = self._fields(out_vars)
        self.messages = self._messages(out_vars)
        self.fake = {k: compile_text(f"{where}.fake.{k}", str(v), out_vars | {"n"}) for k, v in spec.fake.items()}
        self._check()
        self.rubric = self._rubric(base)
        self.text = "\n".join([self.schema_text, *(t.source for _, t in self.prompt), *(t.source for t in self.fields.values()),
                               *(f"{r}:{t.source}" for r, t in self.messages)])

    # -- compiling --------------------------------------------------------------------------
    def _schema(self, base: Path) -> tuple[dict[str, Any], str]:
        out = self.spec.output
        if isinstance(out, str):
            path = base / out
            if not path.is_file():
                raise RecipeError(f"{self.where}.output: schema file not found: {path} (give a .json file or an inline table)")
            out, where = load_schema_file(str(path), path.read_text(encoding="utf-8")), str(path)
        else:
            where = f"{self.where}.output"
        schema = check_schema(where, out)
        return schema, json.dumps(schema, sort_keys=True)

    def _prompt(self, base: Path, known: set[str]) -> list[tuple[str, JinjaText]]:
        s = self.spec
        if s.template:
            path = base / s.template
            if not path.is_file():
                raise RecipeError(f"{self.where}.template: file not found: {path} (fix the path; it is relative to the file naming it)")
            return compile_sections(str(path), path.read_text(encoding="utf-8"), known)
        if not s.user:
            raise RecipeError(f"{self.where}: no prompt: set 'user' (a Jinja2 template) or 'template' (a file)")
        turns: list[tuple[str, JinjaText]] = []
        if s.system:
            turns.append(("system", compile_text(f"{self.where}.system", s.system, known)))
        for i, ex in enumerate(s.examples):
            turns.append(("user", compile_text(f"{self.where}.examples[{i}].user", ex.user, known)))
            turns.append(("assistant", compile_text(f"{self.where}.examples[{i}].assistant", ex.assistant, known)))
        turns.append(("user", compile_text(f"{self.where}.user", s.user, known)))
        return turns

    def _fields(self, known: set[str]) -> dict[str, JinjaText]:
        bad = [f for f in self.spec.fields if f not in RECORD_FIELDS]
        if bad:
            raise RecipeError(f"{self.where}.fields: unknown record field {bad[0]!r} (use one of {', '.join(RECORD_FIELDS)})")
        out = {f: compile_text(f"{self.where}.fields.{f}", t, known) for f, t in self.spec.fields.items()}
        for f in RECORD_FIELDS:
            if f not in out and f in self.props:
                out[f] = compile_text(f"{self.where}.fields.{f}", "{{ " + f + " }}", known)
        return out

    def _messages(self, known: set[str]) -> list[tuple[str, JinjaText]]:
        if self.spec.messages:
            return [(m.role, compile_text(f"{self.where}.messages[{i}]", m.content, known)) for i, m in enumerate(self.spec.messages)]
        asked = next((p for p in ("question", "problem", "prompt", "instruction") if p in self.props), None)
        if asked is None or "answer" not in self.props:
            if self.spec.turns:
                return []
            raise RecipeError(f"{self.where}: cannot tell the exported conversation: add [[tasks.{self.name}.messages]] turns "
                              "(role + Jinja2 content), or output properties 'question' and 'answer'")
        reply = ("{% if reasoning %}{{ reasoning }}\n\n{% endif %}" if "reasoning" in self.props else "") + "{{ answer }}"
        return [("user", compile_text(f"{self.where}.messages", "{{ " + asked + " }}", known)),
                ("assistant", compile_text(f"{self.where}.messages", reply, known))]

    def _rubric(self, base: Path) -> str:
        """A built-in rubric's name, or the path of the task's rubric file."""
        from synthloop.verifiers.judge import BUILTIN_RUBRICS

        name = self.spec.rubric
        if name in BUILTIN_RUBRICS or name == "none":
            return name
        for path in (Path(__file__).with_name("rubrics") / f"{name}.md", base / name):
            if path.is_file():
                return str(path)
        raise RecipeError(f"{self.where}.rubric: unknown rubric {name!r} (use {', '.join([*BUILTIN_RUBRICS, 'grounded', 'output_prediction'])}, "
                          "or a rubric file path relative to the file that names it)")

    def _check(self) -> None:
        from synthloop.verifiers.checkers import CHECKERS

        s = self.spec
        unknown = [v for v in s.verify if v not in CHECKERS and v not in TASK_CHECKS]
        if unknown:
            raise RecipeError(f"{self.where}.verify: unknown check {unknown[0]!r} (use any of {', '.join([*TASK_CHECKS, *CHECKERS])})")
        if "faithfulness" in s.verify and not s.seeds:
            raise RecipeError(f"{self.where}.verify: 'faithfulness' needs seeds = true (it scores the answer against its chunk)")
        if "execute" in s.verify and s.program not in self.props:
            raise RecipeError(f"{self.where}.program: {s.program!r} is not an output property (name the property that holds the code)")
        if s.samples > 1 and s.preference == "off":
            raise RecipeError(f"{self.where}.samples: {s.samples} samples need preference = \"verifier\" (one record per prompt; use plan.per_cell for more records)")
        if s.preference != "off" and not s.verify:
            raise RecipeError(f"{self.where}.preference: the verifier decides, so list its checks in 'verify'")
        if s.turns and s.turns not in self.props:
            raise RecipeError(f"{self.where}.turns: {s.turns!r} is not an output property")
        unknown_fake = [k for k in s.fake if k not in self.props]
        if unknown_fake:
            raise RecipeError(f"{self.where}.fake: {unknown_fake[0]!r} is not an output property")

    # -- rendering --------------------------------------------------------------------------
    def prompt_values(self, record: Record) -> dict[str, Any]:
        values: dict[str, Any] = {"topic": record.topic, "skill": record.skill, "persona": record.persona,
                                  "difficulty": record.difficulty, "task": record.task,
                                  "seed_example": record.meta.get("seed_example", "")}
        if self.spec.seeds:
            chunk = record.meta.get("seed_chunk") or {}
            values |= {"chunk": chunk.get("text", ""), "source": chunk.get("file", "")}
        return values

    def render_prompt(self, values: dict[str, Any]) -> list[dict[str, str]]:
        msgs = [{"role": role, "content": t.render(values)} for role, t in self.prompt]
        if self.spec.format == "json":
            msgs[-1]["content"] += _JSON_HINT.format(keys=", ".join(self.schema["properties"]))
        return msgs

    def fill(self, values: dict[str, Any], output: dict[str, Any]) -> dict[str, Any]:
        """The record fields and conversation for one parsed output (absent optional properties are "")."""
        ctx = {"output": "", "sample": 0} | values | {p: output.get(p, "") for p in self.props} | {k: v for k, v in output.items() if k not in self.props}
        fields = {f: t.render(ctx) for f, t in self.fields.items()}
        messages = [{"role": r, "content": t.render(ctx)} for r, t in self.messages]
        for turn in (output.get(self.spec.turns) or []) if self.spec.turns else []:
            if isinstance(turn, dict):
                messages += [{"role": "user", "content": str(turn.get("user", ""))},
                             {"role": "assistant", "content": str(turn.get("assistant", ""))}]
        return {"fields": fields, "messages": [m for m in messages if m["content"]]}

    def fake_output(self, values: dict[str, Any]) -> str:
        """A well-formed answer for the fake backend: the `fake` templates, else placeholders."""
        out: dict[str, Any] = {}
        for p, prop in self.schema["properties"].items():
            if p in self.fake:
                out[p] = self.fake[p].render(values | {q: "" for q in self.props} | {"sample": values.get("sample", 0)})
            else:
                out[p] = _placeholder(p, prop if isinstance(prop, dict) else {}, values)
        if self.spec.format == "sections":
            return "\n".join(f"{k.capitalize()}:\n```python\n{v}\n```" if _is_code(self.schema, k) else f"{k.capitalize()}: {v}" for k, v in out.items())
        return json.dumps(out)


def _is_code(schema: dict[str, Any], prop: str) -> bool:
    from synthloop.tasks.schema import CODE_MEDIA

    p = schema["properties"].get(prop)
    return isinstance(p, dict) and p.get("contentMediaType") == CODE_MEDIA


def _placeholder(name: str, prop: dict[str, Any], values: dict[str, Any]) -> Any:
    kind = prop.get("type")
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    return f"A {name} about {values.get('topic', 'the topic')} for {values.get('persona', 'a learner')}."


class SpecTask(Task):
    """A task compiled from a `TaskSpec`: one request per sample, one parser, `fill` per output."""

    compiled: ClassVar[CompiledSpec]
    #: Prompt values by request tag, for the fake backend's answers (it sees only the request).
    _fake_values: ClassVar[dict[str, dict[str, Any]]]

    def __init__(self, recipe: Any = None) -> None:
        self.recipe = recipe
        self.templates = []

    @property
    def spec(self) -> TaskSpec:
        return self.compiled.spec

    def requests(self, record: Record, cfg: Any, seed: int) -> list[Request]:
        c = self.compiled
        values = c.prompt_values(record)
        fmt = response_format(self.name, c.schema) if c.spec.structured_output and c.spec.format == "json" else ""
        out = []
        for k in range(c.spec.samples):
            tag = f"{self.name}:main:{record.id}:{k}"
            self._remember(tag, values | {"sample": k, "n": seed % 997})
            out.append(Request.chat(c.render_prompt(values), model=cfg.model, temperature=cfg.temperature, top_p=cfg.top_p,
                                    max_tokens=cfg.max_tokens, seed=seed + 104_729 * k, tag=tag, response_format=fmt))
        return out

    def _remember(self, tag: str, values: dict[str, Any]) -> None:
        """For the fake backend (a test, or --dry-run with any teacher): bounded, oldest dropped."""
        self._fake_values[tag] = values
        while len(self._fake_values) > FAKE_MEMORY:
            self._fake_values.pop(next(iter(self._fake_values)))

    def parsers(self) -> list[Callable[[Response], Any]]:
        c = self.compiled
        return [lambda resp: parse_output(resp, c.schema, c.spec.format)] * c.spec.samples

    def apply(self, record: Record, values: list[Any]) -> None:
        c = self.compiled
        prompt = c.prompt_values(record)
        candidates = [c.fill(prompt | {"sample": k}, v) | {"output": v} for k, v in enumerate(values)]
        set_candidate(record, candidates[0])
        record.meta["output"] = values[0]
        if len(candidates) > 1:
            record.meta["candidates"] = candidates

    def refill(self, record: Record, output: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
        """Fields and messages again, with values a check found (the program's real `output`)."""
        return self.compiled.fill(self.compiled.prompt_values(record), output | extra) | {"output": output}

    def teacher(self, cfg: Any) -> Teacher:
        import xxhash

        return Teacher(backend=cfg.backend, model=cfg.model,
                       params={"temperature": cfg.temperature, "top_p": cfg.top_p, "max_tokens": cfg.max_tokens},
                       template_id=f"spec:{self.name}", template_hash=xxhash.xxh3_64_hexdigest(self.compiled.text.encode()))


def set_candidate(record: Record, candidate: dict[str, Any]) -> None:
    for f in RECORD_FIELDS:
        setattr(record, f, candidate["fields"].get(f, ""))
    record.messages = [dict(m) for m in candidate["messages"]]


def spec_class(compiled: CompiledSpec) -> type[SpecTask]:
    """A `SpecTask` subclass for one compiled spec, with its fake answer."""
    fake_values: dict[str, dict[str, Any]] = {}

    def fake(req: Request) -> str:
        return compiled.fake_output(fake_values.get(req.tag, {}))

    cls = type(f"SpecTask_{compiled.name}", (SpecTask,), {"name": compiled.name, "compiled": compiled, "_fake_values": fake_values,
                                                          "template_ids": ("main",), "fake_answers": {"main": fake}})
    return cls


def compile_spec(name: str, raw: dict[str, Any], where: str, base: Path) -> CompiledSpec:
    """Validate and compile one task table; any problem is one `RecipeError` line."""
    if not isinstance(raw, dict):
        raise RecipeError(f"{where}: a task is a table ([tasks.{name}]), got {type(raw).__name__}")
    raw = dict(raw)
    if raw.get("file"):
        path = base / str(raw["file"])
        if not path.is_file():
            raise RecipeError(f"{where}.file: task file not found: {path} (fix the path; it is relative to the recipe)")
        try:
            from_file = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise RecipeError(f"{path}: not valid TOML: {e} (fix the syntax at that line)") from None
        raw = {**from_file, **raw}
        where, base = f"{path}: task", path.parent
    from synthloop.recipe import describe_validation_error

    try:
        spec = TaskSpec.model_validate(raw)
    except ValidationError as e:
        raise RecipeError(f"{where}: {describe_validation_error(e)}") from None
    return CompiledSpec(name, spec, where, base)


def register_specs(tables: dict[str, Any], source: str, base: Path) -> dict[str, CompiledSpec]:
    """Compile and register every `[tasks.<name>]` table (called when a recipe is validated)."""
    out: dict[str, CompiledSpec] = {}
    for name, raw in tables.items():
        if name in BUILTIN_NAMES:
            raise RecipeError(f"{source}: tasks.{name}: {name!r} is a built-in task (give your task another name)")
        if not name.replace("_", "").replace("-", "").isalnum():
            raise RecipeError(f"{source}: tasks.{name}: a task name is letters, digits, '_' and '-' (rename it)")
        compiled = compile_spec(name, raw, f"{source}: tasks.{name}", base)
        TASKS[name] = spec_class(compiled)
        out[name] = compiled
    return out


def load_builtin_specs() -> None:
    """The built-in tasks written as specs (`tasks/builtin/*.toml`), registered on import."""
    from importlib import resources

    folder = resources.files("synthloop.tasks").joinpath("builtin")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            name = entry.name.removesuffix(".toml")
            raw = tomllib.loads(entry.read_text(encoding="utf-8"))
            TASKS[name] = spec_class(compile_spec(name, raw, f"synthloop/tasks/builtin/{entry.name}: task", Path(str(folder))))


__all__ = ["CompiledSpec", "FewShot", "MessageSpec", "SpecTask", "TaskSpec", "compile_spec", "load_builtin_specs", "register_specs", "set_candidate"]
