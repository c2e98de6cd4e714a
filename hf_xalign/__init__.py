"""hf-xalign: cross-lingual alignment of multilingual encoders as a `transformers.Trainer` extension."""

from .args import AlignmentTrainingArguments
from .losses import AlignmentLoss, get_loss, register_loss
from .trainer import AlignmentTrainer

__version__ = "0.1.0"

__all__ = ["AlignmentLoss", "AlignmentTrainer", "AlignmentTrainingArguments", "get_loss", "register_loss"]
