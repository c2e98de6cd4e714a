"""LoRA-wrapped encoders (`peft.get_peft_model`): measured, aligned, saved and loaded as first-class models.

Oracles: parameter groups named by hand from the base parameter each adapter parameter belongs to
(`test_conflict.hand_group`); gradients by `torch.autograd.grad` of an identical wrapped model whose
alignment loss is written out by hand on the PEFT model's own full forward (every block and the head
run); for saving, the trained model's outputs.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import shutil

import pytest
import torch
import torch.nn.functional as F
from conftest import TAGS
from test_conflict import hand_group, stats
from test_trainer import GradientCapture, make_args, make_trainer, train_recording_task_batches
from transformers import DataCollatorForTokenClassification, XLMRobertaForTokenClassification

from hf_xalign import AlignmentTrainer, load_aligned
from hf_xalign.adapters import encoder_of
from hf_xalign.conflict import TASK
from hf_xalign.data.collator import ParallelCollator
from hf_xalign.files import CONFLICT_LOG_NAME
from hf_xalign.hub import publishable_files
from hf_xalign.losses import ContrastiveLoss
from hf_xalign.pooling import ParallelEncoding
from hf_xalign.tiny import tiny_xlmr_config

peft = pytest.importorskip("peft")

LAMBDA = 0.7
NUM_LAYERS = 3
ALIGNMENT_LAYER = 2  # a middle layer: the alignment forward stops before the last block
WRAPPER = "base_model.model."  # PEFT's prefix of the wrapped model's parameter names


def tagger(tokenizer, seed: int = 0) -> XLMRobertaForTokenClassification:
    """A 3-layer XLM-R tagger (hidden 32, no dropout)."""
    torch.manual_seed(seed)
    config = tiny_xlmr_config(
        tokenizer,
        num_layers=NUM_LAYERS,
        num_labels=len(TAGS),
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return XLMRobertaForTokenClassification(config)


def with_lora(model, seed: int = 1):
    """LoRA on query and value, the classifier trained in full; random A and B, so the adapter already acts."""
    torch.manual_seed(seed)
    config = peft.LoraConfig(
        task_type="TOKEN_CLS",
        r=4,
        lora_alpha=8,
        target_modules=["query", "value"],
        modules_to_save=["classifier"],
        init_lora_weights=False,
    )
    return peft.get_peft_model(model, config)


def hand_group_of_adapter_parameter(name: str) -> str:
    """The group of the base parameter whose module holds the adapter parameter `name`, named by hand."""
    assert name.startswith(WRAPPER), name
    module = re.sub(r"\.(lora_[AB]|modules_to_save)\.default\.(weight|bias)$", "", name[len(WRAPPER) :])
    return hand_group(module + ".weight")


def trainable(model) -> list[tuple[str, torch.nn.Parameter]]:
    return [(name, param) for name, param in model.named_parameters() if param.requires_grad]


def hand_contrastive_full_forward(peft_model, batch, layer: int, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE on `hidden_states[layer]` of the PEFT model's own full forward (all blocks, the head
    too), source and target rows in SEPARATE forwards, mean pooling over non-special tokens by hand."""
    pairs = batch["input_ids"].shape[0] // 2
    vectors = []
    for rows in (slice(0, pairs), slice(pairs, 2 * pairs)):
        ids, mask = batch["input_ids"][rows], batch["attention_mask"][rows]
        keep = (mask * (1 - batch["special_tokens_mask"][rows])).unsqueeze(-1).to(torch.float64)
        states = peft_model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[layer]
        vectors.append((states * keep).sum(1) / keep.sum(1))
    src, tgt = (F.normalize(v, dim=-1) for v in vectors)
    logits = src @ tgt.T / temperature
    labels = torch.arange(pairs)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def approx(value):
    return pytest.approx(value, rel=1e-6, abs=1e-9, nan_ok=True)


def test_groups_name_the_encoders_layers_through_the_wrapper(
    tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator
):
    model = with_lora(tagger(tokenizer))
    args = make_args(tmp_path, conflict_every=1)
    wrapped = make_trainer(tokenizer, task_dataset, parallel_dataset, task_collator, args, model=model)
    plain = make_trainer(tokenizer, task_dataset, parallel_dataset, task_collator, args, model=tagger(tokenizer))
    splitter, plain_splitter = wrapped.gradient_splitter, plain.gradient_splitter

    expected_names = [name for name, _ in trainable(model)]
    assert splitter.names == expected_names  # the frozen base parameters are not measured
    got = {name: splitter.group_names[group] for name, group in zip(splitter.names, splitter.group_of)}
    # Oracle 1: by hand. Oracle 2: the unwrapped model's group of the base parameter the adapter belongs to.
    plain_group = {
        name: plain_splitter.group_names[g] for name, g in zip(plain_splitter.names, plain_splitter.group_of)
    }
    for name in expected_names:
        base_name = re.sub(r"\.(lora_[AB]|modules_to_save)\.default\.", ".", name[len(WRAPPER) :])
        assert got[name] == hand_group_of_adapter_parameter(name) == plain_group[base_name], name
    assert splitter.group_names == ["layer.1", "layer.2", "layer.3", "head"]  # no layer.0: embeddings are frozen


