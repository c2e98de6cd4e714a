"""Stages: the sequential mode's alignment stage, alignment-only training, and where a run resumes."""

from __future__ import annotations

import copy
import os
from typing import Any

import torch
from transformers import (
    EarlyStoppingCallback,
    IntervalStrategy,
    TrainerState,
)
from transformers.trainer_utils import SaveStrategy

from ..args import AlignmentTrainingArguments
from ..checkpoints import TRAINER_STATE_NAME, check_checkpoint_complete, last_complete_checkpoint
from ..files import ALIGNMENT_STAGE_DIR


class AlignmentOnlySteps(torch.utils.data.Dataset):
    """Placeholder task data for steps that run alignment alone: `length` empty rows.

    The Trainer's loop draws one (ignored) batch of it per micro-step, which keeps its step
    counting, checkpointing and resuming unchanged.
    """

    def __init__(self, length: int) -> None:
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {}


def _collate_alignment_only(rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    return {"alignment_only_rows": torch.tensor(len(rows))}


def alignment_only_arguments(
    args: AlignmentTrainingArguments, output_dir: str | None = None, max_steps: int | None = None
) -> AlignmentTrainingArguments:
    """The arguments of training alignment alone, from a run's: the sequential mode's alignment stage and
    [`~hf_xalign.experiment.align_encoder`] both train with them.

    Args:
        args ([`AlignmentTrainingArguments`]): the run's arguments; left as they are.
        output_dir (`str`, *optional*): where the alignment-only training writes; defaults to `args.output_dir`.
        max_steps (`int`, *optional*): its length; defaults to `args.max_steps`.

    Off, because alignment alone has no task: evaluation, so no best model to keep or load (checkpoints, for a
    resume, follow the save strategy; `best` has no metric: no checkpoints); the gradient measurement and the
    combining rules, which compare with a task gradient; and the Hub push: the folder is not the finished model
    (the stage's is inside the task's `output_dir`; `align_encoder` records the objective before it pushes).

    A shallow copy, not `dataclasses.replace`: rebuilding the arguments runs `__post_init__`, whose device setup
    resets accelerate's shared `AcceleratorState`, which a trainer built on `args` reads. The copy keeps the
    resolved device and distributed state.
    """
    aligning = copy.copy(args)
    aligning.output_dir = output_dir if output_dir is not None else args.output_dir
    aligning.max_steps = max_steps if max_steps is not None else args.max_steps
    aligning.eval_strategy = IntervalStrategy.NO
    aligning.load_best_model_at_end = False
    if aligning.save_strategy == SaveStrategy.BEST:
        aligning.save_strategy = SaveStrategy.NO
    aligning.conflict_every = 0
    aligning.gradient_combination = "sum"
    aligning.push_to_hub = False
    return aligning


class StagesMixin:
    """[`AlignmentTrainer`]'s stages: the sequential mode's alignment stage before the task stage, and which stage
    a `resume_from_checkpoint` resumes. Mixed into `AlignmentTrainer`."""

    @staticmethod
    def _alignment_only_data(args: AlignmentTrainingArguments, steps: int) -> tuple[AlignmentOnlySteps, Any]:
        rows = steps * args.gradient_accumulation_steps * args.per_device_train_batch_size * max(args.world_size, 1)
        return AlignmentOnlySteps(rows), _collate_alignment_only

    def _train_stages(self, resume_from_checkpoint: str | bool | None, **kwargs: Any):
        if not self.alignment_stage:
            resume = _complete_resume_point(resume_from_checkpoint, self.args.output_dir)
            return super().train(resume_from_checkpoint=resume, **kwargs)
        stage_args = self._alignment_stage_args()
        resume_stage, resume_task = _split_resume(resume_from_checkpoint, self.args.output_dir, stage_args.output_dir)
        if resume_task is None:
            self._run_alignment_stage(stage_args, resume_stage, **kwargs)
        else:
            self.alignment_stage_log_history = _saved_log_history(stage_args.output_dir)
        self.alignment_stage = False
        self.optimizer, self.lr_scheduler = None, None  # the task stage starts with a fresh optimizer
        return super().train(resume_from_checkpoint=resume_task, **kwargs)

    def _alignment_stage_args(self) -> AlignmentTrainingArguments:
        """The alignment stage's own arguments: alignment-only training in `output_dir/_alignment_stage`, for
        `alignment_steps` steps. The user's arguments stay as they were."""
        stage_dir = os.path.join(self.args.output_dir, ALIGNMENT_STAGE_DIR)
        return alignment_only_arguments(self.args, stage_dir, self.alignment_args.alignment_steps)

    def _run_alignment_stage(self, stage_args: AlignmentTrainingArguments, resume: str | None, **kwargs: Any) -> None:
        """Trains the stage on its own arguments and alignment-only steps, then puts back the task's."""
        task_settings = (self.args, self.train_dataset, self.data_collator)
        self.args = stage_args
        self.train_dataset, self.data_collator = self._alignment_only_data(stage_args, stage_args.max_steps)
        # Early stopping watches the task's evaluations, which the stage does not run (and it refuses a run
        # without them): it sits the stage out.
        early_stopping = [c for c in self.callback_handler.callbacks if isinstance(c, EarlyStoppingCallback)]
        for callback in early_stopping:
            self.remove_callback(callback)
        try:
            super().train(resume_from_checkpoint=resume, **kwargs)
            if task_settings[0].save_strategy != SaveStrategy.NO:
                # The stage's log history, for a run later resumed from a task-stage checkpoint.
                os.makedirs(stage_args.output_dir, exist_ok=True)
                self.save_state()
            self.alignment_stage_log_history = list(self.state.log_history)
        finally:
            self.args, self.train_dataset, self.data_collator = task_settings
            for callback in early_stopping:
                self.add_callback(callback)


def _saved_log_history(output_dir: str) -> list[dict[str, Any]]:
    """The log history a finished run saved in `output_dir` (`Trainer.save_state`); empty if none."""
    path = os.path.join(output_dir, TRAINER_STATE_NAME)
    return TrainerState.load_from_json(path).log_history if os.path.isfile(path) else []


def _complete_resume_point(resume: str | bool | None, output_dir: str) -> str | bool | None:
    """`resume_from_checkpoint` with `True` resolved to the last checkpoint written completely in `output_dir`.

    A folder named explicitly must be complete too; anything else goes to Trainer as given.
    """
    if resume is True:
        checkpoint = last_complete_checkpoint(output_dir)
        if checkpoint is None:
            # Trainer's message first, so that code matching it still does; then why a folder may not count.
            raise ValueError(
                f"No valid checkpoint found in output directory ({output_dir}): no checkpoint there was written "
                f"completely ({TRAINER_STATE_NAME} last)."
            )
        return checkpoint
    if isinstance(resume, str) and os.path.isdir(resume):
        check_checkpoint_complete(resume)
    return resume


def _split_resume(resume: str | bool | None, output_dir: str, stage_dir: str) -> tuple[str | None, str | None]:
    """Which stage a `resume_from_checkpoint` value resumes: `(alignment stage ckpt, task stage ckpt)`."""
    if resume is None or resume is False:
        return None, None
    if resume is True:
        task = last_complete_checkpoint(output_dir)
        if task is not None:
            return None, task
        stage = last_complete_checkpoint(stage_dir)
        if stage is None:
            raise ValueError(
                f"No valid checkpoint found in output directory ({output_dir}), nor in the alignment stage's "
                f"({stage_dir}): no checkpoint there was written completely ({TRAINER_STATE_NAME} last)."
            )
        return stage, None
    resume = _complete_resume_point(resume, output_dir)
    resume = os.path.abspath(resume)
    if os.path.commonpath([resume, os.path.abspath(stage_dir)]) == os.path.abspath(stage_dir):
        return resume, None
    return None, resume
