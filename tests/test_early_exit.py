"""The shared alignment forward stops after the highest layer the losses read.

Oracle: the same loss computed by hand on `encoder(..., output_hidden_states=True).hidden_states[k]`
of the full stack, differentiated by `torch.autograd.grad`; and, for the trainer, a run whose
shared forward runs every block.
"""

from __future__ import annotations

import pytest
import torch
from conftest import TAGS
from test_trainer import GradientCapture, make_args
from transformers import (
    BertConfig,
    BertForTokenClassification,
    XLMRobertaForTokenClassification,
)

from hf_xalign import AlignmentTrainer
from hf_xalign.data.collator import ParallelCollator
from hf_xalign.losses import (
    AlignmentLoss,
    ContrastiveLoss,
    DistillationLoss,
    DriftLoss,
    MaskedLMLoss,
    MSELoss,
    TokenAlignmentLoss,
    TranslationLMLoss,
)
from hf_xalign.pooling import ParallelEncoding, content_token_mask, pool, transformer_blocks, word_vectors
from hf_xalign.tiny import tiny_xlmr_config

NUM_LAYERS = 4
FAMILIES = ("xlmr", "bert")
TOL = dict(atol=1e-6, rtol=0)


def tiny_tagger(tokenizer, family: str, num_labels: int = 3, seed: int = 0):
    """A 4-layer tagger of `family` (hidden 32, no dropout) over the tokenizer's vocabulary."""
    torch.manual_seed(seed)
    no_dropout = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, num_labels=num_labels)
    if family == "xlmr":
        return XLMRobertaForTokenClassification(tiny_xlmr_config(tokenizer, num_layers=NUM_LAYERS, **no_dropout))
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=NUM_LAYERS,
        num_attention_heads=2,
        intermediate_size=64,
        pad_token_id=tokenizer.pad_token_id,
        **no_dropout,
    )
    return BertForTokenClassification(config)


def parallel_batch(tokenizer, parallel_dataset, pairs: int = 4) -> dict:
    rows = [parallel_dataset[i] for i in range(pairs)]
    return ParallelCollator(tokenizer, views={"word_ids"})(rows)


def count_block_calls(encoder) -> tuple[list[int], list]:
    """Forward calls of each transformer block, counted by hooks; returns the counts and the hook handles."""
    calls = [0] * NUM_LAYERS

    def counter(index):
        def hook(module, args, output):
            calls[index] += 1

        return hook

    handles = [block.register_forward_hook(counter(i)) for i, block in enumerate(encoder.encoder.layer)]
    return calls, handles


def oracle_loss(loss: AlignmentLoss, encoder, batch, layer: int) -> torch.Tensor:
    """The loss written on layer `layer` of the FULL forward's hidden states."""
    hidden = encoder(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True
    ).hidden_states[layer]  # (rows, seq, dim)
    pairs = batch["input_ids"].shape[0] // 2
    if isinstance(loss, TokenAlignmentLoss):
        word_ids = batch["word_ids"]
        words = word_vectors(hidden, word_ids, int(word_ids.max()) + 1)  # (rows, words, dim)
        counts = word_ids.max(dim=1).values + 1  # (rows,)
        return loss.compute_loss_from_words(
            words[:pairs], words[pairs:], counts[:pairs], counts[pairs:], batch["alignment"]
        )
    mask = content_token_mask(batch["attention_mask"], batch["special_tokens_mask"])
    sentences = pool(hidden, mask, "mean")  # (rows, dim)
    return loss.compute_loss_from_embeddings(sentences[:pairs], sentences[pairs:])


LOSSES = {
    "contrastive": lambda layer: ContrastiveLoss(layer=layer, temperature=0.1),
    "mse": lambda layer: MSELoss(layer=layer),
    "token": lambda layer: TokenAlignmentLoss(layer=layer),
}


