"""The weight λ of the alignment loss as a function of the optimizer step."""

from __future__ import annotations

from collections.abc import Sequence

LAMBDA_SCHEDULES: tuple[str, ...] = ("constant", "linear_warmup", "linear_decay", "step")


def alignment_lambda_at(
    step: int,
    base: float,
    schedule: str = "constant",
    warmup_steps: int = 0,
    total_steps: int = 0,
    milestones: Sequence[int] = (),
    milestone_values: Sequence[float] = (),
) -> float:
    """λ at optimizer step `step` (0-based: the step being computed).

    - `constant`: `base`.
    - `linear_warmup`: `base * min(1, (step + 1) / warmup_steps)`, rising over the first `warmup_steps` steps.
    - `linear_decay`: `base * max(0, 1 - step / total_steps)`, from `base` at step 0 to 0 at the end.
    - `step`: `base` before `milestones[0]`, then `milestone_values[i]` from step `milestones[i]` on.
    """
    if schedule == "constant":
        return base
    if schedule == "linear_warmup":
        return base if warmup_steps <= 0 else base * min(1.0, (step + 1) / warmup_steps)
    if schedule == "linear_decay":
        return base if total_steps <= 0 else base * max(0.0, 1.0 - step / total_steps)
    if schedule == "step":
        value = base
        for milestone, milestone_value in zip(milestones, milestone_values):
            if step >= milestone:
                value = milestone_value
        return value
    raise ValueError(f"Unknown alignment_lambda_schedule {schedule!r}; choose one of {LAMBDA_SCHEDULES}.")
