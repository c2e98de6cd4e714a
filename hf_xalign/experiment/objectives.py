"""Alignment objectives by name: presets of [`AlignmentTrainingArguments`] options, such as the paper's mix.

An objective is either a preset name from [`OBJECTIVES`] or a dict of `AlignmentTrainingArguments`
options. `alignment_layer: middle` stands for the model's middle layer, `num_hidden_layers // 2`
in [`hf_xalign.layers`] numbering (layer 6 of a 12-layer encoder). Every preset sets
`alignment_loss_weights`, so that weights given for another loss list never leak into it.

| preset | losses (weight) | layer |
|---|---|---|
| `mlm` | MLM on each side (1) | – |
| `mlm_tlm` | MLM (1), TLM on the concatenated pair (1) | – |
| `contrastive` | sentence-level InfoNCE (1) | middle |
| `token` | word-level alignment, `1 - cos` (1) | middle |
| `paper_mix` | MLM (1), TLM (1), contrastive (1), token with `1 - cos` (1) | middle |
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from typing import Any

from ..args import AlignmentTrainingArguments
from .config import unknown_option_errors

MIDDLE_LAYER = "middle"
# The token loss's distance in the presets: `1 - cos`, not the squared L2 distance, which can be lowered
# by shrinking every vector. Measured on the demo (e5-small, Django en-fr/en-tr, paper_mix, 40 steps, one
# run each): with L2 the token loss started at 40 (4x MLM + TLM), the contrastive loss rose 0.45 -> 1.16 and
# en-fr retrieval fell 0.94 -> 0.92; with cosine it fell 0.39 -> 0.31 and retrieval held (en-tr 0.84 -> 0.86).
TOKEN_DISTANCE = "cosine"

OBJECTIVES: dict[str, dict[str, Any]] = {
    "mlm": {"alignment_loss": ["mlm"], "alignment_loss_weights": [1.0]},
    "mlm_tlm": {"alignment_loss": ["mlm", "tlm"], "alignment_loss_weights": [1.0, 1.0]},
    "contrastive": {
        "alignment_loss": ["contrastive"],
        "alignment_loss_weights": [1.0],
        "alignment_layer": MIDDLE_LAYER,
    },
    "token": {
        "alignment_loss": ["token"],
        "alignment_loss_weights": [1.0],
        "alignment_layer": MIDDLE_LAYER,
        "alignment_token_distance": TOKEN_DISTANCE,
    },
    # The paper's alignment: MLM on each side, TLM on the pair, sentence-level contrastive and
    # token-level alignment, both at a middle layer (where representations are most language-neutral).
    "paper_mix": {
        "alignment_loss": ["mlm", "tlm", "contrastive", "token"],
        "alignment_loss_weights": [1.0, 1.0, 1.0, 1.0],
        "alignment_layer": MIDDLE_LAYER,
        "alignment_token_distance": TOKEN_DISTANCE,
    },
}


def unknown_objective_error(name: str) -> ValueError:
    """The error for an objective name that is not a preset: the closest presets, then all of them."""
    close = difflib.get_close_matches(name, OBJECTIVES, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ValueError(
        f"Unknown alignment objective {name!r}.{hint} Known objectives: {', '.join(OBJECTIVES)} "
        "(or a dict of AlignmentTrainingArguments options)."
    )


def resolve_objective(objective: str | Mapping[str, Any], num_layers: int) -> dict[str, Any]:
    """The `AlignmentTrainingArguments` options of `objective`, with `alignment_layer: middle` resolved.

    Args:
        objective (`str` or `Mapping[str, Any]`): a name from [`OBJECTIVES`], or options such as
            `{"alignment_loss": ["contrastive"], "alignment_layer": "middle"}`.
        num_layers (`int`): the model's `config.num_hidden_layers`.

    Raises:
        `ValueError`: an unknown preset name (listing the known ones), or options that
            `AlignmentTrainingArguments` does not have (naming them).
    """
    if isinstance(objective, str):
        if objective not in OBJECTIVES:
            raise unknown_objective_error(objective)
        options = dict(OBJECTIVES[objective])
    else:
        options = dict(objective)
        known = [f.name for f in dataclasses.fields(AlignmentTrainingArguments) if f.init]
        errors = unknown_option_errors(options, known, "alignment objective")
        if errors:
            raise ValueError("\n".join(errors))
    if options.get("alignment_layer") == MIDDLE_LAYER:
        options["alignment_layer"] = num_layers // 2
    return options


def objective_arguments(
    training_args: AlignmentTrainingArguments, objective: str | Mapping[str, Any], num_layers: int
) -> AlignmentTrainingArguments:
    """`training_args` with the options of `objective` ([`resolve_objective`]), checked as the arguments check theirs.

    A new instance: `training_args` is unchanged. Build it before any trainer of the process is
    constructed from these arguments (rebuilding the arguments resets accelerate's shared state).
    """
    return dataclasses.replace(training_args, **resolve_objective(objective, num_layers))
