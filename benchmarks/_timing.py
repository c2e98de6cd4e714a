"""Timing: variants interleaved round by round, pieces timed alone, and the ratio table with its spread.

Pieces timed alone (a function call, a tokenizer pass) go through `torch.utils.benchmark.Timer`'s
`blocked_autorange`, which sizes the blocks, warms up and returns a `Measurement` (median, IQR).

Whole optimizer steps are timed by hand, for three things `Timer` does not do. It measures one
statement at a time, its blocks back to back; here the variants take turns round by round (A B C,
C B A, ...), so that a slow drift of a shared machine hits all of them alike and the ratio of
two round medians (the *paired* ratio) cancels it. It times a statement from outside, while the
`Trainer.train` variants are timed between step ends inside the loop (see `_trainer_driving`). And
it reads the wall clock only, where each step here also records the process CPU time. The
per-step times are then summarised by the same `Measurement` as the pieces.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from _environment import synchronize
from torch.utils.benchmark import Measurement, TaskSpec, Timer


def measure(fn: Callable[[], object], min_run_time: float) -> Measurement:
    """`fn()` timed alone: blocks of calls for at least `min_run_time` seconds, at the threads set for the run."""
    # Timer runs at 1 thread unless told otherwise; the pieces are timed at the run's thread count.
    timer = Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time)


@dataclass
class Variant:
    """A way of running optimizer steps; `run_chunk(n)` runs n steps and returns n `(wall, cpu)` times in seconds."""

    name: str
    run_chunk: Callable[[int], list[tuple[float, float]]]
    times: list[float] = field(default_factory=list)  # wall seconds per step
    cpu_times: list[float] = field(default_factory=list)  # process CPU seconds per step (all threads)
    round_medians: list[float] = field(default_factory=list)  # wall seconds, one per round

    @property
    def wall(self) -> Measurement:
        """The wall time per step over all rounds."""
        return self._measurement(self.times)

    @property
    def cpu(self) -> Measurement:
        """The process CPU time per step over all rounds (all threads)."""
        return self._measurement(self.cpu_times)

    def _measurement(self, seconds: list[float]) -> Measurement:
        task = TaskSpec(stmt=self.name, setup="", num_threads=torch.get_num_threads())
        return Measurement(number_per_run=1, raw_times=seconds, task_spec=task)


def timed_steps(step: Callable[[], None], steps: int) -> list[tuple[float, float]]:
    """`(wall, cpu)` seconds of each of `steps` calls of `step`."""
    times = []
    for _ in range(steps):
        wall, cpu = time.perf_counter(), time.process_time()
        step()
        synchronize()
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
    return times


def interleave(
    variants: list[Variant], rounds: int, steps: int, warmup: int, budget_s: float, min_rounds: int = 3
) -> None:
    """Warm each variant up, then up to `rounds` rounds of `steps` steps of each variant.

    The order alternates A B C, C B A, ... so that no variant always runs right after
    another. Rounds stop early once `budget_s` seconds have passed (after `min_rounds`).
    """
    for variant in variants:
        variant.run_chunk(warmup)
    start = time.perf_counter()
    for r in range(rounds):
        order = variants if r % 2 == 0 else variants[::-1]
        for variant in order:
            gc.collect()
            times = variant.run_chunk(steps)
            variant.times += [wall for wall, _ in times]
            variant.cpu_times += [cpu for _, cpu in times]
            variant.round_medians.append(statistics.median(wall for wall, _ in times))
        elapsed = time.perf_counter() - start
        print(
            f"  round {r + 1:>2}/{rounds} ({elapsed:4.0f} s): "
            + ", ".join(f"{v.name.split()[0]} {1e3 * v.round_medians[-1]:.0f}" for v in variants)
            + " ms",
            flush=True,
        )
        if r + 1 >= min(min_rounds, rounds) and elapsed > budget_s:
            print(f"  (time budget of {budget_s:.0f} s reached after {r + 1} rounds)")
            break


def print_ratios(variants: list[Variant], baseline: Variant, goal: dict[str, float] | None = None) -> None:
    """Median per-step time of each variant, its interquartile range, and its ratio to the baseline's.

    `ratio` is median(variant) / median(baseline) over all timed steps; `paired` is the median
    over rounds of the ratio of the two round medians (robust to slow drift of the machine),
    with the smallest and largest round ratio.
    """
    goal = goal or {}
    base = baseline.wall.median
    print(f"{'variant':<34} {'median ms':>9} {'IQR ms':>7} {'ratio':>7} {'paired [min-max]':>22} {'goal':>7}")
    for variant in variants:
        wall = variant.wall
        paired = [v / b for v, b in zip(variant.round_medians, baseline.round_medians)]
        paired_text = f"{statistics.median(paired):.3f} [{min(paired):.3f}-{max(paired):.3f}]"
        target = f"<={goal[variant.name]:.2f}" if variant.name in goal else ""
        print(
            f"{variant.name:<34} {1e3 * wall.median:>9.1f} {1e3 * wall.iqr:>7.1f} {wall.median / base:>7.3f} "
            f"{paired_text:>22} {target:>7}"
        )


def print_pieces(pieces: dict[str, Measurement], base_seconds: float, base_name: str) -> None:
    """One line per piece timed alone: median and IQR in ms, and the median as a share of a base step.

    The number of blocks is printed with the IQR: over a single block (a slow piece, a short run) it is 0.
    """
    width = max(len(name) for name in pieces)
    for name, measurement in pieces.items():
        print(
            f"  {name:<{width}} {1e3 * measurement.median:8.3f} ms (IQR {1e3 * measurement.iqr:6.3f} over "
            f"{len(measurement.raw_times):>3} blocks) = {measurement.median / base_seconds:6.2%} of {base_name}'s median step"
        )
