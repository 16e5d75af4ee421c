"""The Ray engine: a round's chunks run through the head stages on Ray workers; the ordered tail
(dedup) and every commit stay on this process (the driver), chunk by chunk in chunk order.

    driver                                   Ray workers (actors, `[engine] workers` of them)
    ------                                   -----------------------------------------------
    chunks --submit (W per worker)--------->  head stages built from the recipe: generate,
                                              verify, judge, per-record filters; the W chunks
                                              run at once on the worker's threads (streaming,
                                              as in the local engine)
    results, buffered until their turn <----  kept + rejected records, stats, usage
    tail (dedup) in chunk order -> commit
    Ledger actor (on the driver's node): the one writer of the run's request cache and spend
    ledger, and the one keeper of the budget's reservations

Why it gives the local engine's accepted set: the head decides each record on its own (a record's
fate does not depend on which worker ran it, nor when), records leave a worker in chunk order, and
the tail sees chunks in chunk order in one place (`split_stages`).

Why spend is exact: a worker's clients store every answer through the ledger (`LedgerCache`):
the answer and its spend row are one sqlite transaction in the run directory before the answer
counts, as with the local engine. With a cap (`[budget]`), each request's worst case is reserved at
the ledger before it is sent (`LedgerBudget`), so the cap holds across workers; a worker that dies
has its reservations dropped when Ray restarts it.

Why resume is exact: a chunk is done only when committed by the driver. A worker killed mid-chunk
is restarted by Ray and the chunk retried (`MAX_RESTARTS`), its answered requests served from the
cache; a killed driver leaves the run directory as the local engine would, and the next
`synthloop run` resumes it (on either engine: the engine is not part of the recipe's identity).
"""

from __future__ import annotations

import math
import os
import threading
from collections import Counter, deque
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from synthloop.backends.base import Response
from synthloop.backends.cache import Entry, RequestCache, Spent
from synthloop.backends.limits import Budget, Reservation
from synthloop.engines.aio import LoopThread
from synthloop.engines.base import Chunk, ChunkResult, Commit
from synthloop.engines.stream import MAX_CHUNKS_IN_FLIGHT, BudgetGate, chunks_in_flight
from synthloop.errors import BudgetExceeded, MissingDependency, SynthloopError
from synthloop.pipeline import RunContext, Stage, run_stages
from synthloop.pipeline.context import StageStats
from synthloop.pipeline.stage import split_stages
from synthloop.records import Record, Usage

if TYPE_CHECKING:
    from synthloop.engines import EngineSetup
    from synthloop.recipe import Recipe

T = TypeVar("T")

#: How often Ray restarts a dead worker and retries its chunk before the run stops with an error.
MAX_RESTARTS = 3
#: Object store of a local cluster: records are small, and 2-core machines have little memory.
LOCAL_OBJECT_STORE_BYTES = 96 * 1024 * 1024


class RayEngineError(SynthloopError):
    """The Ray cluster failed (a worker died too often, the cluster cannot be reached)."""


def import_ray() -> ModuleType:
    try:
        import ray
    except ImportError:
        raise MissingDependency("engine.name = \"ray\" needs Ray: pip install 'synthloop[ray]' "
                                "(or set engine.name = \"local\")") from None
    return ray


# -- the ledger: one writer of the cache, one keeper of the budget -----------------------------

