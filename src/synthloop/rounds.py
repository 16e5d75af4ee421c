"""A run owns its rounds. `Run(recipe).execute()` is the whole product loop:

    for r in rounds:  weights = steer(summary of round r-1)     (round 0: uniform)
                      plan(weights) -> chunks -> stages (engine) -> commit each chunk
                      mix golden + synthetic (the grounding policy, over every round so far)
                      collapse check against the golden set (history of earlier rounds)
                      round hooks (the student: train -> evaluate), then the next round's steer
    publish the last good round

Resume: a round is kept while its inputs (the recipe's identity and its plan weights) are unchanged;
inside a round, committed chunks are kept and the rest redone, every answered request served from
the cache. Stop rules: the budget (clean stop, resumable), Ctrl-C, and a failed collapse check with
`stop_on_fail` (the run ends before the next round and before export; the last good round is published).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from synthloop.backends import Backend, Budget, Client, RequestCache
from synthloop.engines import Chunk, ChunkResult, Engine, EngineSetup, make_engine
from synthloop.errors import BudgetExceeded, RecipeError
from synthloop.pipeline.build import StageResources, build_stages, model_clients
from synthloop.pipeline.context import StageStats
from synthloop.pipeline.plan import PlanWeights, SeedItem, plan, round_size, uniform_weights
from synthloop.pipeline.stage import Stage
from synthloop.recipe import Recipe
from synthloop.records import Record
from synthloop.storage import Manifest, RoundState, RunDir, atomic_write_json, inputs_hash
from synthloop.storage.manifest import ChunkCounts, CollapseSummary

log = logging.getLogger("synthloop")

#: Called after each committed chunk with (accepted so far, rejected so far, planned in all rounds).
ProgressFn = Callable[[int, int, int], None]


@dataclass
class RoundSummary:
    """What a steer sees of the round before: its plan, its outcome per cell and skill, its
    statistics and collapse verdict, and whatever round hooks recorded (`extra`, e.g. the
    student's per-skill evaluation)."""

    round: int
    weights: PlanWeights
    planned: int
    accepted_by_cell: Counter[str]
    rejected_by_cell: Counter[str]
    accepted_by_skill: Counter[str]
    stats: dict[str, dict[str, Any]]
    collapse: dict[str, Any] | None
    extra: dict[str, Any]
    #: Examples the next round's prompts may be built around (failed evaluation items, say).
    seeds: list[SeedItem] = field(default_factory=list)


@dataclass
class SteerResult:
    weights: PlanWeights
    seeds: list[SeedItem] = field(default_factory=list)


#: A steer turns the previous round's summary into the next round's plan weights (and seeds).
Steer = Callable[[Recipe, RoundSummary], "PlanWeights | SteerResult"]


def uniform_steer(recipe: Recipe, summary: RoundSummary) -> PlanWeights:
    """The control arm: every cell weighs the same, whatever happened."""
    return uniform_weights(recipe)


STEERS: dict[str, Steer] = {"uniform": uniform_steer}


def register_steer(name: str, steer: Steer) -> None:
    """Make a steer selectable by name in `[rounds] steer = "<name>"`."""
    STEERS[name] = steer


def resolve_steer(recipe: Recipe, steer: Steer | None) -> Steer:
    if steer is not None:
        return steer
    name = recipe.rounds.steer
    if name == "auto":
        name = "student" if recipe.student is not None else "uniform"
    if name == "student" and "student" not in STEERS:
        import synthloop.classroom  # noqa: F401  (registers the student's steer)
    if name not in STEERS:
        raise RecipeError(f"rounds.steer = {name!r} is not a known steer ({', '.join(sorted(STEERS))}); "
                          "use one of those or pass steer= to synthloop.run")
    return STEERS[name]


#: A round hook runs after a round's data is committed and mixed (the student trains there).
#: It may record results in `state.extra[name]`; it is not re-run once it has recorded them.
RoundHook = Callable[["Run", RoundState], None]


@dataclass
class RunResult:
    run_dir: Path
    planned: int
    accepted: int
    rejected: int
    finished: bool
    stopped_reason: str = ""
    requests_sent: int = 0
    requests_reused: int = 0
    rounds: int = 0
    published_round: int | None = None
    stats: dict[str, Any] = field(default_factory=dict)


class Run:
    """One run directory, its resources (cache, budget, clients, engine, golden set) and its rounds."""

    def __init__(self, recipe: Recipe, *, runs_dir: Path | None = None, backend: Backend | None = None,
                 progress: ProgressFn | None = None, steer: Steer | None = None,
                 hooks: Sequence[tuple[str, RoundHook]] = (), engine: Engine | None = None) -> None:
        self.recipe = recipe
        self.steer = resolve_steer(recipe, steer)
        self.progress = progress
        self.hooks = list(hooks) or default_hooks(recipe)
        self.rd = RunDir(recipe.run_dir(runs_dir))
        self.manifest = self.rd.start(recipe)
        self.rd.save_recipe(recipe)
        self.cache = RequestCache(self.rd.cache_path)
        self.budget = _budget(recipe, self.cache)
        self.teacher, self.judge = model_clients(recipe, backend, self.cache, self.budget)
        self.golden = _golden(recipe)
        self.engine = engine or make_engine(recipe.engine.name, EngineSetup(recipe, self.rd.path, self.budget, self.teacher.usage,
                                                                            _golden_texts(self.golden)))
        self.collapse_error = ""
        #: Set by a round hook that trained a student: its log-probability function, so the
        #: collapse check measures the golden held-out perplexity under the student.
        self.student_logprob: Any = None
        self._stages: list[Stage] | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> "Run":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.engine.run_async(_close_clients(self.teacher, self.judge))
        finally:
            self.engine.close()
            self.cache.close()

    # -- the loop ---------------------------------------------------------------------------
    def execute(self) -> RunResult:
        """Run (or resume) every round; publish the last good one. Never hides the original error."""
        self.manifest.rounds_planned = self.recipe.rounds.count
        try:
            stopped = self._rounds()
        except BudgetExceeded as e:
            stopped = str(e)
        except KeyboardInterrupt:
            self._finish("interrupted", publish_safely=True)
            raise
        except BaseException as e:
            self._finish(f"error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}", publish_safely=True)
            raise
        self._finish(stopped)
        return self.result()

    def _rounds(self) -> str:
        """The rounds loop; returns why it stopped early ("" when every round finished)."""
        for r in range(self.recipe.rounds.count):
            state = self.run_round(r)
            if state.collapse_failed and self.recipe.collapse is not None and self.recipe.collapse.stop_on_fail:
                return collapse_stop_reason(self.rd, r)
            self.manifest.published_round = r
            if target_reached(self.recipe, state) and r < self.recipe.rounds.count - 1:
                self.manifest.rounds = [s for s in self.manifest.rounds if s.round <= r]
                return ""  # a stop rule met is a finished run
        self.manifest.rounds = [s for s in self.manifest.rounds if s.round < self.recipe.rounds.count]
        return ""

    def run_round(self, r: int) -> RoundState:
        steered = self._steer(r)
        ihash = inputs_hash(self.manifest.recipe_hash, steered.weights, _seeds_key(steered.seeds))
        state = self.manifest.round_state(r)
        if state is None or state.inputs_hash != ihash:
            state = self._new_round(r, ihash, steered)
        if not state.finished:
            records = plan(self.recipe, r, steered.weights, steered.seeds)
            self._run_chunks(state, records)
            self._round_steps(state)
            state.finished = True
            self.save()
        return state

    def _steer(self, r: int) -> SteerResult:
        if r == 0:
            return SteerResult(uniform_weights(self.recipe))
        out = self.steer(self.recipe, self.summary(r - 1))
        return out if isinstance(out, SteerResult) else SteerResult(dict(out))

    def _new_round(self, r: int, ihash: str, steered: SteerResult) -> RoundState:
        """A round whose inputs are new (or changed): it and every later round start over."""
        self.rd.drop_rounds_from(r)
        n = len(plan(self.recipe, r, steered.weights, steered.seeds))
        chunks = -(-n // self.recipe.output.shard_size)
        weights = {} if r == 0 else steered.weights
        state = RoundState(round=r, inputs_hash=ihash, planned=n, weights=weights, chunks=chunks)
        self.manifest.set_round(state)
        self.save()
        return state

    def _run_chunks(self, state: RoundState, records: list[Record]) -> None:
        size = self.recipe.output.shard_size
        chunks = [Chunk(state.round, i // size, records[i : i + size]) for i in range(0, len(records), size)]
        pending = [c for c in chunks if c.index not in state.completed_chunks]
        if not pending:
            return
        stages = self.stages()
        earlier = self.rd.records("accepted", rounds=range(state.round + 1))
        for s in stages:
            s.seed(earlier)  # dedup re-learns what earlier rounds and committed chunks accepted
        self.engine.run_chunks(pending, stages, lambda res: self._commit(state, res))

    def stages(self) -> list[Stage]:
        """Built fresh for each round that has work, so stateful stages (dedup) start from the shards."""
        res = StageResources(self.teacher, self.judge, self.recipe.judge_backend, _golden_texts(self.golden),
                             run_async=self.engine.run_async, run_dir=self.rd.path)
        self._stages = build_stages(self.recipe, res)
        return self._stages

    def _commit(self, state: RoundState, res: ChunkResult) -> None:
        """Shards and stats first, then the manifest: a chunk is done only once its data is on disk."""
        c = res.chunk
        self.rd.write_chunk(c.round, c.index, res.accepted, res.rejected)
        atomic_write_json(self.rd.chunk_stats_path(c.round, c.index), {k: v.to_dict() for k, v in res.stats.items()})
        state.chunk_counts[str(c.index)] = ChunkCounts(accepted=len(res.accepted), rejected=len(res.rejected))
        state.completed_chunks = sorted({*state.completed_chunks, c.index})
        self.save()
        if self.progress:
            self.progress(self.manifest.accepted, self.manifest.rejected, self.total_planned())

    def _round_steps(self, state: RoundState) -> None:
        """After the chunks: stats, the mix, the round hooks (a student), then the collapse check
        (last, so it can use the student). Each step is skipped on resume once it has recorded."""
        write_round_stats(self.rd, state)
        if self.recipe.grounding is not None and state.mix is None:
            state.mix = self._mix(state.round)
            self.save()
        self.student_logprob = None
        for name, hook in self.hooks:
            if name not in state.extra:
                hook(self, state)
                self.save()
        if self.recipe.collapse is not None and state.collapse is None:
            self._check_collapse(state)

    # -- round steps ------------------------------------------------------------------------
    def _mix(self, r: int) -> dict[str, Any]:
        from synthloop.grounding import build_mix, write_mix

        assert self.recipe.grounding is not None and self.golden is not None
        by_round = {k: list(self.rd.records("accepted", rounds=[k])) for k in range(r + 1)}
        mix = build_mix(self.golden, by_round, self.recipe.grounding, round=r, seed=self.recipe.seed)
        write_mix(mix, self.rd.mix_dir(r))
        return mix.stats.to_dict()

    def _check_collapse(self, state: RoundState) -> None:
        """Measure, write (before enforcing: a failing run still leaves its report), then judge."""
        from synthloop.collapse import CollapseDetected, CollapseMonitor, write_report
        from synthloop.grounding import golden_texts
        cfg, golden = self.recipe.collapse, self.golden
        assert cfg is not None and golden is not None
        texts = [r.main_text() for r in self.rd.records("accepted", rounds=[state.round])]
        if not texts:
            state.collapse = CollapseSummary(status="skipped", reasons=["no accepted records to measure"])
            return
        monitor = CollapseMonitor.for_run(cfg, self.rd.path)
        report = monitor.check(texts, golden_texts(golden, split="train"), golden_texts(golden, split="heldout"),
                               round=state.round, model_logprob=self.student_logprob)
        write_report(report, self.rd.path / cfg.report)
        write_report(report, self.rd.collapse_report_path(state.round))
        state.collapse = CollapseSummary(status=report.status, reasons=report.reasons)
        try:
            monitor.enforce(report)
        except CollapseDetected as e:
            self.collapse_error = str(e)

    # -- summaries and results --------------------------------------------------------------
    def summary(self, r: int) -> RoundSummary:
        state = self.manifest.round_state(r)
        assert state is not None, f"round {r} has not run"
        acc = Counter(_cell_key(x) for x in self.rd.records("accepted", rounds=[r]))
        rej = Counter(_cell_key(x) for x in self.rd.records("rejected", rounds=[r]))
        by_skill: Counter[str] = Counter()
        for key, n in acc.items():
            by_skill[key.split("|")[1]] += n
        return RoundSummary(r, state.weights or uniform_weights(self.recipe), state.planned, acc, rej, by_skill,
                            read_round_stats(self.rd, r), state.collapse.model_dump() if state.collapse else None,
                            dict(state.extra))

    def total_planned(self) -> int:
        return round_size(self.recipe) * self.recipe.rounds.count

    def save(self) -> None:
        self.manifest.spent.cost_usd = self.budget.spent_cost_usd
        self.manifest.spent.tokens = self.budget.spent_tokens
        self.rd.write_manifest(self.manifest)

    def _finish(self, stopped: str, *, publish_safely: bool = False) -> None:
        """Record the session and publish. After an error, publishing must not hide it."""
        m = self.manifest
        m.stopped_reason = stopped
        m.status = "stopped" if stopped else "finished"
        if m.status == "finished":
            m.stages_completed = sorted({"plan", *(s.name for s in (self._stages or [])), "publish"} | set(m.stages_completed))
        _record_session(m, self.teacher, self.judge)
        self.save()
        from synthloop.reports.publish import publish

        try:
            publish(self.rd)
        except Exception:
            if not publish_safely:
                raise
            log.exception("publishing the run directory failed after an earlier error")

    def result(self) -> RunResult:
        m = self.manifest
        return RunResult(run_dir=self.rd.path, planned=m.planned, accepted=m.accepted, rejected=m.rejected,
                         finished=m.finished, stopped_reason=m.stopped_reason, requests_sent=m.last_session.sent,
                         requests_reused=m.last_session.reused, rounds=len(m.rounds), published_round=m.published_round,
                         stats={str(s.round): read_round_stats(self.rd, s.round) for s in m.rounds})


def run(recipe: Recipe, **kwargs: Any) -> RunResult:
    """Run (or resume) a recipe; see `Run` for the keyword arguments."""
    with Run(recipe, **kwargs) as r:
        return r.execute()


# -- helpers ----------------------------------------------------------------------------------

def default_hooks(recipe: Recipe) -> list[tuple[str, RoundHook]]:
    """Round hooks the recipe asks for: with a [student] section, the classroom's train-and-examine."""
    if recipe.student is None:
        return []
    from synthloop.classroom import student_hook

    return [("student", student_hook)]


def target_reached(recipe: Recipe, state: RoundState) -> bool:
    """The student's stop rule: every evaluated skill at `[student] target_accuracy` or above."""
    target = recipe.student.target_accuracy if recipe.student is not None else None
    per_skill = (state.extra.get("student") or {}).get("per_skill") or {}
    return target is not None and bool(per_skill) and min(per_skill.values()) >= target


def collapse_stop_reason(rd: RunDir, r: int) -> str:
    """`collapse (<indicator> = <value>, fail band <band>; ...) at round r`, from the round's report."""
    import json

    report = json.loads(rd.collapse_report_path(r).read_text(encoding="utf-8"))
    failed = []
    for name, ind in (report.get("indicators") or {}).items():
        if ind.get("status") == "fail":
            value = ind.get("assessed") if ind.get("assessed") is not None else ind.get("value")
            failed.append(f"{name} = {value:.3g}, fail band {ind.get('fail')}")
    return f"collapse ({'; '.join(failed)}) at round {r}" if failed else f"collapse at round {r}"


def write_round_stats(rd: RunDir, state: RoundState) -> None:
    """The round's per-stage statistics: the sum of its committed chunks' stats."""
    import json

    total: dict[str, StageStats] = {}
    for i in state.completed_chunks:
        path = rd.chunk_stats_path(state.round, i)
        if path.is_file():
            for name, d in json.loads(path.read_text(encoding="utf-8")).items():
                total.setdefault(name, StageStats()).add(StageStats.from_dict(d))
    atomic_write_json(rd.stats_path(state.round), {k: v.to_dict() for k, v in total.items()})


def read_round_stats(rd: RunDir, r: int) -> dict[str, dict[str, Any]]:
    import json

    path = rd.stats_path(r)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _cell_key(r: Record) -> str:
    return f"{r.topic}|{r.skill}|{r.persona}|{r.difficulty}"


def _seeds_key(seeds: list[SeedItem]) -> str:
    return "|".join(f"{s.id}:{s.cell}" for s in seeds)


def _budget(recipe: Recipe, cache: RequestCache) -> Budget:
    """The cap, less what every earlier session spent: the cache's spend ledger is written with
    each answer, so a session ended by `kill -9` is counted too (the manifest's copy is not)."""
    spent = cache.spent()
    return Budget(recipe.budget.max_cost_usd, recipe.budget.max_tokens,
                  spent_cost_usd=spent.cost_usd or 0.0, spent_tokens=spent.tokens)


def _golden(recipe: Recipe) -> Any:
    """The golden set: the recipe's [grounding] one, else the built-in one (the memorisation check
    and the collapse check need one even without [grounding])."""
    from synthloop.grounding import GroundingConfig, load_golden

    needed = recipe.grounding is not None or recipe.collapse is not None or recipe.curate.memorization
    return load_golden(recipe.grounding or GroundingConfig()) if needed else None


def _golden_texts(golden: Any) -> list[str] | None:
    from synthloop.grounding import golden_texts

    return golden_texts(golden) if golden is not None else None


def _record_session(m: Manifest, *clients: Client) -> None:
    """Requests this invocation sent and reused (shown by the CLI), and the run's running totals."""
    sent = sum(c.usage.requests for c in clients)
    reused = sum(c.usage.cached_requests for c in clients)
    m.last_session.sent, m.last_session.reused = sent, reused
    m.requests.sent += sent
    m.requests.reused += reused


async def _close_clients(*clients: Client) -> None:
    seen: set[int] = set()
    for c in clients:
        if id(c.backend) not in seen:
            seen.add(id(c.backend))
            await c.backend.aclose()


__all__ = ["STEERS", "RoundHook", "RoundSummary", "Run", "RunResult", "Steer", "SteerResult", "register_steer", "run", "uniform_steer"]
