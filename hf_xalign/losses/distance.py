"""Sentence-level alignment by a distance between paired vectors (MSE, cosine)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import PairedSentenceLoss, register_loss

# The paper of the MSE between paired sentence embeddings (and of the `distill` loss).
MULTILINGUAL_DISTILLATION_CITATION = """\
@inproceedings{reimers-2020-multilingual-sentence-bert,
    title = {Making Monolingual Sentence Embeddings Multilingual using Knowledge Distillation},
    author = {Reimers, Nils and Gurevych, Iryna},
    booktitle = {Proceedings of the 2020 Conference on Empirical Methods in Natural Language Processing (EMNLP)},
    year = {2020},
    publisher = {Association for Computational Linguistics},
    url = {https://arxiv.org/abs/2004.09813},
}
"""


class _PairedDistanceLoss(PairedSentenceLoss):
    """The losses of a distance between paired sentence vectors, from one paper."""

    @property
    def citation(self) -> str:
        return MULTILINGUAL_DISTILLATION_CITATION


@register_loss("mse")
class MSELoss(_PairedDistanceLoss):
    r"""Mean squared distance between the sentence vectors of translations.

    $$L = \frac{1}{B\,d}\sum_{i=1}^{B}\lVert x_i - y_i\rVert_2^2$$
    for $B$ pairs of $d$-dimensional source/target vectors $x_i$, $y_i$.

    Args:
        layer (`int`, *optional*, defaults to `-1`): the layer to pool
            ([`hf_xalign.layers`]: 0 = embedding output, `-1` = last block).
        pooling (`str`, *optional*, defaults to `"mean"`): `"mean"` or `"cls"`.

    Relations: scale-sensitive (it can shrink all vectors); see [`CosineLoss`] for the
    scale-free variant and [`ContrastiveLoss`] for one with negatives.

    References:
        - Reimers & Gurevych, 2020, "Making Monolingual Sentence Embeddings Multilingual using
          Knowledge Distillation" (MSE between paired sentence embeddings).
    """

    def compute_loss_from_embeddings(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(src, tgt)


@register_loss("cosine")
class CosineLoss(_PairedDistanceLoss):
    r"""One minus the cosine similarity of translations' sentence vectors.

    $$L = \frac{1}{B}\sum_{i=1}^{B}\Big(1 - \frac{x_i\cdot y_i}{\lVert x_i\rVert\,\lVert y_i\rVert}\Big)$$

    Args:
        layer (`int`, *optional*, defaults to `-1`): the layer to pool
            ([`hf_xalign.layers`]: 0 = embedding output, `-1` = last block).
        pooling (`str`, *optional*, defaults to `"mean"`): `"mean"` or `"cls"`.

    Relations: like [`MSELoss`] without the scale; no negatives (see [`ContrastiveLoss`]).
    """

    def compute_loss_from_embeddings(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        return (1 - F.cosine_similarity(src, tgt, dim=-1)).mean()
