"""What the early exit of the shared alignment forward saves, and whether the step waits for alignment batches.

    .venv/bin/python benchmarks/alignment_step.py --threads 1           # ~4 min on 1 CPU core
    .venv/bin/python benchmarks/alignment_step.py --threads 1 --quick   # ~100 s smoke run; numbers are noisy
    python benchmarks/alignment_step.py --device cuda --dtype bf16 --shape base   # xlm-roberta-base size on a GPU

The shared forward over source and target rows stops after the highest layer any loss reads
(`hf_xalign.pooling.hidden_states_up_to`). With the contrastive loss at `alignment_layer=6` of
12 blocks the alignment forward and backward run 6 blocks instead of 12; the task forward and
backward still run all 12. With the alignment batch (32 rows) twice the task batch (16 rows)
of the same length, block arithmetic gives (e)/(f) = (1 + 2 * 6/12) / (1 + 2) = 0.67; the
per-step work outside the blocks (embeddings, optimizer) moves it up toward 0.75.

Variants, each an `AlignmentTrainer` on its own copy of the same 12-layer XLM-R tagger (the
benchmarks' fixtures with 12 layers instead of 6), stepped by hand (`training_step` + optimizer
step + scheduler step + `zero_grad`, no clipping, lambda = 1, constant learning rate):

(f) aligned, contrastive at layer 6, full forward: every block runs (the behaviour before the early exit).
(e) aligned, contrastive at layer 6, early exit: blocks 7-12 do not run in the alignment forward.
(t) task only (`alignment_mode="none"`): the task forward and backward alone.

Alignment batches (issue 12, item 2): the trainer tokenizes the parallel text once, and its
`AlignmentStream` collates the next batch on a background thread while the step trains. Printed:
the waiting share of (e), the seconds its `training_step` calls spent waiting for an alignment
batch (`AlignmentStream.waited_seconds`) over the seconds of its timed steps (goal <= 1%); and
the time one batch takes to prepare (`AlignmentStream.batch_at`: dataset rows, padding, masking)
from the pre-tokenized rows and from raw rows tokenized per batch (the path before), with their
ratio and their share of (e)'s step, which is what a synchronous stream would make the step wait.
"""

from __future__ import annotations

import copy
import itertools
import statistics
import tempfile
from collections.abc import Callable

import torch
from _environment import SEED, done
from _fixtures import NUM_LABELS, alignment_batches, make_args
from _setup import Bench, set_up
from _timing import Variant, interleave, measure, print_pieces, print_ratios, timed_steps
from _trainer_driving import TrainerStepper
from transformers import XLMRobertaForTokenClassification, default_data_collator

from hf_xalign import AlignmentTrainer
from hf_xalign.data import AlignmentStream
from hf_xalign.pooling import ParallelEncoding
from hf_xalign.tiny import tiny_xlmr_config

TITLE = "alignment_step: the shared alignment forward stopped at the layer the losses read"
NUM_LAYERS = 12
ALIGNMENT_LAYER = 6


class FullForwardTrainer(AlignmentTrainer):
    """The shared forward runs every block, whatever layer the losses read."""

    def compute_alignment_loss(self, model, batch):
        encoding = ParallelEncoding(self.accelerator.unwrap_model(model).base_model, batch)
        return {name: loss(encoding) for name, loss in zip(self.alignment_loss_names, self.alignment_losses)}


class WaitedSteps:
    """Timed steps of a trainer that also note how long its steps waited for alignment batches."""

    def __init__(self, step: Callable[[], None], stream: AlignmentStream) -> None:
        self.step = step
        self.stream = stream
        self.chunks: list[tuple[float, float]] = []  # (seconds waited, seconds of the steps) per chunk

    def run(self, steps: int) -> list[tuple[float, float]]:
        waited = self.stream.waited_seconds
        times = timed_steps(self.step, steps)
        self.chunks.append((self.stream.waited_seconds - waited, sum(wall for wall, _ in times)))
        return times