def test_statistics_and_gradients_equal_autograd_over_the_lora_parameters(
    tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator
):
    args = make_args(
        tmp_path,
        max_steps=1,
        max_grad_norm=0.0,
        conflict_every=1,
        alignment_loss=["contrastive"],
        alignment_layer=ALIGNMENT_LAYER,
        alignment_lambda=LAMBDA,
    )
    # float64 so that 1e-6 tests the algorithm, not float32 summation order
    model = with_lora(tagger(tokenizer)).double()
    reference = copy.deepcopy(model)
    capture = GradientCapture(model)
    trainer, seen = train_recording_task_batches(
        tokenizer, task_dataset, parallel_dataset, task_collator, args, model, callbacks=[capture]
    )

    # Oracle: T = ∇ task loss, A = ∇ λ · contrastive loss on layer 2 of the full forward, over the LoRA parameters.
    named = trainable(reference)
    params = [param for _, param in named]
    task_loss = reference(**seen[0]).loss
    align_loss = LAMBDA * hand_contrastive_full_forward(
        reference, trainer.alignment_stream.batch(0, 0), ALIGNMENT_LAYER, args.alignment_temperature
    )
    task = dict(zip([n for n, _ in named], (g.double() for g in torch.autograd.grad(task_loss, params))))
    align_grads = torch.autograd.grad(align_loss, params, allow_unused=True)
    align = {n: torch.zeros_like(p) if g is None else g for (n, p), g in zip(named, align_grads)}
    names = list(task)
    groups = {
        group: [n for n in names if hand_group_of_adapter_parameter(n) == group]
        for group in ("layer.1", "layer.2", "layer.3", "head")
    }

    # The step's gradients: task + alignment, LoRA parameters and classifier copy alike.
    assert sorted(capture.grads) == sorted(names)
    for name in names:
        torch.testing.assert_close(capture.grads[name], task[name] + align[name], atol=1e-6, rtol=0, msg=name)
    # The alignment loss stops at layer 2: the third block's adapters get the task gradient only.
    assert all(float(align[n].abs().sum()) == 0.0 for n in groups["layer.3"] + groups["head"])
    assert all(float(align[n].abs().sum()) > 0.0 for n in groups["layer.1"] + groups["layer.2"])

    # A frozen parameter costs no buffer: the task buffer holds exactly the trainable values.
    splitter = trainer.gradient_splitter
    assert sum(b.numel() for b in splitter.buffers[TASK]) == sum(p.numel() for p in params)
    assert sum(p.numel() for p in params) < sum(p.numel() for p in reference.parameters()) / 10

    (measurement,) = trainer.conflict_callback.measurements
    for key, value in stats(task, align, names).items():
        assert getattr(measurement, key) == approx(value), key
    with open(os.path.join(args.output_dir, CONFLICT_LOG_NAME), encoding="utf-8") as f:
        (record,) = [json.loads(line) for line in f]
    assert list(record["per_group"]) == list(groups)
    for group, members in groups.items():
        for key, value in stats(task, align, members).items():
            assert measurement.per_group[group][key] == approx(value), (group, key)
            got = record["per_group"][group][key]
            assert (got is None) if math.isnan(value) else got == approx(value), (group, key)


def test_early_exit_through_the_wrapper_runs_only_the_needed_blocks(tokenizer, parallel_dataset):
    model = with_lora(tagger(tokenizer)).double()
    batch = ParallelCollator(tokenizer)([parallel_dataset[i] for i in range(4)])
    loss = ContrastiveLoss(layer=ALIGNMENT_LAYER, temperature=0.1)
    named = trainable(model)
    blocks = model.get_base_model().roberta.encoder.layer
    calls = [0] * NUM_LAYERS
    handles = [
        block.register_forward_hook(lambda module, args, output, i=i: calls.__setitem__(i, calls[i] + 1))
        for i, block in enumerate(blocks)
    ]
    value = loss(ParallelEncoding(encoder_of(model), batch, loss.layers_read(NUM_LAYERS)))
    for handle in handles:
        handle.remove()
    grads = torch.autograd.grad(value, [p for _, p in named], allow_unused=True)

    expected = hand_contrastive_full_forward(model, batch, ALIGNMENT_LAYER, temperature=0.1)
    expected_grads = torch.autograd.grad(expected, [p for _, p in named], allow_unused=True)
    assert calls == [1, 1, 0]  # the third block never runs
    torch.testing.assert_close(value, expected, atol=1e-6, rtol=0)
    for (name, _), grad, want in zip(named, grads, expected_grads):
        if want is None:  # the third block's adapters and the head: not reached by the loss
            assert grad is None, name
        else:
            torch.testing.assert_close(grad, want, atol=1e-6, rtol=0, msg=name)


INPUTS = ["the big cat sees a dog", "lo gatu vidi"]


