"""The start shared by the training-step benchmarks: their options, their header, and the model and data."""

from __future__ import annotations

import argparse
import copy
import time
from dataclasses import dataclass

import _environment
import datasets
import torch
from _fixtures import (
    build_model,
    build_parallel_dataset,
    build_task_dataset,
    build_tokenizer,
    load_pairs,
    make_trainer,
    task_batches,
)
from transformers import PreTrainedTokenizerFast, XLMRobertaForTokenClassification

from hf_xalign import AlignmentTrainer


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="~30 s smoke run: few rounds, numbers are noisy.")
    parser.add_argument("--rounds", type=int, default=None, help="Interleaved rounds (overrides the mode's default).")
    parser.add_argument("--steps", type=int, default=None, help="Timed steps per variant and round.")
    parser.add_argument(
        "--budget", type=float, default=None, help="Seconds of interleaved timing before rounds stop early."
    )
    parser.add_argument("--threads", type=int, default=_environment.THREADS, help="torch intra-op threads (default 2).")
    return parser.parse_args()


@dataclass
class Bench:
    """What both benchmarks start from: the options, the timing plan, and the model and data."""

    quick: bool
    rounds: int  # interleaved rounds at most
    steps: int  # timed steps per variant and round
    budget: float  # seconds of interleaved timing after which rounds stop early
    min_run_time: float  # seconds of `blocked_autorange` for each piece timed alone
    wall_start: float
    tokenizer: PreTrainedTokenizerFast
    pairs: datasets.Dataset  # alignment rows
    task_data: datasets.Dataset
    batches: list[dict[str, torch.Tensor]]  # pre-collated task batches
    base: XLMRobertaForTokenClassification  # every variant trains its own deep copy

    def new_trainer(self, conflict_every: int) -> AlignmentTrainer:
        """A trainer on its own copy of the base model; variants differ only in `conflict_every`."""
        return make_trainer(copy.deepcopy(self.base), self.tokenizer, self.task_data, self.pairs, conflict_every)


def set_up(title: str, description: str, default_rounds: int, default_steps: int) -> Bench:
    """Parse the options, fix the threads, print the header and the machine, build model and data."""
    options = parse_args(description)
    quick = options.quick
    wall_start = time.perf_counter()
    _environment.configure(options.threads)
    print(f"== {title} ==")
    _environment.print_machine()
    raw_pairs = load_pairs()
    tokenizer = build_tokenizer(raw_pairs)
    task_data = build_task_dataset(tokenizer, raw_pairs, rows=16 * 8)
    return Bench(
        quick=quick,
        rounds=options.rounds or (2 if quick else default_rounds),
        steps=options.steps or (2 if quick else default_steps),
        budget=options.budget or (10.0 if quick else 150.0),
        min_run_time=0.2 if quick else 0.5,
        wall_start=wall_start,
        tokenizer=tokenizer,
        pairs=build_parallel_dataset(tokenizer, raw_pairs),
        task_data=task_data,
        batches=task_batches(task_data, 8),
        base=build_model(tokenizer),
    )
