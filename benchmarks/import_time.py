"""Start-up cost of the command line: `xalign --help` wall time ÷ `python -c "import torch"` wall time.

    .venv/bin/python benchmarks/import_time.py [--rounds 15]

Goal (issue 22): ratio ≤ 0.5, and `xalign --help` under 1 s on an idle machine. Both commands run as fresh
processes of this interpreter, taking turns round by round (A B, B A, ...) so that a slow drift of a shared
machine hits both alike; a first round of each warms the file cache and is not counted. Printed: each command's
median wall time with its interquartile range, and the paired ratio (the median over rounds of the two times'
ratio, with its min-max). This script imports neither torch nor the package itself: it only times others.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COMMANDS = {
    "xalign --help": [sys.executable, "-m", "hf_xalign.cli", "--help"],
    "import torch": [sys.executable, "-c", "import torch"],
}


def wall_time(command: list[str]) -> float:
    """Seconds one run of `command` takes, start to exit; its output is discarded, a failure stops the benchmark."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def quartiles(values: list[float]) -> tuple[float, float, float]:
    first, median, third = statistics.quantiles(values, n=4, method="inclusive")
    return first, median, third


def main(rounds: int) -> None:
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    names = list(COMMANDS)
    for name in names:  # warm-up: the first run reads every file from disk
        wall_time(COMMANDS[name])
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        for name in names if round_index % 2 == 0 else reversed(names):
            times[name].append(wall_time(COMMANDS[name]))
    for name in names:
        first, median, third = quartiles(times[name])
        print(f"{name:<14} median {median:6.3f} s  (IQR {first:.3f}-{third:.3f} s, {rounds} runs)")
    ratios = [cli / torch for cli, torch in zip(times["xalign --help"], times["import torch"])]
    print(
        f"xalign --help / import torch: paired ratio {statistics.median(ratios):.3f} "
        f"(min {min(ratios):.3f}, max {max(ratios):.3f}); goal <= 0.5"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (default: 15)")
    main(parser.parse_args().rounds)
