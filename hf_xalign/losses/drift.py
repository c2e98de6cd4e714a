"""Drift regularisation: stay near the starting model."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from ..pooling import ParallelEncoding, layer_states
from .base import SingleLayerLoss, frozen_copy, hold_unregistered, register_loss

L2_SP_CITATION = """\
@inproceedings{li2018explicit,
    title = {Explicit Inductive Bias for Transfer Learning with Convolutional Networks},
    author = {Li, Xuhong and Grandvalet, Yves and Davoine, Franck},
    booktitle = {Proceedings of the 35th International Conference on Machine Learning (ICML)},
    series = {Proceedings of Machine Learning Research},
    volume = {80},
    year = {2018},
    url = {https://proceedings.mlr.press/v80/li18a.html},
}
"""


@register_loss("drift")
class DriftLoss(SingleLayerLoss):
    r"""Penalises moving away from the model as it was when training started.

    `target="representations"`: mean squared distance between the current and the starting
    encoder's token states at `layer`, over the $N$ non-special tokens of both sides of the
    parallel batch ($d$ = hidden size):

    $$L = \frac{1}{N\,d}\sum_{t}\lVert h_t - h^{0}_t\rVert_2^2$$

    `target="weights"`: the L2-SP penalty over the encoder's parameters,
    $L = \sum_p \lVert\theta_p - \theta^0_p\rVert_2^2$.

    Used alone it measures how far a run drifts; combined with an alignment loss it keeps the
    alignment from destroying what the pretrained model knew (Cao et al., 2020 use the
    representation form as their regulariser).

    Args:
        layer (`int`, *optional*, defaults to `-1`): the layer compared, for `"representations"`
            ([`hf_xalign.layers`]: 0 = embedding output, `-1` = last block).
        target (`str`, *optional*, defaults to `"representations"`): `"representations"` or `"weights"`.

    References:
        - Cao, Kitaev & Klein, 2020, "Multilingual Alignment of Contextual Word Representations".
        - Li, Grandvalet & Davoine, 2018, "Explicit Inductive Bias for Transfer Learning with CNNs" (L2-SP).
    """

    def __init__(self, layer: int = -1, target: Literal["representations", "weights"] = "representations") -> None:
        super().__init__(layer)
        if target not in ("representations", "weights"):
            raise ValueError(f"target must be 'representations' or 'weights', got {target!r}.")
        self.target = target

    @property
    def citation(self) -> str:
        return L2_SP_CITATION

    def setup(self, model: nn.Module) -> None:
        encoder = model.base_model
        hold_unregistered(self, "encoder", encoder)
        hold_unregistered(self, "reference", frozen_copy(encoder))

    def reads_shared_forward(self) -> bool:
        return self.target == "representations"

    def forward(self, encoding: ParallelEncoding) -> torch.Tensor:
        if self.target == "weights":
            return self.weight_drift()
        batch = encoding.batch
        with torch.no_grad():
            # (rows, seq, dim); the reference's upper blocks do not run
            reference_states = layer_states(self.reference, batch["input_ids"], batch["attention_mask"], self.layer)
        return self.compute_loss_from_states(encoding.layer(self.layer), reference_states, encoding.content_mask())

    @staticmethod
    def compute_loss_from_states(
        states: torch.Tensor, reference: torch.Tensor, token_mask: torch.Tensor
    ) -> torch.Tensor:
        """Mean squared distance over the tokens where `token_mask` is 1; states `(rows, seq, dim)`."""
        selected = token_mask.bool()  # (rows, seq)
        return (states[selected] - reference[selected]).pow(2).mean()

    def weight_drift(self) -> torch.Tensor:
        current = dict(self.encoder.named_parameters())
        return sum((current[name] - start).pow(2).sum() for name, start in self.reference.named_parameters())