def test_the_blocks_are_the_encoders_module_list(tokenizer):
    for family in FAMILIES:
        encoder = tiny_tagger(tokenizer, family).base_model
        assert transformer_blocks(encoder) is encoder.encoder.layer


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("layer", [0, 2])
def test_early_exit_equals_the_full_forward_and_skips_the_upper_blocks(
    tokenizer, parallel_dataset, family, name, layer
):
    model = tiny_tagger(tokenizer, family)
    encoder = model.base_model
    batch = parallel_batch(tokenizer, parallel_dataset)
    loss = LOSSES[name](layer)
    parameters = dict(encoder.named_parameters())

    calls, handles = count_block_calls(encoder)
    value = loss(ParallelEncoding(encoder, batch, loss.layers_read(NUM_LAYERS)))
    grads = torch.autograd.grad(value, list(parameters.values()), allow_unused=True)
    for handle in handles:
        handle.remove()
    expected_value = oracle_loss(loss, encoder, batch, layer)
    expected_grads = torch.autograd.grad(expected_value, list(parameters.values()), allow_unused=True)

    assert calls == [1] * layer + [0] * (NUM_LAYERS - layer)
    torch.testing.assert_close(value, expected_value, **TOL)
    for (param_name, _), grad, expected in zip(parameters.items(), grads, expected_grads):
        upper = any(param_name.startswith(f"encoder.layer.{k}.") for k in range(layer, NUM_LAYERS))
        if upper or expected is None:
            assert grad is None and expected is None, param_name
        else:
            torch.testing.assert_close(grad, expected, **TOL, msg=param_name)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("layer", [-1, NUM_LAYERS])
def test_a_loss_reading_the_last_layer_runs_every_block_once(tokenizer, parallel_dataset, family, layer):
    encoder = tiny_tagger(tokenizer, family).base_model
    batch = parallel_batch(tokenizer, parallel_dataset)
    loss = ContrastiveLoss(layer=layer, temperature=0.1)

    calls, handles = count_block_calls(encoder)
    encoding = ParallelEncoding(encoder, batch, loss.layers_read(NUM_LAYERS))
    value = loss(encoding)
    for handle in handles:
        handle.remove()

    assert calls == [1] * NUM_LAYERS
    assert len(encoding.hidden_states) == NUM_LAYERS + 1
    torch.testing.assert_close(value, oracle_loss(loss, encoder, batch, layer), **TOL)


def test_the_forward_stops_at_the_highest_layer_any_loss_reads(tokenizer, parallel_dataset):
    encoder = tiny_tagger(tokenizer, "xlmr").base_model
    batch = parallel_batch(tokenizer, parallel_dataset)
    losses = [ContrastiveLoss(layer=1), TokenAlignmentLoss(layer=3)]

    calls, handles = count_block_calls(encoder)
    encoding = ParallelEncoding(encoder, batch, set().union(*(loss.layers_read(NUM_LAYERS) for loss in losses)))
    for loss in losses:
        loss(encoding)
    for handle in handles:
        handle.remove()

    assert calls == [1, 1, 1, 0]


def reference_encoder(loss: AlignmentLoss):
    """The frozen encoder a distillation or drift loss reads."""
    return loss.teacher if isinstance(loss, DistillationLoss) else loss.reference


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("loss_class", [DistillationLoss, DriftLoss])
def test_a_frozen_reference_read_at_a_middle_layer_stops_there(tokenizer, parallel_dataset, family, loss_class):
    layer = 2
    model = tiny_tagger(tokenizer, family)
    loss = loss_class(layer=layer)
    loss.setup(model)  # the frozen copy is taken here; the student then moves away from it
    encoder = model.base_model
    with torch.no_grad():
        for parameter in encoder.parameters():
            parameter.add_(0.02 * torch.randn_like(parameter))
    batch = parallel_batch(tokenizer, parallel_dataset)
    parameters = list(encoder.parameters())

    calls, handles = count_block_calls(reference_encoder(loss))
    value = loss(ParallelEncoding(encoder, batch, loss.layers_read(NUM_LAYERS)))
    for handle in handles:
        handle.remove()
    grads = torch.autograd.grad(value, parameters, allow_unused=True)

    # Oracle: both encoders' full forwards, the loss written out on their layer `layer`.
    def full_layer(module, rows):
        return module(
            input_ids=batch["input_ids"][rows], attention_mask=batch["attention_mask"][rows], output_hidden_states=True
        ).hidden_states[layer]  # (rows, seq, dim)

    pairs = batch["input_ids"].shape[0] // 2
    everything = slice(None)
    student = full_layer(encoder, everything)
    mask = content_token_mask(batch["attention_mask"], batch["special_tokens_mask"])  # (rows, seq)
    with torch.no_grad():
        reference = full_layer(
            reference_encoder(loss), slice(0, pairs) if loss_class is DistillationLoss else everything
        )
    if loss_class is DistillationLoss:
        sentences, teacher = pool(student, mask, "mean"), pool(reference, mask[:pairs], "mean")  # (rows | pairs, dim)
        expected = ((sentences[:pairs] - teacher) ** 2).mean() + ((sentences[pairs:] - teacher) ** 2).mean()
    else:
        expected = ((student - reference)[mask.bool()] ** 2).mean()
    expected_grads = torch.autograd.grad(expected, parameters, allow_unused=True)

    assert calls == [1, 1, 0, 0]
    assert expected.item() > 1e-4  # the student moved: the comparison is not of two zeros
    torch.testing.assert_close(value, expected, **TOL)
    for got, want in zip(grads, expected_grads):
        if want is None:  # blocks above the layer read
            assert got is None or not got.any()
        else:
            torch.testing.assert_close(got, want, **TOL)