class Ledger:
    """A Ray actor on the driver's node. It owns the run's `RequestCache` (workers on other nodes
    need no shared filesystem, and sqlite has one writer) and the budget's reservations."""

    def __init__(self, cache_path: str, max_cost_usd: float | None, max_tokens: int | None) -> None:
        self.cache = RequestCache(cache_path)
        self.budget = Budget(max_cost_usd, max_tokens)
        self.holds: dict[int, dict[int, Reservation]] = {}
        self.next_hold = 0
        self.refresh()

    def refresh(self) -> tuple[int, float]:
        """Spend from the ledger table (the driver may have spent too, e.g. calibrating a judge)."""
        spent = self.cache.spent()
        self.budget.spent_tokens, self.budget.spent_cost_usd = spent.tokens, spent.cost_usd or 0.0
        return self.totals()

    def totals(self) -> tuple[int, float]:
        return self.budget.spent_tokens, self.budget.spent_cost_usd

    def get_many(self, keys: list[str]) -> dict[str, Response]:
        return self.cache.get_many(keys)

    def put_many(self, entries: list[Entry]) -> None:
        """Durable first, then counted: what the cap sees is what the ledger table holds."""
        self.cache.put_many(entries)
        for e in entries:
            if e.ledger:
                self.budget.spend(e.response.prompt_tokens + e.response.completion_tokens, e.cost_usd or 0.0)

    def spent(self) -> Spent:
        return self.cache.spent()

    def check(self) -> str:
        try:
            self.budget.check()
        except BudgetExceeded as e:
            return str(e)
        return ""

    def reserve(self, worker: int, tokens: int, cost_usd: float) -> tuple[int, str]:
        """(hold id, "") when the request's worst case fits under the cap, else (-1, why not)."""
        try:
            held = self.budget.reserve(tokens, cost_usd)
        except BudgetExceeded as e:
            return -1, str(e)
        self.next_hold += 1
        self.holds.setdefault(worker, {})[self.next_hold] = held
        return self.next_hold, ""

    def release(self, worker: int, hold: int) -> None:
        held = self.holds.get(worker, {}).pop(hold, None)
        if held is not None:
            self.budget.release(held)

    def worker_started(self, worker: int) -> None:
        """A (re)started worker holds nothing: drop what its previous life reserved."""
        for held in self.holds.pop(worker, {}).values():
            self.budget.release(held)

    def close(self) -> None:
        self.cache.close()


class LedgerCache(RequestCache):
    """A worker's view of the run's request cache: every call goes to the `Ledger` and returns once
    it has answered (`put_many` once the answers are committed), so "durable before it counts" holds."""

    def __init__(self, ledger: Any) -> None:  # no sqlite here: the ledger owns the file
        self.path = Path("<ray ledger>")
        self._ledger = ledger

    def get_many(self, keys: Iterable[str]) -> dict[str, Response]:
        ray = import_ray()
        return dict(ray.get(self._ledger.get_many.remote(list(dict.fromkeys(keys)))))

    def put_many(self, entries: list[Entry]) -> None:
        if entries:
            import_ray().get(self._ledger.put_many.remote(entries))

    def spent(self) -> Spent:
        result: Spent = import_ray().get(self._ledger.spent.remote())
        return result

    def __len__(self) -> int:
        return self.spent().answers

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self.get_many([key])

    def close(self) -> None:
        """The ledger closes the file."""


@dataclass(frozen=True)
class Hold(Reservation):
    """A reservation granted by the ledger, with its id there (to give it back)."""

    id: int = -1


class LedgerBudget(Budget):
    """A worker's budget: reservations are granted by the `Ledger` against the run's one cap;
    settles and releases are kept locally too, so the client can park requests as it does locally."""

    def __init__(self, ledger: Any, worker: int, max_cost_usd: float | None, max_tokens: int | None) -> None:
        super().__init__(max_cost_usd, max_tokens)
        self._ledger, self._worker = ledger, worker

    def check(self) -> None:
        reason = import_ray().get(self._ledger.check.remote())
        if reason:
            raise BudgetExceeded(reason)

    def reserve(self, tokens: int, cost_usd: float) -> Reservation:
        hold, reason = import_ray().get(self._ledger.reserve.remote(self._worker, tokens, cost_usd))
        if reason:
            raise BudgetExceeded(reason)
        self.reserved_tokens += tokens
        self.reserved_cost_usd += cost_usd
        self.holds += 1
        return Hold(tokens, cost_usd, hold)

    def release(self, held: Reservation) -> None:
        self._ledger.release.remote(self._worker, held.id if isinstance(held, Hold) else -1)  # ordered per caller
        super().release(held)


# -- the workers ------------------------------------------------------------------------------

