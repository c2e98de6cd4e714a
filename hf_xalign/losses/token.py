"""Word-level alignment over aligned word pairs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F

from ..pooling import ParallelEncoding
from .base import SingleLayerLoss, register_loss

WORD_ALIGNMENT_CITATION = """\
@inproceedings{cao2020multilingual,
    title = {Multilingual Alignment of Contextual Word Representations},
    author = {Cao, Steven and Kitaev, Nikita and Klein, Dan},
    booktitle = {International Conference on Learning Representations (ICLR)},
    year = {2020},
    url = {https://openreview.net/forum?id=r1xCMyBtPS},
}
"""


TOKEN_DISTANCES: tuple[str, ...] = ("l2", "cosine")


@register_loss("token")
class TokenAlignmentLoss(SingleLayerLoss):
    r"""Pulls the vectors of aligned words together.

    A word's vector is the mean of its sub-token states at `layer`. With the set $P$ of
    aligned word pairs $(b, i, j)$ (pair $b$, source word $i$, target word $j$):

    $$L = \frac{1}{|P|}\sum_{(b,i,j)\in P} d\big(w^{src}_{b,i},\, w^{tgt}_{b,j}\big),\qquad
      d(u, v) = \lVert u - v\rVert_2^2 \ \text{(`"l2"`)} \ \text{or}\ 1 - \cos(u, v)\ \text{(`"cosine"`)}$$

    Links come from the data (`alignment` column, `"i-j"` over whitespace words). A pair with
    no links is aligned by mutual similarity argmax on the current (detached) vectors:
    $(i, j)$ is kept when $j = \arg\max_{j'} \cos(w_i, w_{j'})$ and $i = \arg\max_{i'} \cos(w_{i'}, w_j)$,
    as SimAlign's "ArgMax" method.

    Args:
        layer (`int`, *optional*, defaults to `-1`): the layer of the word vectors
            ([`hf_xalign.layers`]: 0 = embedding output, `-1` = last block).
        distance (`str`, *optional*, defaults to `"l2"`): `"l2"` (squared Euclidean, as Cao et al.) or `"cosine"`.

    Inputs:
        | batch views | labels |
        |---|---|
        | source and target sentences (one forward), `word_ids` | word links per pair, or none |

    References:
        - Cao, Kitaev & Klein, 2020, "Multilingual Alignment of Contextual Word Representations".
        - Jalili Sabet et al., 2020, "SimAlign: High Quality Word Alignments without Parallel Training Data".
    """

    requires = frozenset({"word_ids"})

    def __init__(self, layer: int = -1, distance: Literal["l2", "cosine"] = "l2") -> None:
        super().__init__(layer)
        if distance not in TOKEN_DISTANCES:
            raise ValueError(f"distance must be 'l2' or 'cosine', got {distance!r}.")
        self.distance = distance

    @property
    def citation(self) -> str:
        return WORD_ALIGNMENT_CITATION

    def forward(self, encoding: ParallelEncoding) -> torch.Tensor:
        src_words, tgt_words = encoding.word_embeddings(self.layer)  # (pairs, words, dim) each
        word_ids = encoding.batch["word_ids"]
        pairs = encoding.num_pairs
        src_counts = word_ids[:pairs].max(dim=1).values + 1  # (pairs,) words per source sentence
        tgt_counts = word_ids[pairs:].max(dim=1).values + 1
        links = encoding.batch.get("alignment") or [[] for _ in range(pairs)]
        return self.compute_loss_from_words(src_words, tgt_words, src_counts, tgt_counts, links)

    def compute_loss_from_words(
        self,
        src_words: torch.Tensor,
        tgt_words: torch.Tensor,
        src_counts: torch.Tensor,
        tgt_counts: torch.Tensor,
        links: Sequence[Sequence[Sequence[int]]],
    ) -> torch.Tensor:
        """The loss from word vectors `(pairs, words, dim)`, word counts `(pairs,)` and per-pair links."""
        index = self._link_index(src_words, tgt_words, src_counts, tgt_counts, links)  # (links, 3)
        if index.shape[0] == 0:
            return src_words.sum() * 0.0  # keeps the graph: nothing to align in this batch
        src = src_words[index[:, 0], index[:, 1]]  # (links, dim)
        tgt = tgt_words[index[:, 0], index[:, 2]]  # (links, dim)
        if self.distance == "l2":
            return (src - tgt).pow(2).sum(dim=-1).mean()
        return (1 - F.cosine_similarity(src, tgt, dim=-1)).mean()

    @staticmethod
    def _link_index(src_words, tgt_words, src_counts, tgt_counts, links) -> torch.Tensor:
        rows: list[tuple[int, int, int]] = []
        for pair, pair_links in enumerate(links):
            if len(pair_links) == 0:
                pair_links = mutual_argmax_links(
                    src_words[pair, : int(src_counts[pair])].detach(), tgt_words[pair, : int(tgt_counts[pair])].detach()
                )
            rows.extend((pair, int(i), int(j)) for i, j in pair_links)
        return torch.tensor(rows, dtype=torch.long, device=src_words.device).reshape(-1, 3)


def mutual_argmax_links(src_words: torch.Tensor, tgt_words: torch.Tensor) -> list[tuple[int, int]]:
    """Word pairs that are each other's most cosine-similar word, from `(n_src, dim)` and `(n_tgt, dim)`."""
    if src_words.shape[0] == 0 or tgt_words.shape[0] == 0:
        return []
    similarity = F.normalize(src_words, dim=-1) @ F.normalize(tgt_words, dim=-1).T  # (n_src, n_tgt)
    best_tgt = similarity.argmax(dim=1)  # (n_src,)
    best_src = similarity.argmax(dim=0)  # (n_tgt,)
    return [(i, int(j)) for i, j in enumerate(best_tgt.tolist()) if int(best_src[j]) == i]
