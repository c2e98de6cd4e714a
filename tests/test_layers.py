"""The layer numbering of `hf_xalign.layers`: layer k = `hidden_states[k]`, for every name that shows a layer.

Oracles: forward hooks on the model's own modules (what the embeddings and each block return),
and autograd's structure (a hidden state does not depend on the blocks after it).
"""

from __future__ import annotations

import pytest
import torch
from conftest import make_model
from test_trainer import make_args, make_trainer

from hf_xalign.layers import resolve_layer, select_layer


@pytest.mark.parametrize(("layer", "number"), [(0, 0), (1, 1), (2, 2), (-1, 2), (-2, 1), (-3, 0)])
def test_negative_layers_count_from_the_last_block(layer, number):
    assert resolve_layer(layer, num_layers=2) == number


@pytest.mark.parametrize("layer", [3, -4])
def test_a_layer_the_model_does_not_have_is_refused_with_the_valid_range(layer):
    with pytest.raises(
        ValueError, match=rf"no layer {layer} in a model with 2 transformer blocks.* 0 .* 2 .* -1 .* -3"
    ):
        resolve_layer(layer, num_layers=2)


def test_layer_k_is_the_embedding_output_for_0_and_the_output_of_block_k_minus_1_after(tokenizer):
    encoder = make_model(tokenizer).eval().base_model
    returned = {}

    def record(number):
        def hook(module, inputs, output):
            returned[number] = output[0] if isinstance(output, tuple) else output

        return hook

    handles = [encoder.embeddings.register_forward_hook(record(0))]
    handles += [block.register_forward_hook(record(i + 1)) for i, block in enumerate(encoder.encoder.layer)]
    batch = tokenizer(["the big cat sees a dog", "lo gatu vidi"], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden_states = encoder(**batch, output_hidden_states=True).hidden_states
    for handle in handles:
        handle.remove()

    assert len(hidden_states) == len(returned) == encoder.config.num_hidden_layers + 1 == 3
    for number, output in returned.items():
        assert torch.equal(select_layer(hidden_states, number), output), number
    assert torch.equal(select_layer(hidden_states, -1), returned[2])  # -1: the last block's output


@pytest.mark.parametrize(("alignment_layer", "number"), [(0, 0), (1, 1), (2, 2), (-1, 2)])
def test_conflict_group_of_the_block_producing_the_aligned_layer_carries_its_number(
    tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator, alignment_layer, number
):
    # Oracle: hidden_states[k] does not depend on the blocks after k, so autograd leaves their alignment
    # gradient exactly zero; the embeddings and the blocks up to k do feed it.
    args = make_args(
        tmp_path,
        max_steps=1,
        max_grad_norm=0.0,
        conflict_every=1,
        alignment_loss=["contrastive"],
        alignment_layer=alignment_layer,
    )
    trainer = make_trainer(tokenizer, task_dataset, parallel_dataset, task_collator, args)
    trainer.train()

    (measurement,) = trainer.conflict_callback.measurements
    (logged,) = [h for h in trainer.state.log_history if "conflict/cosine" in h]
    assert [group for group in measurement.per_group if group.startswith("layer.")] == ["layer.0", "layer.1", "layer.2"]
    for j in range(3):
        align_norm = logged[f"conflict/layer.{j}/align_norm"]
        assert align_norm == measurement.per_group[f"layer.{j}"]["align_norm"]
        if j > number:
            assert align_norm == 0.0, j
        else:
            assert align_norm > 0.0, j
