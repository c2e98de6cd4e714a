"""Distillation: the student's target-language vectors toward a frozen teacher's source vectors."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..pooling import ParallelEncoding, Pooling, layer_states, pool
from .base import SingleLayerLoss, frozen_copy, hold_unregistered, register_loss
from .distance import MULTILINGUAL_DISTILLATION_CITATION


@register_loss("distill")
class DistillationLoss(SingleLayerLoss):
    r"""Multilingual knowledge distillation (Reimers & Gurevych, 2020).

    With a frozen teacher $T$ (by default the encoder as it was when training started) and
    the student $S$ being trained, over $B$ pairs $(s_i, t_i)$ of $d$-dimensional vectors:

    $$L = \frac{1}{B\,d}\sum_{i=1}^{B}\Big(\lVert S(s_i) - T(s_i)\rVert_2^2 + \lVert S(t_i) - T(s_i)\rVert_2^2\Big)$$

    Args:
        layer (`int`, *optional*, defaults to `-1`): the layer to pool, for student and teacher
            ([`hf_xalign.layers`]: 0 = embedding output, `-1` = last block).
        pooling (`str`, *optional*, defaults to `"mean"`): `"mean"` or `"cls"`.
        teacher (`nn.Module`, *optional*): a bare encoder with the same tokenizer; defaults to a
            frozen copy of the model's encoder taken at [`setup`]. It is never trained nor saved.

    References:
        - Reimers & Gurevych, 2020, "Making Monolingual Sentence Embeddings Multilingual using Knowledge Distillation".
    """

    def __init__(self, layer: int = -1, pooling: Pooling = "mean", teacher: nn.Module | None = None) -> None:
        super().__init__(layer)
        self.pooling = pooling
        if teacher is not None:
            hold_unregistered(self, "teacher", frozen_copy(teacher))

    @property
    def citation(self) -> str:
        return MULTILINGUAL_DISTILLATION_CITATION

    def setup(self, model: nn.Module) -> None:
        if getattr(self, "teacher", None) is None:
            hold_unregistered(self, "teacher", frozen_copy(model.base_model))

    def forward(self, encoding: ParallelEncoding) -> torch.Tensor:
        pairs = encoding.num_pairs
        batch = encoding.batch
        with torch.no_grad():
            teacher_states = layer_states(  # (pairs, seq, dim); the teacher's upper blocks do not run
                self.teacher, batch["input_ids"][:pairs], batch["attention_mask"][:pairs], self.layer
            )
            mask = encoding.content_mask()[:pairs]  # (pairs, seq)
            teacher_src = pool(teacher_states, mask, self.pooling)  # (pairs, dim)
        student_src, student_tgt = encoding.sentence_embeddings(self.layer, self.pooling)
        return self.compute_loss_from_embeddings(student_src, student_tgt, teacher_src)

    @staticmethod
    def compute_loss_from_embeddings(
        student_src: torch.Tensor, student_tgt: torch.Tensor, teacher_src: torch.Tensor
    ) -> torch.Tensor:
        """The loss from student source/target and teacher source vectors, each `(pairs, dim)`."""
        return F.mse_loss(student_src, teacher_src) + F.mse_loss(student_tgt, teacher_src)
