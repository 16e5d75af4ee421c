"""The recipe: what the student must learn, which teacher writes it, how it is checked and curated.

Typed and validated before any work starts. An unknown key, a wrong type or a missing field is a
`RecipeError` whose one line names the key path and what is expected. The same model backs the
Python API (`synthloop.run(Recipe(...))`) and the CLI (`synthloop run recipe.toml`).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from synthloop.collapse.config import CollapseConfig
from synthloop.curation.config import CurateConfig
from synthloop.errors import RecipeError
from synthloop.grounding.config import GroundingConfig
from synthloop.seeds.config import SeedsConfig
from synthloop.student.config import StudentConfig

#: The plan's axes, as a cell names them (`[plan.weights.<axis>]`, `[[plan.exclude]]` keys).
AXES = ("topic", "skill", "persona", "difficulty")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class PlanConfig(Section):
    """The cells: topic x skill x persona x difficulty, each producing `per_cell` records per task."""

    topics: list[str] = Field(min_length=1)
    skills: list[str] = ["explain-and-apply"]
    personas: list[str] = ["a student who knows basic Python"]
    difficulties: list[str] = ["easy"]
    #: Registered task names (`synthloop.tasks.task_names()`): built-in "textbook", "instruction".
    tasks: list[str] = Field(["textbook"], min_length=1)
    per_cell: int = Field(1, ge=1)
    #: Upper bound on planned records; when the product of the axes is larger, a seeded sample
    #: of cells is taken, spread over topics first.
    max_records: int | None = Field(None, ge=1)
    #: A plan file (`synthloop expand` writes one) whose [plan] keys fill the keys not set here.
    include: str | None = None
    #: Sampling weight per axis value, e.g. `[plan.weights.persona] "a ship's master" = 3`
    #: (a cell weighs the product of its values' weights; an unlisted value weighs 1).
    weights: dict[str, dict[str, float]] = {}
    #: Impossible combinations: each table's keys are axes, its values one value or a list;
    #: a cell matching every key of one table is never planned.
    exclude: list[dict[str, str | list[str]]] = []

    @model_validator(mode="after")
    def _axes_known(self) -> "PlanConfig":
        for where, keys in [("weights", list(self.weights)), *[(f"exclude[{i}]", list(t)) for i, t in enumerate(self.exclude)]]:
            bad = [k for k in keys if k not in AXES]
            if bad:
                raise ValueError(f"plan.{where}: unknown axis {bad[0]!r} (use one of {', '.join(AXES)})")
        negative = [(a, v) for a, vals in self.weights.items() for v, w in vals.items() if w < 0]
        if negative:
            raise ValueError(f"plan.weights.{negative[0][0]}: weight of {negative[0][1]!r} is negative (use 0 to never plan it)")
        return self

    @model_validator(mode="after")
    def _known_tasks(self) -> "PlanConfig":
        from synthloop.tasks.base import task_names

        known = task_names()
        unknown = [t for t in self.tasks if t not in known]
        if unknown:
            raise ValueError(f"unknown task {unknown[0]!r}: use one of {', '.join(known)} (or register your own with @register_task)")
        return self


class BackendConfig(Section):
    #: A registered backend (`synthloop.backends.registry`): "local", "openai_compat", "fake", or yours.
    backend: str = "local"
    #: local: "smollm2-135m" (embedded), a .gguf file or an HF model directory.
    #: openai_compat: the server's model name.
    model: str = "smollm2-135m"
    base_url: str | None = None
    #: Name of the environment variable holding the API key. The key itself never enters a recipe.
    api_key_env: str | None = None
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    max_tokens: int = Field(384, ge=1)
    concurrency: int = Field(8, ge=1)
    batch_size: int | None = Field(None, ge=1)
    max_retries: int = Field(4, ge=0)
    #: How often unusable (unparseable) output is asked again before the record is rejected.
    max_parse_retries: int = Field(2, ge=0)
    timeout_s: float = Field(120.0, gt=0)
    #: Client-side limits (evenly spaced, no bursts); tokens are each request's worst case
    #: (prompt bound + max_tokens) until its answer says how many it really used.
    requests_per_minute: float | None = Field(None, gt=0)
    tokens_per_minute: float | None = Field(None, gt=0)
    #: USD per million tokens. Unset: unknown for openai_compat (never $0: a budget.max_cost_usd
    #: then refuses to start), free for the local and fake backends (they run on this machine).
    price_prompt_per_1m: float | None = Field(None, ge=0)
    price_completion_per_1m: float | None = Field(None, ge=0)

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, name: str) -> str:
        from synthloop.backends.registry import backend_names

        if name not in backend_names():
            raise ValueError(f"unknown backend {name!r}: use one of {', '.join(backend_names())} "
                             "(or register your own with synthloop.backends.register_backend)")
        return name

    @model_validator(mode="after")
    def _needs_url(self) -> "BackendConfig":
        if self.backend == "openai_compat" and not self.base_url:
            raise ValueError("backend 'openai_compat' needs base_url (e.g. 'http://127.0.0.1:8000/v1')")
        if (self.price_prompt_per_1m is None) != (self.price_completion_per_1m is None):
            raise ValueError("set both price_prompt_per_1m and price_completion_per_1m (USD per million tokens), or neither")
        return self

    def prices(self) -> tuple[float, float] | None:
        """(prompt, completion) USD per million tokens; None when the model's price is unknown."""
        if self.price_prompt_per_1m is not None and self.price_completion_per_1m is not None:
            return self.price_prompt_per_1m, self.price_completion_per_1m
        from synthloop.backends.registry import backend_spec

        return (0.0, 0.0) if backend_spec(self.backend).free else None


