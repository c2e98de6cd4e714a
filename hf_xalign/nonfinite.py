"""Non-finite losses: stop with the step and the loss named, or skip up to `skip_nonfinite_steps` steps.

A skipped optimizer step applies no update: [`AlignmentTrainer`] drops every gradient of the step
(all micro-steps of it under gradient accumulation) by setting it to `None`, so torch optimizers
leave the parameters and their state (moments, step counts) as they were. The step still counts:
`global_step` and the learning-rate schedule advance, and the task and parallel batches of the step
are not replayed. Nothing of the step reaches the logged losses, the gradient measurement
(`conflict.jsonl`) or the state of the combining rules (GradVac targets, adaptive λ).
"""

from __future__ import annotations

import logging
from typing import Any

import torch

logger = logging.getLogger(__name__)

SKIPPED_STEPS_LOG_KEY = "skipped_nonfinite_steps"


class NonfiniteSteps:
    """The non-finite losses of the current optimizer step, and the steps skipped so far.

    Args:
        budget (`int`): how many steps may be skipped in the whole run (`skip_nonfinite_steps`); the next
            one raises.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.skipped: list[int] = []
        self.bad_losses: dict[str, float] = {}

    def start_step(self) -> None:
        self.bad_losses = {}

    @property
    def step_is_bad(self) -> bool:
        """Whether a loss of the current step on this process was not finite."""
        return bool(self.bad_losses)

    def all_finite(self, losses: dict[str, torch.Tensor], step: int) -> bool:
        """Whether every loss in `losses` (name -> scalar) is finite; one device synchronisation.

        Non-finite ones are remembered for the step. With no skip left, raises at once.

        Raises:
            `FloatingPointError`: a loss is not finite and `budget` steps were already skipped.
        """
        values = torch.stack([value.detach().float().reshape(()) for value in losses.values()])
        finite = torch.isfinite(values)
        if bool(finite.all()):
            return True
        for (name, value), ok in zip(losses.items(), finite.tolist()):
            if not ok:
                self.bad_losses[name] = value.item()
        if len(self.skipped) >= self.budget:
            raise self.error(step)
        return False

    def skip(self, step: int) -> None:
        """Count optimizer step `step` as skipped, with a warning; raises if no skip is left.

        Raises:
            `FloatingPointError`: `budget` steps were already skipped.
        """
        if len(self.skipped) >= self.budget:
            raise self.error(step)
        self.skipped.append(step)
        logger.warning(
            f"Skipping optimizer step {step}: {self._describe()}; no update from this step "
            f"({len(self.skipped)} of skip_nonfinite_steps={self.budget} used)."
        )

    def error(self, step: int) -> FloatingPointError:
        used = f" after skipping {len(self.skipped)} step(s) ({self.skipped})" if self.skipped else ""
        return FloatingPointError(
            f"Non-finite loss at optimizer step {step}: {self._describe()}{used}. Checkpoints already saved are kept. "
            "Lower the learning rate or alignment_lambda, raise alignment_temperature, check the data of this step, "
            f"or let up to N such steps be skipped with skip_nonfinite_steps=N (now {self.budget})."
        )

    def _describe(self) -> str:
        if not self.bad_losses:  # flagged by another process of a distributed run
            return "a loss was not finite on another process"
        return ", ".join(f"{name} = {value}" for name, value in self.bad_losses.items())

    def state_dict(self) -> dict[str, Any]:
        return {"skipped_steps": list(self.skipped)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.skipped = [int(step) for step in state["skipped_steps"]]
