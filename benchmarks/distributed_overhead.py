"""What the gradient measurement costs on 2 processes: a measured step against a step without it.

    .venv/bin/python benchmarks/distributed_overhead.py           # launches itself: 2 CPU processes (torchrun, gloo)
    .venv/bin/python benchmarks/distributed_overhead.py --quick   # smoke run; numbers are noise

Goal: a 2-process step with `conflict_every=1` ÷ the same step without measurement **≤ 1.05**: the
measurement adds a small statistics tensor to the communication, and under DDP with the default
`conflict_statistic="averaged"` one all-reduce of the task part `T` of the gradient (the statistics
of the averaged gradients need the averaged `T`), started without waiting right after the last
micro-step's task backward, so that it runs during the alignment forward and backward (gloo works
on a thread of its own; on 2 busy cores that thread takes its CPU time from the compute). The
extra all-reduce timed alone below is that communication waited for. Variants, on 2 processes of
1 thread each, each on its own copy of the same model, with the same batches at the same step
(shapes as in `_fixtures.py`):

(0) conflict_every=0                                 (no measurement: the baseline)
(a) conflict_every=1, conflict_statistic="averaged"  (the default: `T` all-reduced too, overlapped)
(p) conflict_every=1, conflict_statistic="pooled"    (each process's partial sums all-reduced, nothing else)
(f0) FSDP2, conflict_every=0                          (the model sharded by transformers at load time)
(f1) FSDP2, conflict_every=1                          (the sums of the local shards all-reduced)

Steps are driven by hand (`_trainer_driving.TrainerStepper`): `training_step` (both backward
passes unsynced, the all-reduce of `G`, the split and its statistics), the optimizer step and
`zero_grad`. The model is not wrapped in DDP: the trainer averages the gradients itself, and
DDP's per-forward buffer broadcast, the same in every variant, is left out. Rounds are
interleaved with a fixed count and no time budget, since both processes must run the same
collectives. Prints the per-step ratios of (a) and (p) to (0) with their spread, the bytes each
process adds to the communication per measured step for the statistics, the extra all-reduce of
`T` timed alone (median over calls) as a share of (0)'s step, and what (a) costs per step at
`conflict_every` 1, 10 and 100.

Under FSDP2 the gradients are shards of the averaged ones after every synced backward, so the
statistics need only the sums tensor; but the task part must be separable, so every backward of a
measured step reduce-scatters, where an unmeasured step reduce-scatters only after its last
backward: (f1)/(f0) includes that one more reduce-scatter per micro-step. accelerate's FSDP needs
GPUs; (f0) and (f1) shard the model as `from_pretrained(distributed_config=...)` does, on CPU.
"""

from __future__ import annotations

import atexit
import copy
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import torch
import torch.distributed as dist
from _environment import done
from _fixtures import make_trainer
from _setup import set_up
from _timing import Variant, interleave, print_ratios, timed_steps
from _trainer_driving import TrainerStepper
from transformers.distributed import DistributedConfig

from hf_xalign import AlignmentTrainer
from hf_xalign.conflict import TASK
from hf_xalign.distributed import all_reduce_tensors

TITLE = "distributed_overhead: a measured step against an unmeasured one on 2 CPU processes (DDP-style and FSDP2, gloo)"
GOAL = 1.05
# Each transformer block, the encoder (the alignment forward calls it directly) and the root (the head).
FSDP_PLAN = {"roberta.encoder.layer.*": "free_full_weight", "roberta": "free_full_weight"}
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


def time_task_average_waits(trainer: AlignmentTrainer) -> list[float]:
    """A list that gets the wall seconds of each wait of `trainer`'s optimizer step for the average of `T`
    (started after the task backward): what the overlap left of that all-reduce."""
    seconds = []
    wait = trainer._wait_task_average

    def timed_wait() -> None:
        start = time.perf_counter()
        wait()
        seconds.append(time.perf_counter() - start)

    trainer._wait_task_average = timed_wait
    return seconds


