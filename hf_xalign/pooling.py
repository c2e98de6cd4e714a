"""Sentence and token representations from chosen encoder layers.

Layers are numbered as [`hf_xalign.layers`] states (layer `k` is `hidden_states[k]`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import torch
from torch import nn

from .layers import num_blocks, resolve_layer, select_layer

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


class _StopForward(Exception):
    """Raised by a hook after the last block a forward needs; caught by [`hidden_states_up_to`]."""


def transformer_blocks(encoder: nn.Module) -> nn.ModuleList | None:
    """The encoder's transformer blocks: its first `nn.ModuleList` of `config.num_hidden_layers` distinct modules.

    That is `encoder.layer` of BERT and XLM-R, `transformer.layer` of DistilBERT, and so on. `None`
    when there is no such list (shared blocks as in ALBERT, blocks grouped as in Funnel, no config).
    """
    num_layers = num_blocks(encoder)
    if num_layers is None or num_layers < 1:
        return None
    for module in encoder.modules():
        if isinstance(module, nn.ModuleList) and len(module) == num_layers and len(set(map(id, module))) == num_layers:
            return module
    return None


def _first_tensor(value: Any) -> torch.Tensor:
    """A block's hidden states: the block output itself, or the first item of a tuple output."""
    return value[0] if isinstance(value, (tuple, list)) else value


def hidden_states_up_to(
    encoder: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, last_layer: int | None = None
) -> tuple[torch.Tensor, ...]:
    """Hidden states `0..last_layer` of the encoder, running only the blocks they need.

    Layer `0` is the input of the first transformer block (the embedding output) and layer `k` the
    output of block `k - 1` ([`hf_xalign.layers`]). Hooks on the blocks collect them, and the one on
    block `last_layer - 1` stops the forward by raising an exception caught here: the upper blocks
    never run, and the tensors already computed keep their autograd graph. The module's block list
    is left as it is (DDP and other holders of a reference see the same model).

    The full forward with `output_hidden_states=True` runs instead when `last_layer` is `None` or the
    last block (its hidden state may be post-processed, e.g. a final LayerNorm), when the encoder's
    blocks are not found ([`transformer_blocks`]), or under gradient checkpointing (whose recomputation
    would run the hooks again, and whose reentrant variant hides the graph from them).

    Args:
        encoder (`torch.nn.Module`): a bare `transformers` encoder (e.g. `model.base_model`).
        input_ids, attention_mask (`torch.Tensor` of shape `(rows, seq)`): the encoder's inputs.
        last_layer (`int`, *optional*): the highest layer needed (non-negative, as [`resolve_layer`] gives).

    Returns:
        `tuple[torch.Tensor, ...]`: layers `0..last_layer` (all layers for the full forward), each `(rows, seq, dim)`.
    """
    blocks = transformer_blocks(encoder)
    # Layers that checkpoint set `gradient_checkpointing` (what `PreTrainedModel.is_activation_checkpointing` reads).
    checkpointing = any(getattr(module, "gradient_checkpointing", False) is True for module in encoder.modules())
    if last_layer is None or blocks is None or last_layer >= len(blocks) or checkpointing:
        return encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True).hidden_states
    states: list[torch.Tensor] = []

    def keep_input(module: nn.Module, args: tuple, kwargs: dict) -> None:
        states.append(args[0] if args else kwargs["hidden_states"])
        if last_layer == 0:
            raise _StopForward

    def keep_output(index: int):
        def hook(module: nn.Module, args: tuple, output: Any) -> None:
            states.append(_first_tensor(output))
            if index + 1 == last_layer:
                raise _StopForward

        return hook

    handles = [blocks[0].register_forward_pre_hook(keep_input, with_kwargs=True)]
    handles += [blocks[index].register_forward_hook(keep_output(index)) for index in range(last_layer)]
    try:
        encoder(input_ids=input_ids, attention_mask=attention_mask)
    except _StopForward:
        pass
    else:
        raise RuntimeError(
            f"The forward of {type(encoder).__name__} finished without passing through its transformer blocks one "
            "after the other; it cannot stop early. Please report it with the model's class."
        )
    finally:
        for handle in handles:
            handle.remove()
    return tuple(states)


def layer_states(encoder: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, layer: int) -> torch.Tensor:
    """Token states of one layer (numbered as in [`hf_xalign.layers`]), running only the blocks below it.

    A frozen reference read at a middle layer (a distillation teacher, a drift reference) stops
    where the layer is computed, as the shared forward does ([`hidden_states_up_to`]).

    Returns:
        `torch.Tensor` of shape `(rows, seq, dim)`.
    """
    num_layers = num_blocks(encoder)
    if num_layers is None:
        return select_layer(hidden_states_up_to(encoder, input_ids, attention_mask), layer)
    resolved = resolve_layer(layer, num_layers)
    return hidden_states_up_to(encoder, input_ids, attention_mask, resolved)[resolved]


class ParallelEncoding:
    """The encoder's view of one parallel batch, shared by the alignment losses of a step.

    Source and target sentences are stacked as the rows of one batch (`num_pairs` source rows,
    then `num_pairs` target rows) and encoded in ONE forward, run lazily on first use and
    cached, so that every loss reading clean representations (contrastive, MSE, token, ...)
    shares it. Losses that need other inputs (masked tokens, concatenated pairs) call
    [`~ParallelEncoding.encode`] for a forward of their own.

    Given the `layers` the losses read ([`~hf_xalign.losses.AlignmentLoss.layers_read`]), the
    shared forward stops after the highest of them ([`hidden_states_up_to`]): losses reading
    layer 6 of a 12-layer encoder run 6 blocks, forward and backward.

    Args:
        encoder (`torch.nn.Module`): the bare encoder (e.g. `model.base_model`), called as
            `encoder(input_ids=..., attention_mask=..., output_hidden_states=True)`.
        batch (`Mapping[str, Any]`): a batch from [`~hf_xalign.data.ParallelCollator`].
        layers (`Iterable[int]`, *optional*): the layers read from the shared forward (numbered as
            in [`hf_xalign.layers`], negative ones counting from the end). Defaults to all layers.
    """

    def __init__(self, encoder: torch.nn.Module, batch: dict, layers: Iterable[int] | None = None) -> None:
        self.encoder = encoder
        self.batch = batch
        self.num_layers = num_blocks(encoder)
        layers = None if layers is None else list(layers)
        # The highest layer the shared forward computes; None: all of them.
        self.last_layer: int | None = None
        if layers and self.num_layers is not None:
            self.last_layer = max(resolve_layer(layer, self.num_layers) for layer in layers)
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
        """Hidden states of the shared forward over source and target rows, each `(2 * pairs, seq, dim)`.

        Layers `0..last_layer` when the forward stops early, else all of them.
        """
        if self._hidden_states is None:
            self._hidden_states = hidden_states_up_to(
                self.encoder, self.batch["input_ids"], self.batch["attention_mask"], self.last_layer
            )
        return self._hidden_states

    def layer(self, index: int) -> torch.Tensor:
        """Token states of layer `index` (numbered as in [`hf_xalign.layers`]), shape `(2 * pairs, seq, dim)`."""
        states = self.hidden_states
        if self.num_layers is None:
            return select_layer(states, index)
        resolved = resolve_layer(index, self.num_layers)
        if resolved >= len(states):
            raise ValueError(
                f"Layer {index} was not computed: the shared forward stops at layer {len(states) - 1}, the highest "
                "layer the alignment losses declared. A loss reading the shared forward must list every layer it "
                "reads in `AlignmentLoss.layers_read`."
            )
        return states[resolved]

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
