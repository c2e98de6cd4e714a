"""Gradient-conflict measurement: each statistic against an independent autograd oracle.

The oracle is always an identical, separate model differentiated with `torch.autograd.grad`:
the task gradient `T` from the task loss alone, the alignment gradient `A` from `λ *` the
alignment loss alone (written out by hand where possible), and the cosines and norms summed
by hand in float64, per parameter group named by hand.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re

import pytest
import torch
from conftest import make_model
from test_trainer import hand_contrastive, make_args, make_trainer, train_recording_task_batches

from hf_xalign import AlignmentTrainingArguments
from hf_xalign.conflict import GradientSplitter, parameter_group
from hf_xalign.files import CONFLICT_LOG_NAME, CONFLICT_SUMMARY_NAME
from hf_xalign.losses import MaskedLMLoss
from hf_xalign.pooling import ParallelEncoding

LAMBDA = 0.7


# ---- oracle helpers (no library code) ----


def hand_group(name: str) -> str:
    """The reporting group of a parameter of the tiny XLM-R tagger, named by hand: `layer.k` for the
    parameters that produce `hidden_states[k]` (the embeddings for k = 0, block `encoder.layer[k-1]` after)."""
    if name.startswith("roberta.embeddings."):
        return "layer.0"
    block = re.fullmatch(r"roberta\.encoder\.layer\.(\d+)\..*", name)
    if block:
        return f"layer.{int(block.group(1)) + 1}"
    if name.startswith("classifier."):
        return "head"
    raise AssertionError(f"unexpected parameter {name}")


def gradients(loss: torch.Tensor, named_params: list[tuple[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """`{name: d loss / d param}` by torch.autograd.grad, zeros where the loss does not reach a parameter."""
    params = [p for _, p in named_params]
    grads = torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True)
    return {
        name: (torch.zeros_like(p) if g is None else g).detach().double() for (name, p), g in zip(named_params, grads)
    }


def stats(task: dict[str, torch.Tensor], align: dict[str, torch.Tensor], names) -> dict[str, float]:
    """Cosine and norms of the concatenation of the named parameters' gradients, in float64."""
    dot = sum(float((task[n] * align[n]).sum()) for n in names)
    task_sq = sum(float((task[n] ** 2).sum()) for n in names)
    align_sq = sum(float((align[n] ** 2).sum()) for n in names)
    return {  # the cosine is undefined (NaN) where one gradient is zero, e.g. alignment on the task head
        "cosine": dot / math.sqrt(task_sq * align_sq) if task_sq * align_sq > 0 else math.nan,
        "task_norm": math.sqrt(task_sq),
        "align_norm": math.sqrt(align_sq),
    }


def sentence_vectors(encoder, batch):
    """Mean-pooled (non-special, non-padding tokens) source and target vectors from two SEPARATE forwards."""
    pairs = batch["input_ids"].shape[0] // 2
    vectors = []
    for rows in (slice(0, pairs), slice(pairs, 2 * pairs)):
        ids, mask = batch["input_ids"][rows], batch["attention_mask"][rows]
        keep = (mask * (1 - batch["special_tokens_mask"][rows])).unsqueeze(-1).double()
        states = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        vectors.append((states * keep).sum(1) / keep.sum(1))
    return vectors


def hand_mse(encoder, batch):
    src, tgt = sentence_vectors(encoder, batch)
    return ((src - tgt) ** 2).mean()


def approx(value):
    return pytest.approx(value, rel=1e-5, abs=1e-5, nan_ok=True)


# ---- the measurement against the oracle ----