def sharded_copy(model: torch.nn.Module) -> torch.nn.Module:
    """`model` sharded over the processes by transformers at load time (FSDP2), from a copy rank 0 saves."""
    folder = [tempfile.mkdtemp(prefix="xalign-bench-fsdp-") if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(folder)
    if dist.get_rank() == 0:
        model.save_pretrained(folder[0])
        atexit.register(shutil.rmtree, folder[0], True)
    dist.barrier()
    sharding = DistributedConfig(fsdp_size=dist.get_world_size(), fsdp_plan=FSDP_PLAN)
    return type(model).from_pretrained(folder[0], distributed_config=sharding)


def main() -> None:
    rank = int(os.environ["RANK"])
    if rank != 0:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (the other rank runs the same steps, silently)
    bench = set_up(TITLE, __doc__.splitlines()[0], default_rounds=8, default_steps=2)
    variant_options = {
        "off": (0, "averaged", False),
        "averaged": (1, "averaged", False),
        "pooled": (1, "pooled", False),
        "fsdp_off": (0, "averaged", True),
        "fsdp": (1, "averaged", True),
    }
    trainers = {
        name: make_trainer(
            sharded_copy(bench.base) if sharded else copy.deepcopy(bench.base),
            bench.tokenizer,
            bench.task_data,
            bench.pairs,
            every,
            conflict_statistic=statistic,
        )
        for name, (every, statistic, sharded) in variant_options.items()
    }
    world_size = trainers["averaged"].args.world_size
    if world_size != PROCESSES:
        raise RuntimeError(f"expected {PROCESSES} processes, got world size {world_size}; run the script directly.")
    steppers = {name: TrainerStepper(trainer, bench.batches) for name, trainer in trainers.items()}
    t_waits = time_task_average_waits(trainers["averaged"])
    print(
        f"processes: {world_size} (gloo), {torch.get_num_threads()} thread(s) each; timing: {bench.steps} steps per "
        f"variant per round, {bench.rounds} rounds, order 0 a p f0 f1 / f1 f0 p a 0"
    )
    variants = [
        Variant("(0) not measured", lambda n: timed_steps(steppers["off"].step, n)),
        Variant("(a) measured, averaged statistic", lambda n: timed_steps(steppers["averaged"].step, n)),
        Variant("(p) measured, pooled statistic", lambda n: timed_steps(steppers["pooled"].step, n)),
        Variant("(f0) FSDP2, not measured", lambda n: timed_steps(steppers["fsdp_off"].step, n)),
        Variant("(f1) FSDP2, measured", lambda n: timed_steps(steppers["fsdp"].step, n)),
    ]
    interleave(variants, bench.rounds, bench.steps, warmup=1 if bench.quick else 2, budget_s=float("inf"))
    off, averaged, pooled, fsdp_off, fsdp = variants
    print("\n-- per-step time on rank 0 (wall clock); ratio = median / median of (0); spread: IQR, paired min-max --")
    print_ratios(variants, off, goal={averaged.name: GOAL, pooled.name: GOAL})
    for variant, baseline in ((averaged, off), (pooled, off), (fsdp, fsdp_off)):
        paired = [v / b for v, b in zip(variant.round_medians, baseline.round_medians)]
        print(
            f"time{variant.name.split()[0]}/time{baseline.name.split()[0]} = "
            f"{variant.wall.median / baseline.wall.median:.3f} (paired over rounds {min(paired):.3f}-{max(paired):.3f}; "
            f"goal <= {GOAL})"
        )

    print("\n-- bytes each process adds to the communication per measured step, for the statistics --")
    splitter = trainers["averaged"].gradient_splitter
    sums = splitter.partial_sums()  # its size is what matters: (groups, 3) float64 values
    sums_bytes = sums.element_size() * sums.numel()
    buffer_values = sum(t.numel() for buffer in splitter.buffers.values() for t in buffer)
    buffer_bytes = sum(t.numel() * t.element_size() for buffer in splitter.buffers.values() for t in buffer)
    print(f"(p) pooled: the sums tensor, {sums_bytes} bytes all-reduced")
    print(
        f"(a) averaged: the buffered parts (T), {buffer_values / 1e6:.2f}M values = {buffer_bytes} bytes "
        f"({buffer_bytes / 2**20:.1f} MiB) all-reduced; the sums are computed after, on every process alike"
    )
    gradient_bytes = sum(p.numel() * p.element_size() for p in trainers["fsdp"].gradient_splitter.params)
    print(
        f"(f1) FSDP2: the sums tensor of the local shards, {sums_bytes} bytes all-reduced; and one more reduce-scatter "
        f"per micro-step than (f0) (every backward of a measured step reduce-scatters, an unmeasured step only its "
        f"last): {gradient_bytes} bytes of gradient ({gradient_bytes / 2**20:.1f} MiB) in, 1/{world_size} of it out"
    )

    buffer = splitter.buffers[TASK]
    reduce_median = statistics.median(timed_all_reduce(buffer, world_size))
    step = off.wall.median
    ratio = averaged.wall.median / step
    print(
        f"\nextra all-reduce of T alone: median {1e3 * reduce_median:.1f} ms over {ALL_REDUCE_CALLS} calls = "
        f"{reduce_median / step:.1%} of (0)'s median step ({1e3 * step:.0f} ms)"
    )
    wait_median = statistics.median(t_waits)
    print(
        f"(a) waits for the average of T at the optimizer step: median {1e3 * wait_median:.1f} ms over "
        f"{len(t_waits)} steps = {wait_median / reduce_median:.0%} of the all-reduce alone (the rest ran during the "
        "alignment forward and backward)"
    )
    amortized = ", ".join(f"{1 + (ratio - 1) / every:.3f} at conflict_every={every}" for every in (1, 10, 100))
    print(f"time(a)/time(0) = {ratio:.3f} per measured step; per step on average: {amortized}")
    if rank == 0:
        done(bench.wall_start)


if __name__ == "__main__":
    if "RANK" in os.environ:
        main()
    else:
        sys.exit(launch())
