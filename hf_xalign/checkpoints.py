"""Resuming from the last checkpoint that was written completely.

`transformers` (5.x) writes a checkpoint straight into `output_dir/checkpoint-N`, with no temporary
name, and its `get_last_checkpoint` returns the highest `N` whatever the folder holds: a run killed
while saving leaves a half-written `checkpoint-N` that `resume_from_checkpoint=True` would pick,
then fail on (or, with the weights but not the optimizer written, resume from without its optimizer
state). `Trainer._save_checkpoint` writes `trainer_state.json` last, after the model, the
loss-owned heads, the optimizer, scheduler, scaler and RNG states; so a checkpoint is complete
when its `trainer_state.json` reads as JSON and names the folder's step. [`last_complete_checkpoint`]
is what [`AlignmentTrainer`] resumes from for `resume_from_checkpoint=True`.
"""

from __future__ import annotations

import json
import logging
import os
import re

from ._compat import checkpoint_prefix, trainer_state_name

logger = logging.getLogger(__name__)

TRAINER_STATE_NAME = trainer_state_name()
PREFIX_CHECKPOINT_DIR = checkpoint_prefix()

_CHECKPOINT_FOLDER = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")


def incomplete_checkpoint_reason(checkpoint: str) -> str | None:
    """Why `checkpoint` (a `checkpoint-N` folder) was not written completely, or `None` if it was."""
    path = os.path.join(checkpoint, TRAINER_STATE_NAME)
    if not os.path.isfile(path):
        return f"{TRAINER_STATE_NAME}, written last, is missing"
    try:
        with open(path, encoding="utf-8") as f:
            step = json.load(f).get("global_step")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return f"{TRAINER_STATE_NAME} is cut short or not JSON"
    match = _CHECKPOINT_FOLDER.match(os.path.basename(os.path.normpath(checkpoint)))
    if match is not None and step != int(match.group(1)):
        return f"{TRAINER_STATE_NAME} records step {step}, not {match.group(1)}"
    return None


def last_complete_checkpoint(folder: str) -> str | None:
    """The `checkpoint-N` folder in `folder` with the highest `N` that was written completely; `None` if none.

    Incomplete ones (a run killed while saving) are passed over with a warning that names them.
    """
    if not os.path.isdir(folder):
        return None
    steps = {
        int(match.group(1)): os.path.join(folder, name)
        for name in os.listdir(folder)
        if (match := _CHECKPOINT_FOLDER.match(name)) and os.path.isdir(os.path.join(folder, name))
    }
    for step in sorted(steps, reverse=True):
        reason = incomplete_checkpoint_reason(steps[step])
        if reason is None:
            return steps[step]
        logger.warning(f"Not resuming from {steps[step]}: it was not written completely ({reason}).")
    return None


def check_checkpoint_complete(checkpoint: str) -> None:
    """Raise a clear error if the checkpoint named for a resume was not written completely.

    Raises:
        `ValueError`: the folder lacks a readable `trainer_state.json` for its step.
    """
    reason = incomplete_checkpoint_reason(checkpoint)
    if reason is not None:
        raise ValueError(
            f"Cannot resume from {checkpoint}: it was not written completely ({reason}); the run was probably "
            "stopped while saving it. Resume from an earlier checkpoint, or with resume_from_checkpoint=True, "
            "which takes the last complete one."
        )
