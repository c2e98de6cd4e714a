"""Layer numbering: the one convention behind every user-facing layer name.

For an encoder with `L` transformer blocks (`config.num_hidden_layers`), **layer `k` is
`hidden_states[k]`**, the `k`-th entry of the tuple a `transformers` encoder returns with
`output_hidden_states=True`:

- layer `0` is the embedding output (what the encoder's `embeddings` module returns);
- layer `k`, for `1 <= k <= L`, is the output of the `k`-th transformer block, `encoder.layer[k-1]`;
- a negative number counts from the end, as Python indexing does: `-1` is layer `L` (the last
  block's output) and `-(L + 1)` is layer `0`.

The convention names:

- the layer an alignment loss reads: `alignment_layer`, and the `layer` argument of the losses;
- the parameter groups of the gradient measurement (`conflict/layer.<k>/...` log keys, `per_group`
  in `conflict.jsonl` and in the summary, the GradVac targets): group `layer.k` holds the parameters
  that compute layer `k` from layer `k - 1`: `layer.0` the embedding parameters, `layer.k` those of
  `encoder.layer[k-1]`. So a loss reading layer `k` has no gradient in any group `layer.j` with
  `j > k`, and the statistics of the block that produces the aligned hidden state carry the
  number of `alignment_layer`. The other groups are `encoder` (other encoder parameters, such as
  a pooler), `head` (the task head) and `loss.<key>` (parameters a loss owns);
- the layers of analysis tables and plots.

Names the library writes (group names, tables) use the non-negative number [`resolve_layer`] gives.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def num_blocks(model: object) -> int | None:
    """The number of transformer blocks `config.num_hidden_layers` of a model or encoder; `None` where its config
    does not say (then layers cannot be resolved, and forwards run whole)."""
    value = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    return value if isinstance(value, int) else None


def resolve_layer(layer: int, num_layers: int) -> int:
    """The non-negative number of `layer` in a model with `num_layers` transformer blocks (`-1` gives `num_layers`).

    Args:
        layer (`int`): a layer number as the user wrote it, from `-(num_layers + 1)` to `num_layers`.
        num_layers (`int`): the model's number of transformer blocks (`config.num_hidden_layers`).

    Raises:
        `ValueError`: when the model has no such layer; the message gives the valid range.
    """
    if not -(num_layers + 1) <= layer <= num_layers:
        raise ValueError(
            f"There is no layer {layer} in a model with {num_layers} transformer blocks: layers are 0 (embedding "
            f"output) to {num_layers} (last block), or -1 (last block) to -{num_layers + 1} (embedding output)."
        )
    return layer if layer >= 0 else num_layers + 1 + layer


def select_layer(hidden_states: Sequence[torch.Tensor], layer: int) -> torch.Tensor:
    """Layer `layer` of an encoder's `hidden_states` tuple (embedding output first), with a clear error if absent."""
    return hidden_states[resolve_layer(layer, len(hidden_states) - 1)]
