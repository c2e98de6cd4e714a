"""hf-xalign: cross-lingual alignment of multilingual encoders as a `transformers.Trainer` extension."""

from .args import AlignmentConfig, AlignmentTrainingArguments
from .hub import load_aligned, push_aligned
from .losses import AlignmentLoss, get_loss, register_loss
from .trainer import AlignmentTrainer
from .version import __version__

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