def logits(model, tokenizer) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(**tokenizer(INPUTS, padding=True, return_tensors="pt")).logits


@pytest.fixture(scope="module")
def saved_adapter(tmp_path_factory, tokenizer, task_dataset, parallel_dataset):
    """A LoRA tagger trained 1 step and saved by `trainer.save_model`: (folder, base folder, its logits on INPUTS)."""
    root = tmp_path_factory.mktemp("peft")
    base_folder = str(root / "base")
    tagger(tokenizer).save_pretrained(base_folder)  # the base checkpoint the adapter records
    model = with_lora(XLMRobertaForTokenClassification.from_pretrained(base_folder))
    args = make_args(root, max_steps=1, alignment_loss=["contrastive"], alignment_layer=ALIGNMENT_LAYER)
    collator = DataCollatorForTokenClassification(tokenizer)
    trainer = make_trainer(tokenizer, task_dataset, parallel_dataset, collator, args, model=model)
    trainer.train()
    folder = str(root / "adapter")
    trainer.save_model(folder)
    return folder, base_folder, logits(model, tokenizer)


def test_save_writes_the_adapter_and_card_and_loads_back(saved_adapter, tokenizer, monkeypatch):
    folder, base_folder, expected = saved_adapter
    files = set(os.listdir(folder))
    assert {"adapter_config.json", "adapter_model.safetensors", "alignment_config.json", "README.md"} <= files
    assert not files & {"model.safetensors", "config.json"}  # the adapter only, as PEFT saves it
    with open(os.path.join(folder, "adapter_config.json"), encoding="utf-8") as f:
        adapter_config = json.load(f)
    assert (adapter_config["r"], adapter_config["lora_alpha"]) == (4, 8)
    assert adapter_config["base_model_name_or_path"] == base_folder

    def no_pickle(*args, **kwargs):
        raise AssertionError("torch.load (pickle) was called while loading")

    monkeypatch.setattr(torch, "load", no_pickle)
    base_alone = XLMRobertaForTokenClassification.from_pretrained(base_folder)
    assert not torch.allclose(logits(base_alone, tokenizer), expected, atol=1e-3)  # the adapter matters
    loaded, _, alignment_config = load_aligned(folder)
    documented = peft.PeftModel.from_pretrained(base_alone, folder)  # the way PEFT's documentation gives
    assert isinstance(loaded, peft.PeftModel)
    assert alignment_config["adapter"]["architectures"] == ["XLMRobertaForTokenClassification"]
    for reloaded in (loaded, documented):
        torch.testing.assert_close(logits(reloaded, tokenizer), expected, atol=1e-6, rtol=0)

    with open(os.path.join(folder, "README.md"), encoding="utf-8") as f:
        card = f.read()
    assert "library_name: peft" in card
    assert (
        f"LoRA adapter (r 4; alpha 8; target modules `query`, `value`; trained in full: `classifier`) on `{base_folder}`"
        in card
    )
    assert 'PeftModel.from_pretrained(base, "adapter")' in card
    assert f'AutoModelForTokenClassification.from_pretrained("{base_folder}", num_labels={len(TAGS)})' in card


def test_the_published_files_alone_load_back(saved_adapter, tokenizer, tmp_path):
    # What a push uploads (hf_xalign.hub.publishable_files), copied to a folder of its own as a download would be.
    folder, _, expected = saved_adapter
    published = publishable_files(folder)
    assert {"adapter_config.json", "adapter_model.safetensors", "alignment_config.json"} <= set(published)
    assert not any(name.endswith(".bin") for name in published)  # training_args.bin stays home
    remote = tmp_path / "downloaded"
    remote.mkdir()
    for name in published:
        shutil.copy(os.path.join(folder, name), remote / name)
    torch.testing.assert_close(logits(load_aligned(str(remote)).model, tokenizer), expected, atol=1e-6, rtol=0)


def test_head_learning_rate_reaches_the_classifier_copy(tmp_path, tokenizer, task_dataset, task_collator):
    model = with_lora(tagger(tokenizer))
    args = make_args(tmp_path, alignment_mode="none", head_learning_rate=0.02)
    trainer = AlignmentTrainer(model=model, args=args, train_dataset=task_dataset, data_collator=task_collator)
    optimizer = trainer.create_optimizer()
    head = {id(p) for n, p in model.named_parameters() if ".classifier.modules_to_save." in n}
    in_head_groups = {id(p) for group in optimizer.param_groups if group["lr"] == 0.02 for p in group["params"]}
    assert in_head_groups == head and len(head) == 2


def test_prompt_learning_is_refused_at_construction(tmp_path, tokenizer, parallel_dataset):
    config = peft.PromptTuningConfig(task_type="TOKEN_CLS", num_virtual_tokens=2)
    model = peft.get_peft_model(tagger(tokenizer), config)
    args = make_args(tmp_path, max_steps=1)
    with pytest.raises(NotImplementedError, match="prompt learning"):
        AlignmentTrainer(model=model, args=args, alignment_dataset=parallel_dataset, processing_class=tokenizer)
