"""Sentence-level contrastive alignment (symmetric InfoNCE)."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

from ..pooling import Pooling
from .base import PairedSentenceLoss, register_loss

INFO_NCE_CITATION = """\
@misc{oord2018representation,
    title = {Representation Learning with Contrastive Predictive Coding},
    author = {van den Oord, Aaron and Li, Yazhe and Vinyals, Oriol},
    year = {2018},
    eprint = {1807.03748},
    archivePrefix = {arXiv},
    url = {https://arxiv.org/abs/1807.03748},
}
"""


@register_loss("contrastive")
class ContrastiveLoss(PairedSentenceLoss):
    r"""Symmetric InfoNCE between translations, with the other pairs of the batch as negatives.

    With sentence vectors $x_i$ (source) and $y_i$ (target) of $B$ pairs and cosine similarity
    $s(a, b)$:

    $$L = \frac{1}{2B}\sum_{i=1}^{B}\Big[-\log\frac{e^{s(x_i,y_i)/\tau}}{\sum_j e^{s(x_i,y_j)/\tau}}
          -\log\frac{e^{s(y_i,x_i)/\tau}}{\sum_j e^{s(y_i,x_j)/\tau}}\Big]$$

    Args:
        layer (`int`, *optional*, defaults to `-1`): the layer to pool
            ([`hf_xalign.layers`]: 0 = embedding output, `-1` = last block).
        pooling (`str`, *optional*, defaults to `"mean"`): `"mean"` over non-special tokens or `"cls"`.
        temperature (`float`, *optional*, defaults to `0.05`): $\tau$; smaller = sharper, harder negatives.
        gather_across_devices (`bool`, *optional*, defaults to `False`): under torch.distributed, use the
            pairs of every process as negatives (autograd-aware all_gather).

    Inputs:
        | batch views | labels |
        |---|---|
        | source and target sentences (one forward) | none: row $i$ of each side is a translation pair |

    Relations: [`MSELoss`] and [`CosineLoss`] pull pairs together without negatives, which
    lets all sentences collapse together; InfoNCE also pushes non-translations apart.

    References:
        - van den Oord et al., 2018, "Representation Learning with Contrastive Predictive Coding".
        - Hu et al., 2021, "Explicit Alignment Objectives for Multilingual Bidirectional Encoders" (AMBER).

    Example:
        ```python
        >>> loss = ContrastiveLoss(temperature=0.1)
        >>> src, tgt = torch.randn(4, 8), torch.randn(4, 8)
        >>> loss.compute_loss_from_embeddings(src, tgt).shape
        torch.Size([])
        ```
    """

    def __init__(
        self, layer: int = -1, pooling: Pooling = "mean", temperature: float = 0.05, gather_across_devices: bool = False
    ) -> None:
        super().__init__(layer, pooling)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}.")
        self.temperature = temperature
        self.gather_across_devices = gather_across_devices

    @property
    def citation(self) -> str:
        return INFO_NCE_CITATION

    def compute_loss_from_embeddings(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        src = F.normalize(src, dim=-1)
        tgt = F.normalize(tgt, dim=-1)
        src_candidates, tgt_candidates, offset = src, tgt, 0
        if self.gather_across_devices and dist.is_available() and dist.is_initialized():
            src_candidates, tgt_candidates, offset = _gather_candidates(src, tgt)
        labels = torch.arange(src.shape[0], device=src.device) + offset  # (pairs,)
        src_to_tgt = src @ tgt_candidates.T / self.temperature  # (pairs, all pairs)
        tgt_to_src = tgt @ src_candidates.T / self.temperature  # (pairs, all pairs)
        return (F.cross_entropy(src_to_tgt, labels) + F.cross_entropy(tgt_to_src, labels)) / 2


def _gather_candidates(src: torch.Tensor, tgt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """All processes' sentence vectors (gradients flow back to each owner) and this rank's label offset."""
    from torch.distributed.nn.functional import all_gather

    src_all = torch.cat(all_gather(src), dim=0)  # (world * pairs, dim)
    tgt_all = torch.cat(all_gather(tgt), dim=0)  # (world * pairs, dim)
    return src_all, tgt_all, dist.get_rank() * src.shape[0]
