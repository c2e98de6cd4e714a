"""The demo study's cells side by side: wall time with `--workers 2` over `--workers 1`, on this machine.

    .venv/bin/python benchmarks/study_workers.py                               # the 2 base cells, 3 rounds
    .venv/bin/python benchmarks/study_workers.py --cells '*__base__*' --cells '*__sequential__*' --rounds 1
    .venv/bin/python benchmarks/study_workers.py --max_steps 20 --rounds 2     # shorter cells, same shape

Goal (issue 23): <= 0.75 on 2 cores. Each round runs the selected cells of `recipes/configs/study_demo.yaml`
into a fresh folder with `--workers 1` (one after the other, in the study's process, torch's default threads)
and with `--workers 2` (two processes of cores // 2 threads each), in alternating order after one untimed
warm-up run, and times the whole command (imports, setup, the report included). Prints every round's ratio, the median and the spread, and the
machine's load (`uptime`) before and after: on a shared machine the load moves the ratio.
Needs the demo encoder (`make demo` builds .cache/e5-small-demo).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import yaml
from _commands import alternating_rounds, load, print_summary

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "recipes", "configs", "study_demo.yaml")


def study_config(folder: str, max_steps: int | None) -> str:
    """The demo study, with every task's `max_steps` replaced when asked; returns its path."""
    with open(CONFIG, encoding="utf-8") as f:
        values = yaml.safe_load(f)
    if max_steps is not None:
        for task in values["tasks"].values():
            task.setdefault("overrides", {}).update(max_steps=max_steps, warmup_steps=0)
        values["align"]["max_steps"] = max_steps
    path = os.path.join(folder, "study.yaml")
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(values, f)
    return path


def timed_study(config: str, cells: list[str], workers: int, output_dir: str) -> float:
    command = [sys.executable, os.path.join(ROOT, "recipes", "study.py"), config, "--output_dir", output_dir]
    command += [item for pattern in cells for item in ("--cells", pattern)] + ["--workers", str(workers)]
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", action="append", help="Cell id patterns (default: the 2 base cells).")
    parser.add_argument("--rounds", type=int, default=3, help="Rounds of (1 worker, 2 workers), order alternating.")
    parser.add_argument("--max_steps", type=int, help="Replace every task's and the alignment's max_steps.")
    arguments = parser.parse_args()
    cells = arguments.cells or ["*__base__*"]
    print(
        f"study_workers: cells {cells} of {os.path.relpath(CONFIG, ROOT)}, max_steps {arguments.max_steps or 'as configured'}"
    )
    print(f"load before: {load()}")
    ratios = []
    with tempfile.TemporaryDirectory() as folder:
        config = study_config(folder, arguments.max_steps)
        # Untimed: the first run of a session paid 150 s more here (cold file cache), which is no cost of either.
        timed_study(config, cells, 1, os.path.join(folder, "warm-up"))

        def seconds_of(workers: int, round_number: int) -> float:
            return timed_study(config, cells, workers, os.path.join(folder, f"round{round_number}-workers{workers}"))

        for round_number, seconds in alternating_rounds((1, 2), arguments.rounds, seconds_of):
            ratios.append(seconds[2] / seconds[1])
            print(
                f"round {round_number + 1}: workers 1 {seconds[1]:.0f} s, workers 2 {seconds[2]:.0f} s, "
                f"ratio {ratios[-1]:.3f}",
                flush=True,
            )
    print_summary("workers 2 / workers 1", ratios, ".3f")


if __name__ == "__main__":
    main()
