"""[`AlignmentTrainer`], one module per job.

- `core`: the class and its public surface (construction, `train`, `log`, the optimizer, the hooks to override).
- `step`: the training step (synchronisation, measurement, combining, skipping non-finite steps).
- `stages`: the sequential mode's alignment stage, alignment-only training, and where a run resumes.
- `saving`: what is saved beside the model, the card, the push, loading from a checkpoint or as the best model.
- `engines`: the engines supported (DDP, FSDP2) and those refused.

`AlignmentTrainer` is one class made of a mixin per job (`core.AlignmentTrainer`), so that its methods override
`Trainer`'s, call it through `super()`, and can be overridden in a subclass as before.
"""

from ..files import ALIGNMENT_CONFIG_NAME, ALIGNMENT_LOSSES_NAME, ALIGNMENT_STAGE_DIR, COMBINATION_STATE_NAME
from .core import SHARED_FORWARD, AlignmentTrainer
from .engines import SUPPORTED_FSDP_VERSION
from .stages import AlignmentOnlySteps, alignment_only_arguments

__all__ = [
    "ALIGNMENT_CONFIG_NAME",
    "ALIGNMENT_LOSSES_NAME",
    "ALIGNMENT_STAGE_DIR",
    "COMBINATION_STATE_NAME",
    "SHARED_FORWARD",
    "SUPPORTED_FSDP_VERSION",
    "AlignmentOnlySteps",
    "AlignmentTrainer",
    "alignment_only_arguments",
]