@pytest.mark.parametrize("accumulation", [1, 2])
def test_logged_statistics_equal_autograd_oracle(
    tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator, accumulation
):
    args = make_args(
        tmp_path,
        max_steps=1,
        max_grad_norm=0.0,
        conflict_every=1,
        alignment_loss=["contrastive"],
        alignment_lambda=LAMBDA,
        per_device_train_batch_size=8 // accumulation,
        gradient_accumulation_steps=accumulation,
    )
    model, reference = make_model(tokenizer).double(), make_model(tokenizer).double()  # same seed, same weights
    trainer, seen = train_recording_task_batches(tokenizer, task_dataset, parallel_dataset, task_collator, args, model)

    # Oracle: T = ∇ mean_micro task loss, A = ∇ λ mean_micro contrastive loss (hand-written).
    named = list(reference.named_parameters())
    task_loss = sum(reference(**batch).loss for batch in seen[:accumulation]) / accumulation
    align_loss = (
        LAMBDA
        * sum(
            hand_contrastive(reference.base_model, trainer.alignment_stream.batch(0, micro), args.alignment_temperature)
            for micro in range(accumulation)
        )
        / accumulation
    )
    task, align = gradients(task_loss, named), gradients(align_loss, named)
    names = [n for n, _ in named]
    expected = stats(task, align, names)
    groups = sorted({hand_group(n) for n in names})
    assert groups == ["head", "layer.0", "layer.1", "layer.2"]
    assert float(sum((align[n] ** 2).sum() for n in names if hand_group(n) == "head")) == 0.0  # head: task only
    expected_groups = {g: stats(task, align, [n for n in names if hand_group(n) == g]) for g in groups}

    # 1. the measurement object
    (measurement,) = trainer.conflict_callback.measurements
    assert measurement.step == 0
    for key, value in expected.items():
        assert getattr(measurement, key) == approx(value), key
    assert set(measurement.per_group) == set(groups)
    for group, values in expected_groups.items():
        for key, value in values.items():
            assert measurement.per_group[group][key] == approx(value), (group, key)

    # 2. the Trainer's logs (and so every report_to target)
    (logged,) = [h for h in trainer.state.log_history if "conflict/cosine" in h]
    for key, value in expected.items():
        assert logged[f"conflict/{key}"] == approx(value), key
    for group, values in expected_groups.items():
        for key, value in values.items():
            if math.isnan(value):  # undefined values are left out of the logs
                assert f"conflict/{group}/{key}" not in logged, (group, key)
            else:
                assert logged[f"conflict/{group}/{key}"] == approx(value), (group, key)

    # 3. the line in conflict.jsonl
    with open(os.path.join(args.output_dir, CONFLICT_LOG_NAME), encoding="utf-8") as f:
        (record,) = [json.loads(line) for line in f]
    assert record["step"] == 0
    for key, value in expected.items():
        assert record[key] == approx(value), key
    for group, values in expected_groups.items():
        for key, value in values.items():
            got = record["per_group"][group][key]
            assert (got is None) if math.isnan(value) else got == approx(value), (group, key)  # JSON null = undefined


def test_per_objective_cosines_with_mlm_equal_autograd_oracle(
    tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator
):
    args = make_args(
        tmp_path,
        max_steps=1,
        max_grad_norm=0.0,
        conflict_every=1,
        alignment_loss=["contrastive", "mlm"],
        alignment_lambda=LAMBDA,
    )
    model, reference = make_model(tokenizer).double(), make_model(tokenizer).double()
    seen = []

    def recording_collator(rows):
        batch = task_collator(rows)
        seen.append({k: v.clone() for k, v in batch.items()})
        return batch

    trainer = make_trainer(tokenizer, task_dataset, parallel_dataset, recording_collator, args, model=model)
    head_state = copy.deepcopy(trainer.alignment_losses[1].state_dict())  # the MLM head before its first update
    trainer.train()

    # Oracle: the same MLM head on the reference, each objective differentiated on its own.
    mlm = MaskedLMLoss()
    mlm.setup(reference)
    mlm.load_state_dict(head_state)
    named = list(reference.named_parameters()) + [(f"loss.mlm.{n}", p) for n, p in mlm.named_parameters()]
    batch = trainer.alignment_stream.batch(0, 0)
    task = gradients(reference(**seen[0]).loss, named)
    contrastive = gradients(LAMBDA * hand_contrastive(reference.base_model, batch, args.alignment_temperature), named)
    masked_lm = gradients(LAMBDA * mlm(ParallelEncoding(reference.base_model, batch)), named)
    names = [n for n, _ in named]
    assert any(float(masked_lm[n].abs().sum()) > 0 for n in names if n.startswith("loss.mlm."))

    (measurement,) = trainer.conflict_callback.measurements
    assert set(measurement.per_objective) == {"contrastive", "mlm"}
    (logged,) = [h for h in trainer.state.log_history if "conflict/cosine" in h]
    for objective, align in (("contrastive", contrastive), ("mlm", masked_lm)):
        for key, value in stats(task, align, names).items():
            assert measurement.per_objective[objective][key] == approx(value), (objective, key)
            assert logged[f"conflict/{objective}/{key}"] == approx(value), (objective, key)
    # the loss-owned head is part of the (global) alignment gradient
    total = {n: contrastive[n] + masked_lm[n] for n in names}
    assert measurement.align_norm == approx(stats(task, total, names)["align_norm"])
    head_names = [n for n in names if n.startswith("loss.mlm.")]
    assert measurement.per_group["loss.mlm"]["align_norm"] == approx(
        math.sqrt(sum(float((masked_lm[n] ** 2).sum()) for n in head_names))
    )


