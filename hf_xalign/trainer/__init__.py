"""[`AlignmentTrainer`]: the class is in `core` (the next commits split it by job)."""

from .core import (
    ALIGNMENT_CONFIG_NAME,
    ALIGNMENT_LOSSES_NAME,
    ALIGNMENT_STAGE_DIR,
    COMBINATION_STATE_NAME,
    SHARED_FORWARD,
    SUPPORTED_FSDP_VERSION,
    AlignmentOnlySteps,
    AlignmentTrainer,
)

__all__ = [
    "ALIGNMENT_CONFIG_NAME",
    "ALIGNMENT_LOSSES_NAME",
    "ALIGNMENT_STAGE_DIR",
    "COMBINATION_STATE_NAME",
    "SHARED_FORWARD",
    "SUPPORTED_FSDP_VERSION",
    "AlignmentOnlySteps",
    "AlignmentTrainer",
]
