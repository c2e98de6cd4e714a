"""Sentence and token representations from chosen encoder layers.

Layers are numbered as [`hf_xalign.layers`] states (layer `k` is `hidden_states[k]`).
"""

from __future__ import annotations

from typing import Literal

import torch

from .layers import select_layer

Pooling = Literal["mean", "cls"]
POOLINGS: tuple[str, ...] = ("mean", "cls")


def mean_pool(hidden: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
    """Average of the token vectors where `token_mask` is 1.

    Args:
        hidden (`torch.Tensor` of shape `(batch, seq, dim)`): token representations.
        token_mask (`torch.Tensor` of shape `(batch, seq)`): 1 for tokens to average
            (e.g. non-special, non-padding tokens), 0 elsewhere.

    Returns:
        `torch.Tensor` of shape `(batch, dim)`. A row with no selected token gives zeros.
    """
    weights = token_mask.to(hidden.dtype).unsqueeze(-1)  # (batch, seq, 1)
    summed = (hidden * weights).sum(dim=1)  # (batch, dim)
    counts = weights.sum(dim=1).clamp_min(1.0)  # (batch, 1)
    return summed / counts


def cls_pool(hidden: torch.Tensor) -> torch.Tensor:
    """The first token's vector (`<s>` / `[CLS]`), shape `(batch, dim)`."""
    return hidden[:, 0]


def pool(hidden: torch.Tensor, token_mask: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    """Sentence vectors by `pooling` (`"mean"` over `token_mask`, or `"cls"`)."""
    if pooling == "mean":
        return mean_pool(hidden, token_mask)
    if pooling == "cls":
        return cls_pool(hidden)
    raise ValueError(f"Unknown pooling {pooling!r}; choose one of {POOLINGS}.")


def content_token_mask(attention_mask: torch.Tensor, special_tokens_mask: torch.Tensor | None) -> torch.Tensor:
    """1 for real (non-padding) tokens that are not special tokens such as `<s>` and `</s>`."""
    if special_tokens_mask is None:
        return attention_mask
    return attention_mask * (1 - special_tokens_mask.to(attention_mask.dtype))


def word_vectors(hidden: torch.Tensor, word_ids: torch.Tensor, num_words: int) -> torch.Tensor:
    """Word representations as the mean of each word's sub-token vectors.

    Args:
        hidden (`torch.Tensor` of shape `(batch, seq, dim)`): token representations.
        word_ids (`torch.Tensor` of shape `(batch, seq)`): index of the whitespace word each
            token belongs to, `-1` for special and padding tokens.
        num_words (`int`): number of word slots to return (>= the largest word id + 1).

    Returns:
        `torch.Tensor` of shape `(batch, num_words, dim)`; slots of absent words are zeros.
    """
    batch, _, dim = hidden.shape
    valid = word_ids >= 0  # (batch, seq)
    index = word_ids.clamp_min(0)  # (batch, seq)
    sums = hidden.new_zeros(batch, num_words, dim).scatter_add(
        1, index.unsqueeze(-1).expand(-1, -1, dim), hidden * valid.unsqueeze(-1).to(hidden.dtype)
    )
    counts = hidden.new_zeros(batch, num_words).scatter_add(1, index, valid.to(hidden.dtype))  # (batch, num_words)
    return sums / counts.clamp_min(1.0).unsqueeze(-1)


class ParallelEncoding:
    """The encoder's view of one parallel batch, shared by the alignment losses of a step.

    Source and target sentences are stacked as the rows of one batch (`num_pairs` source rows,
    then `num_pairs` target rows) and encoded in ONE forward, run lazily on first use and
    cached, so that every loss reading clean representations (contrastive, MSE, token, ...)
    shares it. Losses that need other inputs (masked tokens, concatenated pairs) call
    [`~ParallelEncoding.encode`] for a forward of their own.

    Args:
        encoder (`torch.nn.Module`): the bare encoder (e.g. `model.base_model`), called as
            `encoder(input_ids=..., attention_mask=..., output_hidden_states=True)`.
        batch (`Mapping[str, Any]`): a batch from [`~hf_xalign.data.ParallelCollator`].
    """

    def __init__(self, encoder: torch.nn.Module, batch: dict) -> None:
        self.encoder = encoder
        self.batch = batch
        self._hidden_states: tuple[torch.Tensor, ...] | None = None

    @property
    def num_pairs(self) -> int:
        return self.batch["input_ids"].shape[0] // 2

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """A fresh forward of the encoder; returns all hidden states (embeddings first)."""
        outputs = self.encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        return outputs.hidden_states

    @property
    def hidden_states(self) -> tuple[torch.Tensor, ...]:
        """Hidden states of the shared forward over source and target rows, each `(2 * pairs, seq, dim)`."""
        if self._hidden_states is None:
            self._hidden_states = self.encode(self.batch["input_ids"], self.batch["attention_mask"])
        return self._hidden_states

    def layer(self, index: int) -> torch.Tensor:
        """Token states of layer `index` (numbered as in [`hf_xalign.layers`]), shape `(2 * pairs, seq, dim)`."""
        return select_layer(self.hidden_states, index)

    def content_mask(self) -> torch.Tensor:
        """1 for non-padding, non-special tokens, shape `(2 * pairs, seq)`."""
        return content_token_mask(self.batch["attention_mask"], self.batch.get("special_tokens_mask"))

    def sentence_embeddings(self, layer: int, pooling: Pooling) -> tuple[torch.Tensor, torch.Tensor]:
        """Pooled sentence vectors of layer `layer`: `(source, target)`, each `(pairs, dim)`."""
        sentences = pool(self.layer(layer), self.content_mask(), pooling)  # (2 * pairs, dim)
        return sentences[: self.num_pairs], sentences[self.num_pairs :]

    def word_embeddings(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Word vectors (mean of sub-tokens) of layer `layer`: `(source, target)`, each `(pairs, words, dim)`.

        Needs `word_ids` in the batch (losses that read words declare `requires = {"word_ids"}`).
        """
        word_ids = self.batch["word_ids"]  # (2 * pairs, seq)
        num_words = int(word_ids.max().item()) + 1 if word_ids.numel() else 0
        words = word_vectors(self.layer(layer), word_ids, max(num_words, 1))  # (2 * pairs, words, dim)
        return words[: self.num_pairs], words[self.num_pairs :]
