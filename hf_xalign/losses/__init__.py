"""Alignment losses. Each is an `nn.Module` registered under a name (see `LOSS_REGISTRY`)."""

from .base import (
    LOSS_REGISTRY,
    AlignmentLoss,
    PairedSentenceLoss,
    SingleLayerLoss,
    get_loss,
    get_loss_class,
    register_loss,
)
from .contrastive import ContrastiveLoss
from .distance import CosineLoss, MSELoss
from .distill import DistillationLoss
from .drift import DriftLoss
from .mlm import MaskedLMHead, MaskedLMLoss, TranslationLMLoss, pretrained_head_state
from .token import TokenAlignmentLoss, mutual_argmax_links

__all__ = [
    "LOSS_REGISTRY",
    "AlignmentLoss",
    "ContrastiveLoss",
    "CosineLoss",
    "DistillationLoss",
    "DriftLoss",
    "MSELoss",
    "MaskedLMHead",
    "MaskedLMLoss",
    "PairedSentenceLoss",
    "SingleLayerLoss",
    "TokenAlignmentLoss",
    "TranslationLMLoss",
    "get_loss",
    "get_loss_class",
    "mutual_argmax_links",
    "pretrained_head_state",
    "register_loss",
]