def test_reading_a_layer_above_the_declared_ones_is_an_error(tokenizer, parallel_dataset):
    encoder = tiny_tagger(tokenizer, "xlmr").base_model
    encoding = ParallelEncoding(encoder, parallel_batch(tokenizer, parallel_dataset), layers={1})

    with pytest.raises(ValueError, match="layers_read"):
        encoding.layer(-1)
    assert encoding.layer(1).shape[0] == 2 * encoding.num_pairs


@pytest.mark.filterwarnings("ignore:`gradient_checkpointing_enable` is deprecated:FutureWarning")
def test_gradient_checkpointing_runs_the_full_forward(tokenizer, parallel_dataset):
    model = tiny_tagger(tokenizer, "xlmr")
    model.gradient_checkpointing_enable()
    model.train()
    encoder = model.base_model
    batch = parallel_batch(tokenizer, parallel_dataset)
    loss = MSELoss(layer=1)

    calls, handles = count_block_calls(encoder)
    value = loss(ParallelEncoding(encoder, batch, loss.layers_read(NUM_LAYERS)))
    for handle in handles:
        handle.remove()

    assert calls == [1] * NUM_LAYERS
    torch.testing.assert_close(value, oracle_loss(loss, encoder, batch, 1), **TOL)


def test_losses_declare_the_layers_they_read():
    class Undeclared(AlignmentLoss):
        def forward(self, encoding):
            return encoding.layer(-1).sum()

    assert ContrastiveLoss(layer=-1).layers_read(NUM_LAYERS) == {NUM_LAYERS}
    assert MSELoss(layer=2).layers_read(NUM_LAYERS) == {2}
    assert TokenAlignmentLoss(layer=-3).layers_read(NUM_LAYERS) == {2}
    assert DistillationLoss(layer=1).layers_read(NUM_LAYERS) == {1}
    assert DriftLoss(layer=2).layers_read(NUM_LAYERS) == {2}
    assert DriftLoss(target="weights").layers_read(NUM_LAYERS) == set()
    assert MaskedLMLoss().layers_read(NUM_LAYERS) == set()  # a masked forward of its own, to the top
    assert TranslationLMLoss().layers_read(NUM_LAYERS) == set()
    assert Undeclared().layers_read(NUM_LAYERS) == set(range(NUM_LAYERS + 1))  # undeclared: the full forward


# --------------------------------------------------------------------------- through the trainer


class FullForwardTrainer(AlignmentTrainer):
    """The oracle trainer: its shared forward runs every block (no layers declared)."""

    def compute_alignment_loss(self, model, batch):
        encoding = ParallelEncoding(self.accelerator.unwrap_model(model).base_model, batch)
        return {name: loss(encoding) for name, loss in zip(self.alignment_loss_names, self.alignment_losses)}


@pytest.mark.parametrize("family", FAMILIES)
def test_a_trainer_step_with_early_exit_equals_one_with_the_full_forward(
    tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator, family
):
    runs = {}
    for trainer_class in (AlignmentTrainer, FullForwardTrainer):
        model = tiny_tagger(tokenizer, family, num_labels=len(TAGS))
        args = make_args(
            tmp_path / trainer_class.__name__,
            alignment_loss=["contrastive", "token"],
            alignment_layer=2,
            max_steps=1,
            max_grad_norm=0.0,
        )
        capture = GradientCapture(model)
        calls, _ = count_block_calls(model.base_model)
        trainer = trainer_class(
            model=model,
            args=args,
            train_dataset=task_dataset,
            alignment_dataset=parallel_dataset,
            processing_class=tokenizer,
            data_collator=task_collator,
            callbacks=[capture],
        )
        trainer.train()
        runs[trainer_class] = (calls, capture.grads, dict(model.named_parameters()))

    early_calls, early_grads, early_params = runs[AlignmentTrainer]
    full_calls, full_grads, full_params = runs[FullForwardTrainer]
    assert early_calls == [2, 2, 1, 1]  # task forward: every block; alignment forward: blocks 1-2 only
    assert full_calls == [2] * NUM_LAYERS
    assert early_grads.keys() == full_grads.keys()
    for name, grad in full_grads.items():
        torch.testing.assert_close(early_grads[name], grad, **TOL, msg=name)
    for name, param in full_params.items():
        torch.testing.assert_close(early_params[name], param, **TOL, msg=name)
