"""hf-xalign: cross-lingual alignment of multilingual encoders as a `transformers.Trainer` extension.

The public names are imported on first use (`hf_xalign/_lazy.py`): `import hf_xalign` loads neither torch nor
transformers, so commands that only parse, list or check start at once.
"""

from typing import TYPE_CHECKING

from ._lazy import lazy_exports
from .version import __version__

_EXPORTS = {
    "args": ["AlignmentConfig", "AlignmentTrainingArguments"],
    "hub": ["load_aligned", "push_aligned"],
    "losses": ["AlignmentLoss", "get_loss", "register_loss"],
    "trainer": ["AlignmentTrainer"],
}

__all__ = [
    "AlignmentConfig",
    "AlignmentLoss",
    "AlignmentTrainer",
    "AlignmentTrainingArguments",
    "__version__",
    "get_loss",
    "load_aligned",
    "push_aligned",
    "register_loss",
]

if TYPE_CHECKING:
    from .args import AlignmentConfig, AlignmentTrainingArguments
    from .hub import load_aligned, push_aligned
    from .losses import AlignmentLoss, get_loss, register_loss
    from .trainer import AlignmentTrainer

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
