"""The fault bench of bench_client.py, simulated in virtual time: the real `Client` policy against
a model of the stub, with no sockets and no CPU noise, so policies can be compared over many fault
sequences on a busy machine (one fault-free and 20 faulty runs of 2000 prompts take seconds).

The model (`SimServer`): `slots` requests worked on at once, in arrival order, each for `latency`;
20% of requests fail, drawn as `synthloop.testing.mixed_faults` draws them (same seed, same
sequence): 429 + Retry-After at once, 500 and malformed/truncated bodies after their slot time,
hangs of 30 s; the client's timeout as in the bench (1 s, 1.6 s at 256 in flight). Work the client
cancels still finishes at the server and counts as an answer (as the stub does), so a copy sent
for a request that was only slow shows up in `duplicates`.

Virtual time: an event loop whose clock jumps to the next timer instead of sleeping. It is a model:
it has no client CPU cost (the fault-free wall is 6.40 s against the stub's ~6.6 s), and every
answer of a wave arrives at the same instant.

Run:  python bench/sim_client_faults.py [--seeds 20] [--widths 64,256] [--oracle-hangs] [--why] [--max-copies 4]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
from collections import Counter
from typing import Any

from synthloop.backends import Client, Request, Response
from synthloop.backends.base import with_retry_after
from synthloop.errors import BackendError, BackendTimeout, BackendUnavailable, BadResponse, RateLimited

KINDS = ("429", "500", "hang", "malformed", "truncated")  # the order of mixed_faults' kinds


class VirtualLoop(asyncio.SelectorEventLoop):
    """`time()` is virtual: waiting for the next timer advances it instead of sleeping."""

    def __init__(self) -> None:
        super().__init__()
        self._now = 0.0
        poll = self._selector.select  # type: ignore[attr-defined]

        def select(timeout: float | None = None) -> Any:
            self._now += timeout if timeout is not None and timeout > 0 else 0.0
            return poll(0)

        self._selector.select = select  # type: ignore[attr-defined]

    def time(self) -> float:
        return self._now


class SimServer:
    """A backend that models the stub server with `mixed_faults(rate, seed=seed)`."""

    name, model, batch_size = "sim", "stub", 1

    def __init__(self, rate: float, seed: int, timeout_s: float, *, slots: int = 64, latency: float = 0.2, oracle_hangs: bool = False) -> None:
        self.rng = random.Random(seed)
        self.rate, self.timeout_s, self.latency, self.slots = rate, timeout_s, latency, slots
        self.oracle_hangs = oracle_hangs  # a hang fails at once: what no client could know
        self.answered: Counter[str] = Counter()
        self.requests = self.worked = 0
        self.first_sent: dict[str, float] = {}
        self.sends: dict[str, list[tuple[float, float, str, str]]] = {}  # per prompt: (sent, ended, fault, outcome) of each send
        self._slots: asyncio.Semaphore | None = None
        self._work: set[asyncio.Task[Response | BackendError]] = set()

    async def generate(self, requests: list[Request]) -> list[Response | BackendError]:
        return [await self._one(r) for r in requests]

    async def _one(self, request: Request) -> Response | BackendError:
        prompt, loop = request.messages[-1][1], asyncio.get_running_loop()
        self.requests += 1
        self.first_sent.setdefault(prompt, loop.time())
        kind = self.rng.choice(KINDS) if self.rng.random() < self.rate else None
        sent, outcome = loop.time(), "cancelled (the other send answered)"
        try:
            answer = await self._answer(prompt, kind)
            outcome = "answer" if isinstance(answer, Response) else type(answer).__name__
            return answer
        finally:
            self.sends.setdefault(prompt, []).append((sent, loop.time(), kind or "no fault", outcome))

    async def _answer(self, prompt: str, kind: str | None) -> Response | BackendError:
        work = asyncio.ensure_future(self._serve(prompt, kind))  # the server goes on when the client leaves
        self._work.add(work)
        work.add_done_callback(self._work.discard)
        try:
            return await asyncio.wait_for(asyncio.shield(work), self.timeout_s)
        except TimeoutError:
            return BackendTimeout(f"no answer within {self.timeout_s:g} s")

    async def _serve(self, prompt: str, kind: str | None) -> Response | BackendError:
        if kind == "429":
            return with_retry_after(RateLimited("429"), 1.0)
        if kind == "hang":
            if self.oracle_hangs:
                return BackendTimeout("a hang, known at once")
            await asyncio.sleep(30.0)
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.slots)
        self.worked += 1
        async with self._slots:
            await asyncio.sleep(self.latency)
        if kind == "500":
            return BackendUnavailable("server error 500")
        if kind in ("malformed", "truncated"):
            unusable = BadResponse("unusable reply")
            unusable.retryable = True
            return unusable
        self.answered[prompt] += 1
        return Response(text="ok", prompt_tokens=3, completion_tokens=5)

    async def aclose(self) -> None:
        for work in self._work:
            work.cancel()
        await asyncio.gather(*self._work, return_exceptions=True)


def simulate(width: int, rate: float, seed: int, n: int = 2000, **kw: Any) -> dict[str, Any]:
    """One run: wall (virtual s), answered, duplicates after success, sends, last first send."""
    loop = VirtualLoop()
    server = SimServer(rate, seed, max(1.0, 2 * width / 64 * 0.2), **kw)
    client = Client(server, concurrency=width, max_retries=8, backoff_base=0.05, backoff_max=1.0)
    client._rng.seed(seed)
    requests = [Request.chat([{"role": "user", "content": f"q{i}"}], model="stub", seed=i, max_tokens=64) for i in range(n)]

    async def run() -> tuple[float, int]:
        answers = await client.complete(requests)
        wall = loop.time()
        await server.aclose()
        return wall, sum(isinstance(a, Response) for a in answers)

    try:
        wall, ok = loop.run_until_complete(run())
    finally:
        loop.close()
    last = max(server.sends, key=lambda p: max(end for _, end, _, outcome in server.sends[p] if outcome == "answer"))
    return {"wall": wall, "answered": ok, "duplicates": sum(c - 1 for c in server.answered.values()), "sends": server.requests,
            "worked": server.worked, "last_first_send": max(server.first_sent.values()), "copies": getattr(client, "hedged_sends", 0),
            "last_prompt": sorted(server.sends[last])}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=20, help="fault sequences per width")
    parser.add_argument("--widths", default="64,256")
    parser.add_argument("--oracle-hangs", action="store_true", help="hangs fail at once (a bound no client can reach)")
    parser.add_argument("--why", action="store_true", help="for each run over 1.5x, the sends of the prompt answered last")
    parser.add_argument("--max-copies", type=int, help="copies a stalled send may get (the client's `_Slot.max_copies`, 2)")
    args = parser.parse_args()
    if args.max_copies is not None:
        from synthloop.backends.client import _Slot

        _Slot.max_copies = args.max_copies
    logging.disable(logging.CRITICAL)  # the client logs every retry
    for width in (int(w) for w in args.widths.split(",")):
        clean = simulate(width, 0.0, 0)["wall"]
        runs = [simulate(width, 0.2, seed, oracle_hangs=args.oracle_hangs) for seed in range(args.seeds)]
        assert all(r["answered"] == 2000 for r in runs)
        ratios = sorted(r["wall"] / clean for r in runs)
        if args.why:
            for seed, r in enumerate(runs):
                if r["wall"] / clean > 1.5:
                    sends = "; ".join(f"{a:.2f}-{b:.2f} s {kind}: {outcome}" for a, b, kind, outcome in r["last_prompt"])
                    print(f"{width} in flight, seed {seed}, {r['wall'] / clean:.3f}x: the prompt answered last: {sends}")
        print(f"{width} in flight: fault-free {clean:.2f} s; with 20% faults over {len(runs)} fault seeds: median {statistics.median(ratios):.3f}x, "
              f"max {ratios[-1]:.3f}x, over 1.5x in {sum(x > 1.5 for x in ratios)}; duplicates after success {sum(r['duplicates'] for r in runs)}; "
              f"last first send at {statistics.median(r['last_first_send'] for r in runs):.2f} s (median)")


if __name__ == "__main__":
    main()
