"""What the averaged gradient statistic costs under DDP: a measured step with it against one without it.

    .venv/bin/python benchmarks/distributed_measurement.py           # launches itself: 2 CPU processes (torchrun, gloo)
    .venv/bin/python benchmarks/distributed_measurement.py --quick   # smoke run; numbers are noise

With `conflict_statistic="averaged"` (the default), a measured step under DDP all-reduces the task
part `T` of the gradient as well as the total `G`: one more parameter-sized all-reduce. With
`"pooled"` the processes add up their partial sums instead (a few hundred bytes) and measure a
different, noisier quantity. Variants, on 2 processes of 1 thread each, each on its own copy of
the same model, with the same batches at the same step (shapes as in `_fixtures.py`):

(p) conflict_every=1, conflict_statistic="pooled"    (the step without the extra all-reduce: the baseline)
(a) conflict_every=1, conflict_statistic="averaged"  (the step with it)
(0) conflict_every=0                                 (no measurement, for scale)

Steps are driven by hand (`_trainer_driving.TrainerStepper`): `training_step` (both backward
passes unsynced, the all-reduce of `G`, the split and its statistics), the optimizer step and
`zero_grad`. The model is not wrapped in DDP: the trainer averages the gradients itself, and
DDP's per-forward buffer broadcast, the same in every variant, is left out. Rounds are
interleaved with a fixed count and no time budget, since both processes must run the same
collectives. Prints the per-step ratios to (p), the extra all-reduce timed alone (median over
calls) as a share of (p)'s step, and what (a) costs per step at `conflict_every` 1, 10 and 100.
"""

from __future__ import annotations

import copy
import os
import shutil
import statistics
import subprocess
import sys
import time

import torch
import torch.distributed as dist
from _environment import done
from _fixtures import make_trainer
from _setup import set_up
from _timing import Variant, interleave, print_ratios, timed_steps
from _trainer_driving import TrainerStepper

from hf_xalign.conflict import TASK
from hf_xalign.distributed import all_reduce_tensors

TITLE = "distributed_measurement: the extra all-reduce of the averaged statistic under DDP (2 CPU processes)"
PROCESSES = 2
ALL_REDUCE_CALLS = 10


def launch() -> int:
    """Run this script under torchrun on `PROCESSES` processes, 1 torch thread each unless `--threads` is given."""
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    options = sys.argv[1:] if "--threads" in sys.argv else [*sys.argv[1:], "--threads", "1"]
    command = [torchrun, "--nproc_per_node", str(PROCESSES), "--standalone", __file__, *options]
    return subprocess.run(command).returncode


def timed_all_reduce(buffer: list[torch.Tensor], world_size: int) -> list[float]:
    """Wall seconds of `ALL_REDUCE_CALLS` all-reduces of `buffer`, each started together after a barrier."""
    seconds = []
    for _ in range(ALL_REDUCE_CALLS):
        dist.barrier()
        start = time.perf_counter()
        all_reduce_tensors(buffer, world_size)
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    rank = int(os.environ["RANK"])
    if rank != 0:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (the other rank runs the same steps, silently)
    bench = set_up(TITLE, __doc__.splitlines()[0], default_rounds=8, default_steps=2)
    variant_options = {"pooled": (1, "pooled"), "averaged": (1, "averaged"), "off": (0, "averaged")}
    trainers = {
        name: make_trainer(
            copy.deepcopy(bench.base),
            bench.tokenizer,
            bench.task_data,
            bench.pairs,
            every,
            conflict_statistic=statistic,
        )
        for name, (every, statistic) in variant_options.items()
    }
    world_size = trainers["averaged"].args.world_size
    if world_size != PROCESSES:
        raise RuntimeError(f"expected {PROCESSES} processes, got world size {world_size}; run the script directly.")
    steppers = {name: TrainerStepper(trainer, bench.batches) for name, trainer in trainers.items()}
    print(
        f"processes: {world_size} (gloo), {torch.get_num_threads()} thread(s) each; timing: {bench.steps} steps per "
        f"variant per round, {bench.rounds} rounds, order p a 0 / 0 a p"
    )
    variants = [
        Variant("(p) measured, pooled statistic", lambda n: timed_steps(steppers["pooled"].step, n)),
        Variant("(a) measured, averaged statistic", lambda n: timed_steps(steppers["averaged"].step, n)),
        Variant("(0) not measured", lambda n: timed_steps(steppers["off"].step, n)),
    ]
    interleave(variants, bench.rounds, bench.steps, warmup=1 if bench.quick else 2, budget_s=float("inf"))
    pooled, averaged, _ = variants
    print("\n-- per-step time on rank 0 (wall clock); ratio = median / median of (p) --")
    print_ratios(variants, pooled)

    buffer = trainers["averaged"].gradient_splitter.buffers[TASK]
    values = sum(t.numel() for t in buffer)
    reduce_median = statistics.median(timed_all_reduce(buffer, world_size))
    step = pooled.wall.median
    ratio = averaged.wall.median / step
    print(
        f"extra all-reduce of T alone: {values / 1e6:.2f}M values ({4 * values / 2**20:.1f} MiB), median "
        f"{1e3 * reduce_median:.1f} ms over {ALL_REDUCE_CALLS} calls = {reduce_median / step:.1%} of (p)'s median step "
        f"({1e3 * step:.0f} ms)"
    )
    amortized = ", ".join(f"{1 + (ratio - 1) / every:.3f} at conflict_every={every}" for every in (1, 10, 100))
    print(f"time(a)/time(p) = {ratio:.3f} per measured step; per step on average: {amortized}")
    if rank == 0:
        done(bench.wall_start)


if __name__ == "__main__":
    if "RANK" in os.environ:
        main()
    else:
        sys.exit(launch())