class JudgeConfig(Section):
    enabled: bool = True
    #: "auto": each record is judged with the built-in rubric of its task (textbook, instruction);
    #: otherwise a built-in rubric name or the path of a rubric file, used for every record.
    rubric: str = "auto"
    min_score: float = Field(3.0, ge=0)
    #: None: the teacher judges its own output (sampling at temperature 0).
    backend: BackendConfig | None = None
    #: The labelled set the judge is measured on before it may gate: "builtin" (the rubric's own
    #: set, shipped for textbook and instruction), the path of a JSONL file, or "none" (not measured:
    #: needs allow_uncalibrated). See docs/verifiers.md.
    calibration: str = "builtin"
    #: Below this balanced accuracy on the calibration set the judge does not gate.
    min_balanced_accuracy: float = Field(0.75, ge=0.0, le=1.0)
    #: true: a judge that fails calibration still runs, as advisory: it rejects nothing and its
    #: records count as unjudged. false: the run stops with an error instead.
    allow_uncalibrated: bool = False
    #: Judgements per record; the verdict uses their median. Above 1, samples use temperature 0.7.
    samples: int = Field(1, ge=1, le=15)
    #: More judges, each on its own backend (e.g. [{backend = "openai_compat", base_url = ..., model = ...}]):
    #: every record is judged by the judge above and each of these; the score is the median of all,
    #: and calibration reports each member's balanced accuracy and how often they agree.
    panel: list[BackendConfig] = []


class VerifyConfig(Section):
    code: bool = True
    timeout_s: float = Field(5.0, gt=0)
    memory_mb: int = Field(512, ge=32)
    #: A record's tests must fail on at least this fraction of mutants of its solution (0: off).
    min_mutation_score: float = Field(0.5, ge=0, le=1)
    #: At most this many mutants per record, all run in the record's one sandbox process.
    max_mutants: int = Field(8, ge=1, le=32)
    #: Checkers (names in `synthloop.verifiers.checkers.CHECKERS`) for records without code to run.
    checkers: list[str] = Field(default_factory=lambda: ["final_answer", "program_of_thought"])
    min_explanation_chars: int = Field(80, ge=0)


class BudgetConfig(Section):
    max_cost_usd: float | None = Field(None, ge=0)
    max_tokens: int | None = Field(None, ge=1)


class RoundsConfig(Section):
    """How many rounds, and how each round's plan is steered by the one before."""

    count: int = Field(1, ge=1)
    #: A registered steer (`synthloop.rounds.STEERS`): "uniform" gives every cell the same weight;
    #: "student" gives the student's allocator's budget per skill (needs [student]); "auto": "student"
    #: when the recipe has a [student] section, else "uniform".
    steer: str = "auto"
    #: Records planned per round; default: the size of the unsteered plan.
    records_per_round: int | None = Field(None, ge=1)


class OutputConfig(Section):
    runs_dir: str = "runs"
    shard_size: int = Field(8, ge=1)  # records per committed chunk (the unit of resume)


class EngineConfig(Section):
    """Where a run's chunks go through the stages (docs/ray.md). Not part of the recipe's identity:
    switching engines resumes the same run, with the same accepted set."""

    #: "local": this process. "ray": generate, verify, judge and the per-record filters on Ray
    #: workers; dedup and the commits on this process (the driver), in chunk order.
    name: Literal["local", "ray"] = "local"
    #: ray: the cluster to join, from one of its nodes ("auto", "10.0.0.5:6379"); unset: a local
    #: cluster is started for the run (and stopped after it).
    address: str | None = None
    #: ray: how many workers (actors); each has its own clients at the recipe's concurrency.
    workers: int = Field(2, ge=1)
    #: ray: CPUs each worker reserves (a local cluster gets workers x this many).
    cpus_per_worker: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _ray_keys(self) -> "EngineConfig":
        if self.name != "ray" and self.address is not None:
            raise ValueError("engine.address is read only by the ray engine: set engine.name = \"ray\" or remove it")
        if (self.address or "").startswith("ray://"):
            raise ValueError("engine.address: Ray Client (ray://) is not supported: the request cache would be written on the "
                             "head node, away from the run directory; run synthloop on a node of the cluster with address = \"auto\"")
        return self


