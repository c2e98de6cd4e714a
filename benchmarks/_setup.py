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
    SHAPES,
    Shape,
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


def parse_args(description: str, device_options: bool) -> argparse.Namespace:
    """The common options; with `device_options`, also --device, --dtype and --shape (the scripts that honour them)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="~30 s smoke run: few rounds, numbers are noisy.")
    parser.add_argument("--rounds", type=int, default=None, help="Interleaved rounds (overrides the mode's default).")
    parser.add_argument("--steps", type=int, default=None, help="Timed steps per variant and round.")
    parser.add_argument(
        "--budget", type=float, default=None, help="Seconds of interleaved timing before rounds stop early."
    )
    parser.add_argument("--threads", type=int, default=_environment.THREADS, help="torch intra-op threads (default 2).")
    if device_options:
        parser.add_argument("--device", default="cpu", help="Where the trainers run: cpu (default) or cuda.")
        parser.add_argument(
            "--dtype",
            choices=("fp32", "bf16"),
            default="fp32",
            help="fp32 (default), or bf16 autocast (the Trainer's `bf16=True`).",
        )
        parser.add_argument(
            "--shape",
            choices=sorted(SHAPES),
            default="default",
            help="Model and batch sizes: default (the measured CPU tables), base (xlm-roberta-base, task 32 x 128), tiny.",
        )
    parser.set_defaults(device="cpu", dtype="fp32", shape="default")
    options = parser.parse_args()
    if options.device != "cpu" and not torch.cuda.is_available():
        parser.error(f"--device {options.device}: torch {torch.__version__} sees no CUDA device; use --device cpu")
    return options


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
    shape: Shape
    device: str  # "cpu" or "cuda"
    bf16: bool  # bf16 autocast (`--dtype bf16`)

    @property
    def on_cpu_in_fp32(self) -> bool:
        """The set-up of the measured CPU tables (device and precision; the shape may differ)."""
        return self.device == "cpu" and not self.bf16

    def new_trainer(self, conflict_every: int) -> AlignmentTrainer:
        """A trainer on its own copy of the base model; variants differ only in `conflict_every`."""
        return make_trainer(
            copy.deepcopy(self.base),
            self.tokenizer,
            self.task_data,
            self.pairs,
            conflict_every,
            shape=self.shape,
            device=self.device,
            bf16=self.bf16,
        )


def set_up(
    title: str, description: str, default_rounds: int, default_steps: int, device_options: bool = False
) -> Bench:
    """Parse the options, fix the threads, print the header and the machine, build model and data."""
    options = parse_args(description, device_options)
    quick = options.quick
    wall_start = time.perf_counter()
    _environment.configure(options.threads)
    print(f"== {title} ==")
    _environment.print_machine()
    shape = SHAPES[options.shape]
    print(f"device: {options.device}, {options.dtype}, shape {options.shape}")
    raw_pairs = load_pairs()
    tokenizer = build_tokenizer(raw_pairs, shape.tokenizer_vocab)
    task_data = build_task_dataset(tokenizer, raw_pairs, rows=shape.task_batch * 8, seq=shape.task_seq)
    return Bench(
        quick=quick,
        rounds=options.rounds or (2 if quick else default_rounds),
        steps=options.steps or (2 if quick else default_steps),
        budget=options.budget or (10.0 if quick else 150.0),
        min_run_time=0.2 if quick else 0.5,
        wall_start=wall_start,
        tokenizer=tokenizer,
        pairs=build_parallel_dataset(tokenizer, raw_pairs, max_length=shape.align_max_length),
        task_data=task_data,
        batches=task_batches(task_data, 8, shape.task_batch),
        base=build_model(tokenizer, shape=shape),
        shape=shape,
        device=options.device,
        bf16=options.dtype == "bf16",
    )
