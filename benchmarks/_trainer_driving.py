"""Two ways of running an `AlignmentTrainer` step by step for timing: by hand, or inside `Trainer.train`."""

from __future__ import annotations

import time

import _environment  # noqa: F401  (first: it switches the Hugging Face libraries offline)
import torch
import transformers

from hf_xalign import AlignmentTrainer


class TrainerStepper:
    """One optimizer step of an `AlignmentTrainer` without `Trainer.train`'s loop around it.

    Runs what `Trainer._run_epoch` runs at a sync step with no clipping, minus callbacks,
    logging and the gradient-norm report: `training_step`, `optimizer.step()`,
    `lr_scheduler.step()`, `model.zero_grad()`, `global_step += 1`.
    """

    def __init__(self, trainer: AlignmentTrainer, batches: list[dict[str, torch.Tensor]]) -> None:
        self.trainer = trainer
        self.batches = batches
        trainer.create_optimizer_and_scheduler(num_training_steps=10**6)
        trainer.current_gradient_accumulation_steps = 1
        trainer.state.max_steps = 10**6
        trainer.accelerator.sync_gradients = True
        # Under bf16 `Trainer.train` runs the model that `accelerator.prepare` returns, its forward under autocast.
        self.model = trainer.accelerator.prepare_model(trainer.model) if trainer.args.bf16 else trainer.model
        self.model.train()

    @property
    def step_index(self) -> int:
        return self.trainer.state.global_step

    def step(self) -> None:
        trainer, model = self.trainer, self.model
        inputs = self.batches[self.step_index % len(self.batches)]
        trainer.training_step(model, inputs)
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
        model.zero_grad()
        trainer.state.global_step += 1


class StepClock(transformers.TrainerCallback):
    """`(wall, cpu)` stamps at each optimizer step's end inside `Trainer.train` (the whole loop per step)."""

    def __init__(self) -> None:
        self.stamps: list[tuple[float, float]] = []

    def on_train_begin(self, args, state, control, **kwargs):
        self.stamps = []

    def on_step_end(self, args, state, control, **kwargs):
        self.stamps.append((time.perf_counter(), time.process_time()))


def train_loop_chunk(trainer: AlignmentTrainer, clock: StepClock, steps: int) -> list[tuple[float, float]]:
    """Run `trainer.train()` for `steps + 1` steps; per-step times are the gaps between step ends,
    so the set-up of `train()` and its first step are not counted."""
    trainer.args.max_steps = steps + 1
    trainer.train()
    return [(b[0] - a[0], b[1] - a[1]) for a, b in zip(clock.stamps, clock.stamps[1:])]