def test_split_shared_forward_gives_each_loss_its_own_cosine(
    tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator
):
    args = make_args(
        tmp_path,
        max_steps=1,
        max_grad_norm=0.0,
        conflict_every=1,
        alignment_loss=["contrastive", "mse"],
        alignment_lambda=LAMBDA,
        conflict_split_shared_forward=True,
    )
    model, reference = make_model(tokenizer).double(), make_model(tokenizer).double()
    trainer, seen = train_recording_task_batches(tokenizer, task_dataset, parallel_dataset, task_collator, args, model)

    named = list(reference.named_parameters())
    names = [n for n, _ in named]
    batch = trainer.alignment_stream.batch(0, 0)
    task = gradients(reference(**seen[0]).loss, named)
    oracles = {
        "contrastive": gradients(
            LAMBDA * hand_contrastive(reference.base_model, batch, args.alignment_temperature), named
        ),
        "mse": gradients(LAMBDA * hand_mse(reference.base_model, batch), named),
    }
    (measurement,) = trainer.conflict_callback.measurements
    assert set(measurement.per_objective) == {"contrastive", "mse"}
    for objective, align in oracles.items():
        for key, value in stats(task, align, names).items():
            assert measurement.per_objective[objective][key] == approx(value), (objective, key)


def test_split_shared_forward_changes_no_gradient(tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator):
    final = {}
    for split in (False, True):
        args = make_args(
            tmp_path / str(split),
            max_steps=2,
            conflict_every=1,
            alignment_loss=["contrastive", "mse"],
            alignment_lambda=LAMBDA,
            conflict_split_shared_forward=split,
        )
        trainer = make_trainer(
            tokenizer, task_dataset, parallel_dataset, task_collator, args, model=make_model(tokenizer).double()
        )
        assert [name for name, _ in trainer.alignment_groups] == (["contrastive", "mse"] if split else ["shared"])
        trainer.train()
        final[split] = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    for name, value in final[False].items():
        torch.testing.assert_close(final[True][name], value, atol=1e-6, rtol=0, msg=name)


def test_measuring_with_sum_leaves_training_bitwise_unchanged(
    tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator
):
    final = {}
    for every in (0, 1):
        args = make_args(
            tmp_path / str(every),
            max_steps=4,
            conflict_every=every,
            gradient_combination="sum",
            alignment_loss=["contrastive", "mlm"],
            per_device_train_batch_size=4,
            alignment_batch_size=4,
        )
        trainer = make_trainer(
            tokenizer,
            task_dataset,
            parallel_dataset,
            task_collator,
            args,
            model=make_model(tokenizer, dropout=0.1, seed=3),
        )
        trainer.train()
        assert len(trainer.conflict_callback.measurements if every else []) == (4 if every else 0)
        final[every] = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
        final[every].update({f"loss.{n}": p.detach().clone() for n, p in trainer.alignment_losses.named_parameters()})
    assert final[0].keys() == final[1].keys()
    for name, value in final[0].items():
        assert torch.equal(final[1][name], value), name