class Recipe(Section):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    description: str = ""
    seed: int = 0
    plan: PlanConfig
    teacher: BackendConfig = BackendConfig()
    judge: JudgeConfig = JudgeConfig()
    verify: VerifyConfig = VerifyConfig()
    curate: CurateConfig = CurateConfig()
    budget: BudgetConfig = BudgetConfig()
    output: OutputConfig = OutputConfig()
    rounds: RoundsConfig = RoundsConfig()
    engine: EngineConfig = EngineConfig()
    #: Sections owned by their packages (grounding/, collapse/), validated like the rest.
    grounding: GroundingConfig | None = None
    collapse: CollapseConfig | None = None
    #: The classroom: a student trained on each round's mix, evaluated by skill, steering the next round.
    student: StudentConfig | None = None
    #: Recipe-defined tasks (`synthloop.tasks.spec.TaskSpec`), registered when the recipe is validated.
    tasks: dict[str, dict[str, Any]] = {}
    #: Seed documents for tasks with `seeds = true` (`synthloop.seeds.SeedsConfig`).
    seeds: SeedsConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _register_tasks(cls, data: Any, info: ValidationInfo) -> Any:
        """Before `plan` is validated: compile and register `[tasks.*]`, merge `plan.include`."""
        if not isinstance(data, dict):
            return data
        ctx = info.context or {}
        source, base = str(ctx.get("source", "recipe")), Path(ctx.get("base_dir") or ".")
        data = _include_plan(dict(data), source, base)
        if isinstance(data.get("tasks"), dict) and data["tasks"]:
            from synthloop.tasks.spec import register_specs

            register_specs(data["tasks"], source, base)
        return data

    @property
    def judge_backend(self) -> BackendConfig:
        if self.judge.backend is not None:
            return self.judge.backend
        return self.teacher.model_copy(update={"temperature": 0.0, "max_tokens": 96})

    def run_dir(self, base: Path | None = None) -> Path:
        return (base or Path(self.output.runs_dir)) / self.name

    def to_toml_dict(self) -> dict[str, Any]:
        """The resolved recipe, for the run directory. Holds no secret: only the env var's name."""
        return self.model_dump(mode="json", exclude_none=True)


def load_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """Read and validate a TOML recipe. Raises `RecipeError` with one line per the first problem."""
    p = Path(path)
    data = read_toml(p, "pass the path to a .toml recipe, e.g. examples/python-textbook.toml")
    for dotted, value in (overrides or {}).items():
        set_dotted(data, dotted, value)
    return recipe_from_dict(data, source=str(p))


def read_toml(path: Path, hint: str) -> dict[str, Any]:
    """A TOML file as a dict; a missing file or a syntax error is a one-line `RecipeError`."""
    if not path.is_file():
        raise RecipeError(f"file not found: {path} ({hint})")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(f"{path}: not valid TOML: {e} (fix the syntax at that line)") from None


def recipe_from_dict(data: dict[str, Any], source: str = "recipe") -> Recipe:
    base = Path(source).parent if Path(source).is_file() else Path(".")
    try:
        return Recipe.model_validate(data, context={"source": source, "base_dir": str(base)})
    except ValidationError as e:
        raise RecipeError(f"{source}: {describe_validation_error(e)}") from None


def _include_plan(data: dict[str, Any], source: str, base: Path) -> dict[str, Any]:
    """`plan.include = "x.plan.toml"`: that file's [plan] keys fill the keys the recipe does not set."""
    plan = data.get("plan")
    if not isinstance(plan, dict) or not plan.get("include"):
        return data
    path = base / str(plan["include"])
    included = read_toml(path, "plan.include names a plan file, e.g. one `synthloop expand` wrote").get("plan", {})
    if not isinstance(included, dict):
        raise RecipeError(f"{path}: [plan] must be a table (see docs/tasks.md)")
    data["plan"] = {**included, **plan}
    return data


def describe_validation_error(e: ValidationError) -> str:
    """The first problem as one line: `teacher.temperature: expected a number <= 2, got 5`."""
    err = e.errors()[0]
    path = ".".join(str(x) for x in err["loc"]) or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"unknown key '{path}' (remove it or check its spelling; see docs/recipe.md)"
    if kind == "missing":
        return f"missing required key '{path}' (add it; see docs/recipe.md)"
    got = err.get("input")
    got_s = repr(got) if not isinstance(got, dict) else "a table"
    msg = err["msg"].replace("Value error, ", "")
    return f"'{path}': {msg}, got {got_s}"


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = data
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = value


__all__ = [
    "BackendConfig",
    "BudgetConfig",
    "CurateConfig",
    "EngineConfig",
    "JudgeConfig",
    "OutputConfig",
    "PlanConfig",
    "Recipe",
    "RoundsConfig",
    "SeedsConfig",
    "VerifyConfig",
    "load_recipe",
    "recipe_from_dict",
]