def main() -> None:
    bench = set_up(TITLE, __doc__.splitlines()[0], default_rounds=20, default_steps=3, device_options=True)
    torch.manual_seed(SEED)
    config = tiny_xlmr_config(
        bench.tokenizer,
        hidden_size=bench.shape.hidden_size,
        num_layers=NUM_LAYERS,
        num_labels=NUM_LABELS,
        **bench.shape.config_overrides(),
    )
    base = XLMRobertaForTokenClassification(config)

    def new_trainer(trainer_class: type[AlignmentTrainer], mode: str) -> AlignmentTrainer:
        args = make_args(
            tempfile.mkdtemp(prefix="xalign-bench-step-"),
            conflict_every=0,
            shape=bench.shape,
            device=bench.device,
            bf16=bench.bf16,
        )
        args.alignment_layer = ALIGNMENT_LAYER
        args.alignment_mode = mode
        return trainer_class(
            model=copy.deepcopy(base),
            args=args,
            train_dataset=bench.task_data,
            alignment_dataset=bench.pairs,
            processing_class=bench.tokenizer,
            data_collator=default_data_collator,
        )

    trainers = {
        "full": new_trainer(FullForwardTrainer, "joint"),
        "early": new_trainer(AlignmentTrainer, "joint"),
        "task": new_trainer(AlignmentTrainer, "none"),
    }
    align = alignment_batches(trainers["early"], 8)
    n_params = sum(p.numel() for p in base.parameters())
    seqs = sorted({b["input_ids"].shape[1] for b in align})
    print(
        f"model: XLMRobertaForTokenClassification, {NUM_LAYERS} layers, hidden {config.hidden_size}, "
        f"{n_params / 1e6:.2f}M parameters, dropout {config.hidden_dropout_prob}"
    )
    print(
        f"batches: task {tuple(bench.batches[0]['input_ids'].shape)} (sentences, tokens); alignment "
        f"{bench.shape.align_pairs} pairs -> ({2 * bench.shape.align_pairs}, {seqs[0]}..{seqs[-1]}) rows x tokens in "
        "one forward; contrastive at layer "
        f"{ALIGNMENT_LAYER} of {NUM_LAYERS}, lambda=1"
    )
    print(
        f"timing: {bench.steps} steps per variant per round, up to {bench.rounds} rounds or {bench.budget:.0f} s, "
        f"order alternating; torch threads {torch.get_num_threads()}"
    )
    steppers = {key: TrainerStepper(trainer, bench.batches) for key, trainer in trainers.items()}
    early_waits = WaitedSteps(steppers["early"].step, trainers["early"].alignment_stream)
    variants = [
        Variant(f"(f) aligned, layer {ALIGNMENT_LAYER}, full forward", lambda n: timed_steps(steppers["full"].step, n)),
        Variant(f"(e) aligned, layer {ALIGNMENT_LAYER}, early exit", early_waits.run),
        Variant("(t) task only", lambda n: timed_steps(steppers["task"].step, n)),
    ]
    interleave(variants, bench.rounds, bench.steps, warmup=1 if bench.quick else 2, budget_s=bench.budget)
    full, early, task = variants

    print("\n-- per-step time (wall clock); ratio = median / median of (f) --")
    print_ratios(variants, full)
    print("\n-- ratios of medians (paired: median over rounds [min-max]) --")
    for top, bottom, meaning in (
        (early, full, "what the early exit saves"),
        (early, task, "aligned step (early exit) over the task-only step"),
        (full, task, "aligned step (full forward) over the task-only step"),
    ):
        paired = [a / b for a, b in zip(top.round_medians, bottom.round_medians)]
        print(
            f"{top.name.split()[0]}/{bottom.name.split()[0]} = {top.wall.median / bottom.wall.median:.3f} "
            f"(paired {statistics.median(paired):.3f} [{min(paired):.3f}-{max(paired):.3f}])  {meaning}"
        )
    print_alignment_batches(bench, trainers["early"].alignment_stream, early_waits, early.wall.median)
    done(bench.wall_start)


def print_alignment_batches(
    bench: Bench, stream: AlignmentStream, early_waits: WaitedSteps, step_seconds: float
) -> None:
    """The waiting share of (e), and one batch's preparation from pre-tokenized rows and from raw rows."""
    timed = early_waits.chunks[1:]  # the first chunk is the warm-up
    waited, stepped = sum(w for w, _ in timed), sum(s for _, s in timed)
    print("\n-- alignment batches (prefetched on a background thread, tokenized once) --")
    print(
        f"waiting share of (e): {waited / stepped:.2%} (goal <= 1%) = {1e3 * waited:.1f} ms waited for alignment "
        f"batches over {1e3 * stepped:.0f} ms of {len(timed) * bench.steps} timed steps"
    )
    # The same stream over the raw rows: the collator tokenizes each batch, as before the change.
    per_batch = AlignmentStream(bench.pairs, stream.collate, batch_size=stream.batch_size, seed=stream.seed)
    positions = {"once": itertools.count(), "per batch": itertools.count()}  # both walk the same batches
    pieces = {
        "batch_at(p), rows tokenized once (the trainer's stream)": measure(
            lambda: stream.batch_at(next(positions["once"])), bench.min_run_time
        ),
        "batch_at(p), raw rows tokenized per batch (before)": measure(
            lambda: per_batch.batch_at(next(positions["per batch"])), bench.min_run_time
        ),
    }
    print("time to prepare one alignment batch, timed alone (share of (e) = a synchronous stream's wait):")
    print_pieces(pieces, step_seconds, "(e)")
    once, raw = (m.median for m in pieces.values())
    print(f"tokenized once / tokenized per batch = {once / raw:.3f}")


if __name__ == "__main__":
    main()