@dataclass
class HeadResult:
    """What a worker sends back for one chunk: the records the head kept (in chunk order), those it
    rejected, the head's stats, and the requests its clients sent and reused for it."""

    index: int
    kept: list[Record]
    rejected: list[Record]
    stats: dict[str, StageStats]
    usage: Usage = field(default_factory=Usage)
    worker_pid: int = 0


def worker_recipe(recipe: "Recipe", workers: int) -> "Recipe":
    """A worker's copy of the recipe: a provider's rate limits are for the whole run, so each of
    `workers` clients gets its share (concurrency stays per worker: it is what keeps one busy)."""
    out = recipe.model_copy(deep=True)
    for cfg in [out.teacher, *([out.judge.backend] if out.judge.backend else []), *out.judge.panel]:
        if cfg.requests_per_minute:
            cfg.requests_per_minute = cfg.requests_per_minute / workers
        if cfg.tokens_per_minute:
            cfg.tokens_per_minute = cfg.tokens_per_minute / workers
    return out


class HeadWorker:
    """A Ray actor that builds its own head stages from the recipe (stages hold model clients and
    cannot be pickled), its clients storing answers and drawing budget through the ledger.

    A threaded actor (`max_concurrency`): the chunks the driver keeps on it run at once, each on
    its own thread, their coroutines on the worker's one event loop, as the local engine runs
    several heads at once, so the worker's clients keep their requests in flight through a chunk's
    verification."""

    def __init__(self, recipe: "Recipe", index: int, ledger: Any, golden_texts: list[str] | None, cwd: str) -> None:
        from synthloop.pipeline.build import StageResources, build_stages, model_clients

        _register_recipe_tasks(recipe, cwd)
        import_ray().get(ledger.worker_started.remote(index))
        self.io = LoopThread()
        capped = recipe.budget.max_cost_usd is not None or recipe.budget.max_tokens is not None
        budget = LedgerBudget(ledger, index, recipe.budget.max_cost_usd, recipe.budget.max_tokens) if capped else Budget()
        self.teacher, self.judge = model_clients(recipe, None, LedgerCache(ledger), budget)
        # run_dir None: a judge's calibration is measured here (its requests are cache hits)
        res = StageResources(self.teacher, self.judge, recipe.judge_backend, golden_texts, run_async=self.io.run)
        self.head, _ = split_stages(build_stages(recipe, res))
        self.reported = Usage()
        self._lock = threading.Lock()
        self.running = self.peak = 0  # chunks running now, and the most at once (tests read it)

    def pid(self) -> int:
        return os.getpid()

    def peak_chunks(self) -> int:
        """The most chunks this worker ran at once."""
        return self.peak

    def run_head(self, chunk: Chunk) -> HeadResult:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            rejected: list[Record] = []
            ctx = RunContext(round=chunk.round, on_reject=rejected.append, run_async=self.io.run)
            kept = list(run_stages(chunk.records, self.head, ctx))
            return HeadResult(chunk.index, kept, rejected, ctx.take_stats(), self._new_usage(), os.getpid())
        finally:
            with self._lock:
                self.running -= 1

    def _new_usage(self) -> Usage:
        """What the clients did since the last chunk reported (chunks end on several threads)."""
        with self._lock:
            return self._usage_delta()

    def _usage_delta(self) -> Usage:
        now = Usage()
        for client in {id(c): c for c in (self.teacher, self.judge)}.values():
            now.add(client.usage)
        delta = Usage(now.prompt_tokens - self.reported.prompt_tokens, now.completion_tokens - self.reported.completion_tokens,
                      now.cost_usd - self.reported.cost_usd, now.requests - self.reported.requests,
                      now.cached_requests - self.reported.cached_requests)
        self.reported = now
        return delta


def _register_recipe_tasks(recipe: "Recipe", cwd: str) -> None:
    """Recipe-defined tasks are registered when a recipe is validated, in that process: a worker
    registers them again (their files are looked up relative to the driver's working directory)."""
    if recipe.tasks:
        from synthloop.tasks.spec import register_specs

        register_specs(recipe.tasks, "recipe", Path(cwd))


