"""Training-step time of a small student at 1 and at every-core torch threads, in the same run.

On a machine shared with other busy processes, torch's threads wait for each other whenever one is
descheduled; this is the figure behind `SYNTHLOOP_TORCH_THREADS` (docs/backends.md). Run it while
the machine is loaded (e.g. beside another job) and while it is quiet: the ratio is what to read.

    python bench/bench_threads.py [--steps 10] [--hidden 128] [--layers 4]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402

from synthloop.student.tiny import tiny_model  # noqa: E402


def step_seconds(model: torch.nn.Module, threads: int, steps: int, batch: int, length: int) -> float:
    torch.set_num_threads(threads)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ids = torch.randint(0, 300, (batch, length))
    began = time.monotonic()
    for _ in range(steps):
        model(input_ids=ids, labels=ids).loss.backward()
        opt.step()
        opt.zero_grad()
    return (time.monotonic() - began) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = AutoModelForCausalLM.from_pretrained(tiny_model(Path(tmp) / "m", hidden=args.hidden, layers=args.layers))
    cores = os.cpu_count() or 1
    one = step_seconds(model, 1, args.steps, 16, 70)
    every = step_seconds(model, cores, args.steps, 16, 70)
    print(f"load average {os.getloadavg()[0]:.1f}; step (16 x 70 tokens): 1 thread {one:.3f} s, "
          f"{cores} threads {every:.3f} s ({every / one:.2f}x of 1 thread)")


if __name__ == "__main__":
    main()