def test_jsonl_has_one_line_per_measured_step_and_summary_matches_it(
    tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator
):
    args = make_args(tmp_path, max_steps=4, conflict_every=2, per_device_train_batch_size=4, alignment_batch_size=4)
    trainer = make_trainer(tokenizer, task_dataset, parallel_dataset, task_collator, args)
    trainer.train()
    with open(os.path.join(args.output_dir, CONFLICT_LOG_NAME), encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    assert [r["step"] for r in records] == [0, 2]
    with open(os.path.join(args.output_dir, CONFLICT_SUMMARY_NAME), encoding="utf-8") as f:
        summary = json.load(f)
    cosines = [r["cosine"] for r in records]
    assert summary["measured_steps"] == 2
    assert summary["mean_cosine"] == approx((cosines[0] + cosines[1]) / 2)
    assert summary["negative_cosine_fraction"] == approx(sum(c < 0 for c in cosines) / 2)
    assert summary["median_cosine"] == approx((cosines[0] + cosines[1]) / 2)  # the median of two values
    assert summary["mean_norm_ratio"] == approx(sum(r["align_norm"] / r["task_norm"] for r in records) / 2)
    for group in ("layer.0", "layer.1", "layer.2"):
        group_cosines = [r["per_group"][group]["cosine"] for r in records]
        assert summary["per_group"][group]["mean_cosine"] == approx(sum(group_cosines) / 2), group


def test_resumed_run_keeps_one_jsonl_line_per_step(tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator):
    from transformers import TrainerCallback

    class CrashAfterStep3(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            control.should_training_stop = state.global_step == 3

    common = dict(
        max_steps=4, save_strategy="steps", save_steps=2, per_device_train_batch_size=4, alignment_batch_size=4
    )
    args = make_args(tmp_path, **common)
    first = make_trainer(tokenizer, task_dataset, parallel_dataset, task_collator, args, callbacks=[CrashAfterStep3()])
    first.train()  # measured steps 0, 1, 2; checkpoint-2 holds the state after steps 0 and 1
    resumed = make_trainer(tokenizer, task_dataset, parallel_dataset, task_collator, make_args(tmp_path, **common))
    resumed.train(resume_from_checkpoint=os.path.join(args.output_dir, "checkpoint-2"))  # replays steps 2, 3
    with open(os.path.join(args.output_dir, CONFLICT_LOG_NAME), encoding="utf-8") as f:
        steps = [json.loads(line)["step"] for line in f]
    assert steps == [0, 1, 2, 3]
    assert resumed.conflict_callback.summary["measured_steps"] == 4  # the summary covers the whole run


# ---- naming and validation ----


@pytest.mark.parametrize(
    "name, prefix, group",
    [
        ("bert.embeddings.word_embeddings.weight", "bert", "layer.0"),
        ("bert.embeddings.LayerNorm.bias", "bert", "layer.0"),
        ("bert.encoder.layer.0.attention.self.query.weight", "bert", "layer.1"),
        ("bert.encoder.layer.11.output.dense.bias", "bert", "layer.12"),
        ("bert.pooler.dense.weight", "bert", "encoder"),
        ("roberta.encoder.layer.3.intermediate.dense.weight", "roberta", "layer.4"),
        ("roberta.embeddings.position_embeddings.weight", "roberta", "layer.0"),
        ("classifier.weight", "roberta", "head"),
        ("classifier.dense.weight", "roberta", "head"),
        ("lm_head.layer_norm.weight", "roberta", "head"),
        ("loss.mlm.head.dense.weight", "roberta", "loss.mlm"),
        ("loss.tlm.head.bias", "roberta", "loss.tlm"),
    ],
)
def test_parameter_group_of_hand_written_names(name, prefix, group):
    assert parameter_group(name, prefix) == group


def test_groups_are_ordered_by_layer_number_then_encoder_head_and_losses():
    names = [
        "loss.mlm.head.bias",
        "classifier.weight",
        "bert.pooler.dense.weight",
        "bert.encoder.layer.9.output.dense.bias",  # layer.10: sorted by number, not as text
        "bert.encoder.layer.1.output.dense.bias",
        "bert.embeddings.word_embeddings.weight",
    ]
    splitter = GradientSplitter([(name, torch.nn.Parameter(torch.zeros(1))) for name in names], "bert", ["shared"])
    assert splitter.group_names == ["layer.0", "layer.2", "layer.10", "encoder", "head", "loss.mlm"]


def test_combining_rule_needs_a_measurement_every_step(tmp_path):
    with pytest.raises(ValueError, match="conflict_every"):
        make_args(tmp_path, gradient_combination="pcgrad", conflict_every=2)


def test_unknown_combining_rule_lists_the_known_ones(tmp_path):
    with pytest.raises(ValueError) as error:
        AlignmentTrainingArguments(output_dir=str(tmp_path), gradient_combination="mgda", report_to=[], use_cpu=True)
    for name in ("'mgda'", "sum", "pcgrad", "gradvac", "balance", "adaptive"):
        assert name in str(error.value)


def test_alternate_mode_measures_the_steps_that_align(
    tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator
):
    args = make_args(tmp_path, max_steps=8, alignment_mode="alternate", alignment_every=2, conflict_every=2)
    trainer = make_trainer(tokenizer, task_dataset, parallel_dataset, task_collator, args)
    trainer.train()
    # aligned steps are 1, 3, 5, 7 (0-based); every 2nd of them is measured
    assert [m.step for m in trainer.conflict_callback.measurements] == [1, 5]


# ---- the splitter's fused partial sums and copy-first capture, on random tensors ----

SPLITTER_SHAPES = [
    ("roberta.embeddings.word_embeddings.weight", (97, 31)),  # spans several segments below
    ("roberta.embeddings.LayerNorm.bias", (31,)),
    ("roberta.encoder.layer.0.attention.self.query.weight", (31, 31)),
    ("roberta.encoder.layer.0.attention.self.query.bias", (31,)),
    ("roberta.encoder.layer.1.output.dense.weight", (64, 31)),
    ("roberta.encoder.layer.1.output.dense.bias", (0,)),  # an empty tensor
    ("roberta.pooler.dense.weight", (5, 7)),  # no gradient in these tests
    ("classifier.weight", (3, 31)),
    ("loss.mlm.bias", (211,)),
]


def random_splitter(dtype, objectives, seed=0):
    """A splitter over random parameters with random G and buffers, as after a measured step."""
    generator = torch.Generator().manual_seed(seed)
    named = [(name, torch.nn.Parameter(torch.empty(shape, dtype=dtype))) for name, shape in SPLITTER_SHAPES]
    splitter = GradientSplitter(named, "roberta", objectives)
    for name in splitter.buffered:
        for buffer in splitter._buffer(name):
            buffer.copy_(torch.randn(buffer.shape, generator=generator, dtype=torch.float64))
    for (name, param), task in zip(named, splitter.buffers["task"]):
        if name.startswith("roberta.pooler"):
            task.zero_()  # no gradient: T is zero too (as the capture leaves it)
            continue
        # G = T + an alignment part of a different scale, so that cosines are not trivial
        param.grad = (task.double() + 0.3 * torch.randn(task.shape, generator=generator, dtype=torch.float64)).to(dtype)
    return splitter


def reference_sums(splitter) -> torch.Tensor:
    """Every product in float64, summed per element: the layout of `partial_sums`."""
    groups = torch.zeros(len(splitter.group_names), 3, dtype=torch.float64)
    per_objective = torch.zeros(len(splitter.alignment_objectives), 2, dtype=torch.float64)
    for i, param in enumerate(splitter.params):
        if param.grad is None:
            continue
        t = splitter.buffers["task"][i].double().flatten()
        a = param.grad.double().flatten() - t
        groups[splitter.group_of[i]] += torch.stack([(t * a).sum(), (t * t).sum(), (a * a).sum()])
        remainder = a.clone()
        for k, name in enumerate(splitter.alignment_objectives):
            part = (
                remainder
                if k == len(splitter.alignment_objectives) - 1
                else splitter.buffers[name][i].double().flatten()
            )
            per_objective[k] += torch.stack([(t * part).sum(), (part * part).sum()])
            if part is not remainder:
                remainder = remainder - part
    if len(splitter.alignment_objectives) > 1:
        return torch.cat([groups.flatten(), per_objective.flatten()])
    return groups.flatten()


def assert_sums_close(sums, reference, splitter, rel):
    """Each sum within `rel` of the reference; a dot relative to the product of its two norms."""
    n_groups = len(splitter.group_names)
    groups, ref_groups = sums[: 3 * n_groups].view(-1, 3), reference[: 3 * n_groups].view(-1, 3)
    for row, ref in zip(groups.tolist(), ref_groups.tolist()):
        assert abs(row[0] - ref[0]) <= rel * math.sqrt(ref[1] * ref[2])
        assert abs(row[1] - ref[1]) <= rel * ref[1] and abs(row[2] - ref[2]) <= rel * ref[2]
    task_sq = ref_groups[:, 1].sum().item()
    for row, ref in zip(sums[3 * n_groups :].view(-1, 2).tolist(), reference[3 * n_groups :].view(-1, 2).tolist()):
        assert abs(row[0] - ref[0]) <= rel * math.sqrt(task_sq * ref[1])
        assert abs(row[1] - ref[1]) <= rel * ref[1]


@pytest.mark.parametrize("objectives", [["shared"], ["shared", "mlm"], ["shared", "mlm", "tlm"]])
@pytest.mark.parametrize("segment, chunk", [(1 << 18, 4096), (1000, 64), (640, 128)])
def test_fused_partial_sums_equal_float64_reference(monkeypatch, objectives, segment, chunk):
    """Float64 gradients: within 1e-9 of the per-element reference (segments cut inside tensors and groups)."""
    monkeypatch.setattr("hf_xalign.conflict.splitter._SEGMENT", segment)
    monkeypatch.setattr("hf_xalign.conflict.splitter._CHUNK", chunk)
    splitter = random_splitter(torch.float64, objectives)
    sums = splitter.partial_sums()
    reference = reference_sums(splitter)
    assert sums.dtype == torch.float64 and sums.shape == reference.shape
    assert_sums_close(sums, reference, splitter, rel=1e-9)
    assert splitter.partial_sums().equal(sums)  # the kept scratch gives the same numbers again
    assert sums.view(-1)[3 * splitter.group_names.index("encoder") :][:3].eq(0).all()  # the pooler: no gradient


@pytest.mark.parametrize("objectives", [["shared"], ["shared", "mlm"]])
def test_fused_partial_sums_float32_accuracy(objectives):
    """Float32 gradients: the chunked float32 dots summed in float64 stay within ~1e-7 of the reference."""
    splitter = random_splitter(torch.float32, objectives, seed=1)
    big = torch.nn.Parameter(torch.empty(3_000_000))  # larger than a segment: dots over 4096-value chunks
    splitter = GradientSplitter(
        [*zip(splitter.names, splitter.params), ("roberta.embeddings.big", big)], "roberta", objectives
    )
    generator = torch.Generator().manual_seed(2)
    for name in splitter.buffered:
        for buffer in splitter._buffer(name):
            buffer.copy_(torch.randn(buffer.shape, generator=generator))
    for param, task in zip(splitter.params, splitter.buffers["task"]):
        param.grad = task + 0.3 * torch.randn(task.shape, generator=generator)
    assert_sums_close(splitter.partial_sums(), reference_sums(splitter), splitter, rel=1e-6)


def _simulated_backward(params, gradients):
    """What autograd does to `.grad`: set it where it is None, accumulate in place otherwise."""
    for param, grad in zip(params, gradients):
        if grad is None:
            continue
        if param.grad is None:
            param.grad = grad.clone()
        else:
            param.grad.add_(grad)


@pytest.mark.parametrize("micro_steps", [1, 2, 3])
@pytest.mark.parametrize("objectives", [["shared"], ["shared", "mlm", "tlm"]])
def test_copy_first_capture_gives_the_zero_and_add_buffer(micro_steps, objectives):
    """The buffers equal (bitwise) `zero_()`, then `-= before` / `+= after` around every backward."""
    generator = torch.Generator().manual_seed(micro_steps)
    named = [(name, torch.nn.Parameter(torch.empty(shape))) for name, shape in SPLITTER_SHAPES]
    params = [param for _, param in named]
    splitter = GradientSplitter(named, "roberta", objectives)

    def random_gradients(skip):  # None for parameters this backward does not reach
        return [None if skip(name) else torch.randn(p.shape, generator=generator) for name, p in named]

    for step in range(2):  # the second step starts from the first step's buffers and zeroed gradients
        for param in params:
            param.grad = None  # Trainer: model.zero_grad() (set_to_none=True)
        splitter.start_step()
        expected = {name: [torch.zeros_like(p) for p in params] for name in splitter.buffered}
        for _ in range(micro_steps):
            backwards = [("task", random_gradients(lambda n: n.startswith(("loss.", "roberta.pooler"))))]
            for objective in objectives:
                backwards.append((objective, random_gradients(lambda n: not n.startswith(("roberta.e", "loss.")))))
            for objective, gradients in backwards:
                before = [None if p.grad is None else p.grad.clone() for p in params]
                with splitter.capture(objective):
                    _simulated_backward(params, gradients)
                if objective in expected:
                    for buffer, old, param in zip(expected[objective], before, params):
                        if old is not None:
                            buffer -= old
                        if param.grad is not None:
                            buffer += param.grad
        for name in splitter.buffered:
            for got, want in zip(splitter.buffers[name], expected[name]):
                assert torch.equal(got, want), (step, name)


def test_conflict_statistic_is_checked_with_the_combining_rule(tmp_path):
    with pytest.raises(ValueError, match="conflict_statistic must be one of"):
        AlignmentTrainingArguments(output_dir=str(tmp_path), conflict_statistic="mean")
    with pytest.raises(ValueError, match="conflict_statistic='pooled' measures each process's own gradients"):
        AlignmentTrainingArguments(output_dir=str(tmp_path), conflict_statistic="pooled", gradient_combination="pcgrad")
    assert AlignmentTrainingArguments(output_dir=str(tmp_path)).conflict_statistic == "averaged"