# -- the engine -------------------------------------------------------------------------------

def init_ray(address: str | None, num_cpus: int) -> None:
    """Join `address`, or start a local cluster sized for the run (no dashboard, a small object
    store, advertised on 127.0.0.1; it still listens on every interface: see docs/ray.md)."""
    ray = import_ray()
    try:
        if address:
            ray.init(address=address, include_dashboard=False, configure_logging=False)
        else:
            # "local": a new cluster for this run (no address would join the last one started here)
            ray.init(address="local", num_cpus=num_cpus, object_store_memory=LOCAL_OBJECT_STORE_BYTES, include_dashboard=False,
                     _node_ip_address="127.0.0.1", configure_logging=False)
    except ConnectionError as e:
        raise RayEngineError(f"cannot reach the Ray cluster at {address!r}: {e} (check engine.address and that "
                             "`ray status` works on this machine, or remove engine.address to start a local cluster)") from None


class RayEngine:
    name = "ray"

    def __init__(self, setup: "EngineSetup") -> None:
        self.setup = setup
        self.cfg = setup.recipe.engine
        self.io = LoopThread()
        self.started_ray = False
        self.ledger: Any = None
        self.workers: list[Any] = []
        self.golden_ref: Any = None
        #: Chunks each worker process ran (by pid), for the bench and tests.
        self.chunks_by_worker: Counter[int] = Counter()

    def run_async(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.io.run(coro)

    # -- the cluster ------------------------------------------------------------------------
    def start(self) -> None:
        """Connect (or start a local cluster), then the ledger and the workers; once per run."""
        if self.workers:
            return
        ray = import_ray()
        if not ray.is_initialized():
            init_ray(self.cfg.address, math.ceil(self.cfg.workers * self.cfg.cpus_per_worker))
            self.started_ray = True
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from synthloop.storage import RunDir

        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        budget = self.setup.recipe.budget
        self.ledger = ray.remote(Ledger).options(num_cpus=0, scheduling_strategy=here).remote(
            str(RunDir(self.setup.run_dir).cache_path), budget.max_cost_usd, budget.max_tokens)
        recipe = worker_recipe(self.setup.recipe, self.cfg.workers)
        # kept on the engine: Ray restarts a dead worker with the same arguments, so they must live on
        self.golden_ref = ray.put(self.setup.golden_texts)
        actor = ray.remote(HeadWorker).options(num_cpus=self.cfg.cpus_per_worker, max_restarts=MAX_RESTARTS,
                                               max_task_retries=MAX_RESTARTS, max_concurrency=MAX_CHUNKS_IN_FLIGHT)
        self.workers = [actor.remote(recipe, i, self.ledger, self.golden_ref, os.getcwd()) for i in range(self.cfg.workers)]

    def worker_pids(self) -> list[int]:
        """The workers' process ids (tests kill one)."""
        ray = import_ray()
        return [int(p) for p in ray.get([w.pid.remote() for w in self.workers])]

    # -- chunks -----------------------------------------------------------------------------
    def run_chunks(self, chunks: Sequence[Chunk], stages: Sequence[Stage], commit: Commit) -> None:
        """Heads on the workers, any order, as many chunks at once on each worker as the local
        engine would run in its one process (`chunks_in_flight`), fewer near a budget cap
        (`BudgetGate`); tails and commits here, in chunk order."""
        ray = import_ray()
        self.start()
        ray.get(self.ledger.refresh.remote())
        head, tail = split_stages(stages)  # the head built here is not run: the workers built theirs
        width = chunks_in_flight(head, chunks)  # the workers' clients have this recipe's concurrency
        gate = BudgetGate(self.setup.budget)
        pending, order = deque(chunks), [c.index for c in chunks]
        by_index = {c.index: c for c in chunks}
        inflight: dict[Any, tuple[int, int]] = {}  # ref -> (worker, chunk index)
        load = [0] * len(self.workers)
        done: dict[int, HeadResult | BaseException] = {}
        try:
            for index in order:
                while index not in done:
                    self._submit(pending, inflight, load, len(done), width, gate)
                    self._collect(inflight, load, done)
                result = self._finish(by_index[index], done.pop(index), tail)
                commit(result)
                gate.learn(result)
        finally:
            for ref in inflight:
                try:
                    ray.cancel(ref)
                except Exception:  # noqa: BLE001 - a chunk already running cannot be cancelled; it ends on its own
                    pass

    def _submit(self, pending: deque[Chunk], inflight: dict[Any, tuple[int, int]], load: list[int], buffered: int,
                width: int, gate: BudgetGate) -> None:
        """Keep `width` chunks on each worker, counting results waiting for their turn; near a
        budget cap only as many as the budget left covers (the chunk next in order always goes:
        it is submitted first)."""
        while pending and len(inflight) + buffered < width * len(self.workers) and gate.allows(len(inflight) + buffered):
            w = min(range(len(self.workers)), key=lambda i: load[i])
            chunk = pending.popleft()
            inflight[self.workers[w].run_head.remote(chunk)] = (w, chunk.index)
            load[w] += 1

    def _collect(self, inflight: dict[Any, tuple[int, int]], load: list[int], done: dict[int, HeadResult | BaseException]) -> None:
        ray = import_ray()
        ready, _ = ray.wait(list(inflight), num_returns=1)
        for ref in ready:
            worker, index = inflight.pop(ref)
            load[worker] -= 1
            try:
                done[index] = ray.get(ref)
            except Exception as e:  # noqa: BLE001 - raised when it is this chunk's turn to commit
                done[index] = _unwrap(e)

    def _finish(self, chunk: Chunk, head: HeadResult | BaseException, tail: Sequence[Stage]) -> ChunkResult:
        """The tail on the head's kept records, in chunk order; spend and usage brought up to date."""
        if isinstance(head, BaseException):
            raise head
        rejected = list(head.rejected)
        ctx = RunContext(round=chunk.round, on_reject=rejected.append, run_async=self.run_async)
        accepted = list(run_stages(head.kept, tail, ctx))
        for r in accepted:
            r.status = "accepted"
        stats = dict(head.stats)
        for name, st in ctx.take_stats().items():
            stats.setdefault(name, StageStats()).add(st)
        self._account(head.usage)
        self.chunks_by_worker[head.worker_pid] += 1
        return ChunkResult(chunk, accepted, rejected, stats)

    def _account(self, usage: Usage) -> None:
        """The run's budget mirrors the ledger (what every worker spent, durably); the session's
        usage gains the workers' requests."""
        if self.setup.usage is not None:
            self.setup.usage.add(usage)
        if self.setup.budget is not None:
            tokens, cost = import_ray().get(self.ledger.totals.remote())
            self.setup.budget.spent_tokens, self.setup.budget.spent_cost_usd = tokens, cost

    def close(self) -> None:
        try:
            if self.workers or self.ledger is not None:
                ray = import_ray()
                for w in self.workers:
                    ray.kill(w, no_restart=True)
                if self.ledger is not None:
                    ray.get(self.ledger.close.remote())
                    ray.kill(self.ledger, no_restart=True)
                if self.started_ray:
                    ray.shutdown()
        finally:
            self.workers, self.ledger, self.golden_ref = [], None, None
            self.io.close()


def _unwrap(error: BaseException) -> BaseException:
    """A worker's synthloop error (the budget reached, a bad response) as itself; a dead worker as
    one line saying what to do next."""
    ray = import_ray()
    if isinstance(error, ray.exceptions.RayTaskError) and isinstance(error.cause, BaseException):
        return error.cause
    if isinstance(error, ray.exceptions.RayActorError):
        return RayEngineError(f"a Ray worker died {MAX_RESTARTS + 1} times ({str(error).splitlines()[0]}); the chunks committed "
                              "so far are kept: look at the worker logs (/tmp/ray/session_latest/logs), then run the same "
                              "command again to resume")
    return error


__all__ = ["HeadResult", "HeadWorker", "Ledger", "LedgerBudget", "LedgerCache", "RayEngine", "RayEngineError", "worker_recipe"]
