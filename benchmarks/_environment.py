"""The process every benchmark runs in: offline, quiet, fixed threads and seeds, and the machine line it prints.

Import this module before `datasets` or `transformers` (the offline switches are read when they are
imported); the other helpers here import it first for that reason.
"""

from __future__ import annotations

import os
import platform
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # fewer kineto log lines (torch 2.13 still prints USDT ones)

import datasets  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
THREADS = 2
SEED = 0


def configure(threads: int = THREADS) -> None:
    """Fixed threads, quiet libraries, fixed seeds."""
    torch.set_num_threads(threads)
    transformers.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    random.seed(SEED)
    torch.manual_seed(SEED)


def synchronize() -> None:
    """Wait for the GPU's queued work, if this process started CUDA: a step's wall time then includes its kernels."""
    if torch.cuda.is_initialized():
        torch.cuda.synchronize()


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def print_machine() -> None:
    print(
        f"machine: {cpu_name()}, {os.cpu_count()} logical CPUs | python {platform.python_version()} | "
        f"torch {torch.__version__} (threads={torch.get_num_threads()}, interop={torch.get_num_interop_threads()}) | "
        f"transformers {transformers.__version__}"
    )
    if torch.cuda.is_available():
        print(f"gpu: {torch.cuda.get_device_name()}, CUDA {torch.version.cuda}")


def done(start: float) -> None:
    """The run's wall time, on stderr so that stdout holds only the results."""
    print(f"total wall time {time.perf_counter() - start:.0f} s", file=sys.stderr)
