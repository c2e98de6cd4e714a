"""AlignmentTrainer behaviour, each against an independent oracle."""

from __future__ import annotations

import json
import os

import pytest
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import DistributedType
from conftest import make_model
from transformers import EarlyStoppingCallback, HfArgumentParser, TrainerCallback, XLMRobertaModel

from hf_xalign import AlignmentTrainer, AlignmentTrainingArguments
from hf_xalign.files import ALIGNMENT_CONFIG_NAME, ALIGNMENT_LOSSES_NAME, ALIGNMENT_STAGE_DIR


def make_args(tmp_path, **overrides) -> AlignmentTrainingArguments:
    options = dict(
        output_dir=str(tmp_path / "run"),
        per_device_train_batch_size=8,
        alignment_batch_size=8,
        learning_rate=1e-3,
        max_steps=4,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=7,
    )
    options.update(overrides)
    return AlignmentTrainingArguments(**options)


def make_trainer(tokenizer, task_dataset, parallel_dataset, task_collator, args, model=None, **kwargs):
    return AlignmentTrainer(
        model=model if model is not None else make_model(tokenizer),
        args=args,
        train_dataset=task_dataset,
        alignment_dataset=parallel_dataset,
        processing_class=tokenizer,
        data_collator=task_collator,
        **kwargs,
    )


def train_recording_task_batches(tokenizer, task_dataset, parallel_dataset, task_collator, args, model, callbacks=()):
    """Train, keeping a copy of every task batch the Trainer's loader collated (it may prefetch one more)."""
    seen = []

    def recording_collator(rows):
        batch = task_collator(rows)
        seen.append({k: v.clone() for k, v in batch.items()})
        return batch

    trainer = make_trainer(
        tokenizer, task_dataset, parallel_dataset, recording_collator, args, model=model, callbacks=list(callbacks)
    )
    trainer.train()
    return trainer, seen


class GradientCapture(TrainerCallback):
    """Copies every parameter's gradient just before the first optimizer step."""

    def __init__(self, model):
        self.model, self.grads = model, None

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        if self.grads is None:
            self.grads = {n: p.grad.detach().clone() for n, p in self.model.named_parameters() if p.grad is not None}


def hand_contrastive(encoder, batch, temperature):
    """Symmetric InfoNCE from two SEPARATE forwards (source rows, target rows), mean pooling by hand."""
    pairs = batch["input_ids"].shape[0] // 2
    vectors = []
    for rows in (slice(0, pairs), slice(pairs, 2 * pairs)):
        ids, mask = batch["input_ids"][rows], batch["attention_mask"][rows]
        keep = (mask * (1 - batch["special_tokens_mask"][rows])).unsqueeze(-1).float()
        states = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        vectors.append((states * keep).sum(1) / keep.sum(1))
    src, tgt = (F.normalize(v, dim=-1) for v in vectors)
    logits = src @ tgt.T / temperature
    labels = torch.arange(pairs)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


@pytest.mark.parametrize("accumulation", [1, 2])
def test_joint_step_gradients_equal_autograd_of_task_plus_lambda_align(
    tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator, accumulation
):
    lam = 0.7
    args = make_args(
        tmp_path,
        max_steps=1,
        max_grad_norm=0.0,
        alignment_lambda=lam,
        per_device_train_batch_size=8 // accumulation,
        gradient_accumulation_steps=accumulation,
    )
    # float64 so that the comparison at 1e-6 tests the algorithm, not float32 summation order
    model, reference = make_model(tokenizer).double(), make_model(tokenizer).double()  # same seed, same weights
    capture = GradientCapture(model)
    trainer, seen_task_batches = train_recording_task_batches(
        tokenizer, task_dataset, parallel_dataset, task_collator, args, model, callbacks=[capture]
    )

    # Oracle: mean over micro-batches of (task loss + λ * contrastive loss written out by hand on
    # two separate forwards), differentiated by torch.autograd.grad on an identical model.
    used_task_batches = seen_task_batches[:accumulation]  # the loader may prefetch one more
    objective = (
        sum(
            reference(**task_batch).loss
            + lam
            * hand_contrastive(
                reference.base_model, trainer.alignment_stream.batch(0, micro), args.alignment_temperature
            )
            for micro, task_batch in enumerate(used_task_batches)
        )
        / accumulation
    )
    names = [n for n, p in reference.named_parameters()]
    expected = torch.autograd.grad(objective, [p for p in reference.parameters()], allow_unused=True)
    for name, grad in zip(names, expected):
        if grad is None:
            assert name not in capture.grads
            continue
        torch.testing.assert_close(capture.grads[name], grad, atol=1e-6, rtol=0, msg=name)


def test_log_history_has_separate_losses_and_lambda_follows_warmup(
    tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator
):
    args = make_args(
        tmp_path,
        max_steps=5,
        alignment_lambda=2.0,
        alignment_lambda_schedule="linear_warmup",
        alignment_lambda_warmup_steps=4,
        alignment_loss=["contrastive", "mse"],
    )
    trainer = make_trainer(tokenizer, task_dataset, parallel_dataset, task_collator, args)
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert [h["step"] for h in logs] == [1, 2, 3, 4, 5]
    for h in logs:
        assert {"task_loss", "align_loss", "align/contrastive", "align/mse", "align_lambda"} <= h.keys()
        # λ at the step being computed (0-based s = step - 1): 2 * min(1, (s + 1) / 4)
        assert h["align_lambda"] == pytest.approx(2.0 * min(1.0, h["step"] / 4))
        assert h["align_loss"] == pytest.approx(h["align/contrastive"] + h["align/mse"], rel=1e-5)
        assert h["loss"] == pytest.approx(h["task_loss"] + h["align_lambda"] * h["align_loss"], rel=1e-5)


def test_step_schedule_of_lambda(tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator):
    args = make_args(
        tmp_path,
        max_steps=4,
        alignment_lambda_schedule="step",
        alignment_lambda_milestones=[1, 3],
        alignment_lambda_milestone_values=[0.5, 0.25],
    )
    trainer = make_trainer(tokenizer, task_dataset, parallel_dataset, task_collator, args)
    trainer.train()
    lambdas = [h["align_lambda"] for h in trainer.state.log_history if "loss" in h]
    assert lambdas == [1.0, 0.5, 0.5, 0.25]


def _params(trainer):
    state = {f"model.{n}": p.detach().clone() for n, p in trainer.model.named_parameters()}
    state.update({f"losses.{n}": p.detach().clone() for n, p in trainer.alignment_losses.named_parameters()})
    return state


class SimulatedCrash(Exception):
    """Raised by `CrashAfterSaving`: the run ends there, as a killed process would."""


class CrashAfterSaving(TrainerCallback):
    """Raises as soon as `checkpoint` has been written, whichever stage writes it."""

    def __init__(self, checkpoint):
        self.checkpoint = checkpoint

    def on_save(self, args, state, control, **kwargs):
        if os.path.join(args.output_dir, f"checkpoint-{state.global_step}") == self.checkpoint:
            raise SimulatedCrash(self.checkpoint)


def train_uninterrupted_and_resumed(data, tmp_path, options, checkpoint, resume_from_last=False):
    """Two runs with the same `options`: one uninterrupted; one that crashes right after writing
    `checkpoint` (relative to `output_dir`), then resumes in a new trainer whose model starts from
    other weights, from that path or (`resume_from_last`) with `resume_from_checkpoint=True`.

    Returns `(uninterrupted trainer, resumed trainer, absolute checkpoint path)`.
    """
    tokenizer = data[0]
    full = make_trainer(*data, make_args(tmp_path / "full", **options), model=make_model(tokenizer))
    full.train()

    interrupted_args = make_args(tmp_path / "resumed", **options)
    checkpoint = os.path.join(interrupted_args.output_dir, checkpoint)
    first = make_trainer(*data, interrupted_args, model=make_model(tokenizer), callbacks=[CrashAfterSaving(checkpoint)])
    with pytest.raises(SimulatedCrash):
        first.train()

    resumed = make_trainer(*data, make_args(tmp_path / "resumed", **options), model=make_model(tokenizer, seed=123))
    resumed.train(resume_from_checkpoint=True if resume_from_last else checkpoint)
    return full, resumed, checkpoint


def assert_same_parameters(expected_trainer, got_trainer):
    expected, got = _params(expected_trainer), _params(got_trainer)
    assert any(k.startswith("losses.") for k in expected)  # a loss-owned head is part of the comparison
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], atol=1e-6, rtol=0, msg=name)


@pytest.fixture
def data(tokenizer, task_dataset, parallel_dataset, task_collator):
    """The leading arguments of `make_trainer`."""
    return tokenizer, task_dataset, parallel_dataset, task_collator


def test_resume_from_checkpoint_matches_uninterrupted_run(tmp_path, data):
    steps = 3
    options = dict(max_steps=2 * steps, alignment_loss=["contrastive", "mlm"], save_strategy="steps", save_steps=steps)
    full, resumed, checkpoint = train_uninterrupted_and_resumed(data, tmp_path, options, f"checkpoint-{steps}")
    assert os.path.isfile(os.path.join(checkpoint, ALIGNMENT_LOSSES_NAME))
    assert_same_parameters(full, resumed)


def test_alternate_mode_aligns_only_every_kth_step(tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator):
    args = make_args(tmp_path, max_steps=6, alignment_mode="alternate", alignment_every=3)
    trainer = make_trainer(tokenizer, task_dataset, parallel_dataset, task_collator, args)
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert all("task_loss" in h for h in logs)
    assert [h["step"] for h in logs if "align_loss" in h] == [3, 6]
    for h in logs:
        expected = h["task_loss"] + (h["align_lambda"] * h["align_loss"] if "align_loss" in h else 0.0)
        assert h["loss"] == pytest.approx(expected, rel=1e-5)


def test_sequential_mode_aligns_first_then_trains_the_task(
    tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator
):
    args = make_args(
        tmp_path, max_steps=3, alignment_mode="sequential", alignment_steps=2, save_strategy="steps", save_steps=2
    )
    task_settings = (args.output_dir, args.max_steps)
    model = make_model(tokenizer)
    head_before = model.classifier.weight.detach().clone()
    trainer = make_trainer(tokenizer, task_dataset, parallel_dataset, task_collator, args, model=model)

    class HeadAfterStage(TrainerCallback):
        def on_train_end(self, args, state, control, **kwargs):
            if getattr(self, "head", None) is None:
                self.head = model.classifier.weight.detach().clone()

    probe = HeadAfterStage()
    trainer.add_callback(probe)
    trainer.train()
    stage_logs = [h for h in trainer.alignment_stage_log_history if "loss" in h]
    task_logs = [h for h in trainer.state.log_history if "loss" in h]
    assert [h["step"] for h in stage_logs] == [1, 2]
    assert all("align_loss" in h and "task_loss" not in h for h in stage_logs)
    assert [h["step"] for h in task_logs] == [1, 2, 3]
    assert all("task_loss" in h and "align_loss" not in h for h in task_logs)
    # the task head is untouched by the alignment stage, then trained
    torch.testing.assert_close(probe.head, head_before, atol=0, rtol=0)
    assert not torch.equal(model.classifier.weight, head_before)
    assert os.path.isdir(os.path.join(args.output_dir, ALIGNMENT_STAGE_DIR, "checkpoint-2"))
    assert os.path.isdir(os.path.join(args.output_dir, "checkpoint-2"))  # the task stage's own
    # the stage ran on arguments of its own: the user's are as they were
    assert trainer.args is args and (args.output_dir, args.max_steps) == task_settings


@pytest.mark.parametrize(
    ("checkpoint", "resume_from_last"),
    [(os.path.join(ALIGNMENT_STAGE_DIR, "checkpoint-2"), True), ("checkpoint-2", False)],
    ids=["in-alignment-stage", "in-task-stage"],
)
def test_sequential_resume_from_either_stage_matches_uninterrupted_run(tmp_path, data, checkpoint, resume_from_last):
    options = dict(
        alignment_mode="sequential",
        alignment_steps=4,
        max_steps=4,
        alignment_loss=["contrastive", "mlm"],
        save_strategy="steps",
        save_steps=2,
    )
    full, resumed, _ = train_uninterrupted_and_resumed(data, tmp_path, options, checkpoint, resume_from_last)
    assert_same_parameters(full, resumed)
    # the alignment stage's logs, also when the resumed run skipped the finished stage
    stage_steps = [h["step"] for h in resumed.alignment_stage_log_history if "loss" in h]
    assert stage_steps == [h["step"] for h in full.alignment_stage_log_history if "loss" in h] == [1, 2, 3, 4]


def test_alignment_only_training_with_a_bare_encoder(tmp_path, tokenizer, parallel_dataset):
    torch.manual_seed(0)
    from hf_xalign.tiny import tiny_xlmr_config

    model = XLMRobertaModel(tiny_xlmr_config(tokenizer))
    args = make_args(tmp_path, max_steps=30, learning_rate=3e-3, logging_steps=10, alignment_loss=["contrastive"])
    trainer = AlignmentTrainer(model=model, args=args, alignment_dataset=parallel_dataset, processing_class=tokenizer)
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert all("task_loss" not in h for h in logs)
    assert logs[-1]["align/contrastive"] < logs[0]["align/contrastive"]


def test_save_writes_loss_state_and_alignment_config(
    tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator
):
    args = make_args(tmp_path, max_steps=1, alignment_loss=["contrastive", "tlm"], alignment_loss_weights=[1.0, 0.5])
    trainer = make_trainer(tokenizer, task_dataset, parallel_dataset, task_collator, args)
    trainer.train()
    trainer.save_model(str(tmp_path / "final"))
    from safetensors.torch import load_file

    saved = load_file(str(tmp_path / "final" / ALIGNMENT_LOSSES_NAME))
    own = trainer.alignment_losses.state_dict()
    assert saved.keys() == own.keys() and "1.head.bias" in saved
    assert not any("word_embeddings" in k for k in saved)  # the tied decoder is the model's, not saved twice
    config = json.loads((tmp_path / "final" / ALIGNMENT_CONFIG_NAME).read_text())
    assert [(loss["name"], loss["weight"]) for loss in config["losses"]] == [("contrastive", 1.0), ("tlm", 0.5)]


def test_loss_parameters_are_optimized(tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator):
    args = make_args(tmp_path, max_steps=2, alignment_loss=["mlm"])
    trainer = make_trainer(tokenizer, task_dataset, parallel_dataset, task_collator, args)
    before = {n: p.detach().clone() for n, p in trainer.alignment_losses.named_parameters()}
    trainer.train()
    optimized = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    for name, param in trainer.alignment_losses.named_parameters():
        assert id(param) in optimized, name
        assert not torch.equal(param, before[name]), name


def test_non_finite_alignment_loss_stops_with_a_clear_error_and_keeps_checkpoints(
    tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator
):
    from hf_xalign.losses import ContrastiveLoss

    class ExplodesAtStep2(ContrastiveLoss):
        calls = 0

        def forward(self, encoding):
            ExplodesAtStep2.calls += 1
            loss = super().forward(encoding)
            return loss * float("nan") if ExplodesAtStep2.calls > 2 else loss

    args = make_args(tmp_path, max_steps=4, save_strategy="steps", save_steps=1)
    trainer = make_trainer(
        tokenizer, task_dataset, parallel_dataset, task_collator, args, alignment_loss=ExplodesAtStep2()
    )
    with pytest.raises(FloatingPointError, match=r"optimizer step 2: alignment loss 'contrastive' = nan\."):
        trainer.train()
    assert os.path.isfile(os.path.join(args.output_dir, "checkpoint-2", "model.safetensors"))


def test_unknown_loss_name_lists_known_losses(tmp_path):
    with pytest.raises(ValueError, match=r"Unknown alignment loss 'infonce'.*contrastive.*mlm"):
        make_args(tmp_path, alignment_loss=["infonce"])


def test_weights_must_match_losses(tmp_path):
    with pytest.raises(ValueError, match="got 1 weights for 2 losses"):
        make_args(tmp_path, alignment_loss=["contrastive", "mlm"], alignment_loss_weights=[1.0])


def test_weights_apply_to_losses_passed_to_the_trainer_by_name(tmp_path, data):
    args = make_args(tmp_path, max_steps=2, alignment_loss=["contrastive", "mse"], alignment_loss_weights=[0.3, 2.0])
    trainer = make_trainer(*data, args, alignment_loss=["mse", "cosine"])
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert [h["step"] for h in logs] == [1, 2]
    for h in logs:  # the weights, in order, on the losses the trainer was given
        assert h["align_loss"] == pytest.approx(0.3 * h["align/mse"] + 2.0 * h["align/cosine"], rel=1e-5)
        assert h["loss"] == pytest.approx(h["task_loss"] + h["align_lambda"] * h["align_loss"], rel=1e-5)


def test_losses_passed_by_name_weigh_1_each_when_no_weights_are_set(tmp_path, data):
    trainer = make_trainer(*data, make_args(tmp_path), alignment_loss=["contrastive", "mse"])
    assert trainer.alignment_loss_weights == [1.0, 1.0]


def test_weights_that_do_not_fit_the_losses_passed_by_name_are_refused(tmp_path, data):
    args = make_args(tmp_path, alignment_loss_weights=[0.5])  # for args.alignment_loss = ["contrastive"]
    with pytest.raises(
        ValueError,
        match=r"alignment_loss_weights has 1 weights, but AlignmentTrainer\(alignment_loss=...\) was given 2 losses "
        r"\(contrastive, mse\).*one weight per loss passed to the trainer.*args.alignment_loss",
    ):
        make_trainer(*data, args, alignment_loss=["contrastive", "mse"])


def test_arguments_from_yaml_and_command_line(tmp_path):
    config = tmp_path / "align.yaml"
    config.write_text(
        "output_dir: out\nalignment_loss: [contrastive, token]\nalignment_loss_weights: [1.0, 0.3]\n"
        "alignment_layer: 6\nalignment_lambda_schedule: linear_warmup\nalignment_lambda_warmup_steps: 100\n"
        "alignment_mode: alternate\nalignment_every: 4\n"
    )
    parser = HfArgumentParser(AlignmentTrainingArguments)
    (from_yaml,) = parser.parse_yaml_file(str(config))
    (from_cli,) = parser.parse_args_into_dataclasses(
        [
            "--output_dir",
            "out",
            "--alignment_loss",
            "contrastive",
            "token",
            "--alignment_loss_weights",
            "1.0",
            "0.3",
            "--alignment_layer",
            "6",
            "--alignment_lambda_schedule",
            "linear_warmup",
            "--alignment_lambda_warmup_steps",
            "100",
            "--alignment_mode",
            "alternate",
            "--alignment_every",
            "4",
        ]
    )
    for parsed in (from_yaml, from_cli):
        assert parsed.alignment_loss == ["contrastive", "token"]
        assert parsed.alignment_loss_weights == [1.0, 0.3]
        assert (parsed.alignment_layer, parsed.alignment_every, parsed.alignment_mode) == (6, 4, "alternate")


def test_resume_restores_gradvac_targets(tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator):
    common = dict(max_steps=4, gradient_combination="gradvac", gradvac_beta=0.5, save_strategy="steps", save_steps=2)
    full = make_trainer(
        tokenizer, task_dataset, parallel_dataset, task_collator, make_args(tmp_path / "full", **common)
    )
    full.train()
    checkpoint = os.path.join(tmp_path / "full" / "run", "checkpoint-2")
    resumed = make_trainer(
        tokenizer,
        task_dataset,
        parallel_dataset,
        task_collator,
        make_args(tmp_path / "resumed", **common),
        model=make_model(tokenizer, seed=3),
    )
    resumed.train(resume_from_checkpoint=checkpoint)
    assert full.combination_state.gradvac_targets  # the EMA moved away from its start
    for group, target in full.combination_state.gradvac_targets.items():
        assert resumed.combination_state.gradvac_targets[group] == pytest.approx(target, abs=1e-9)
    for (name, expected), got in zip(full.model.named_parameters(), resumed.model.parameters()):
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=0, msg=name)


def test_mode_none_trains_exactly_like_a_plain_trainer(tmp_path, tokenizer, task_dataset, task_collator):
    from transformers import Trainer

    args = make_args(tmp_path, max_steps=3, alignment_mode="none")
    ours = AlignmentTrainer(
        model=make_model(tokenizer, dropout=0.1), args=args, train_dataset=task_dataset, data_collator=task_collator
    )
    ours.train()
    plain = Trainer(
        model=make_model(tokenizer, dropout=0.1),
        args=make_args(tmp_path / "plain", max_steps=3),
        train_dataset=task_dataset,
        data_collator=task_collator,
    )
    plain.train()
    assert not os.path.exists(os.path.join(args.output_dir, "conflict.jsonl"))
    for (name, expected), got in zip(plain.model.named_parameters(), ours.model.parameters()):
        assert torch.equal(got, expected), name


def test_a_layer_the_model_does_not_have_is_named_at_construction(
    tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator
):
    args = make_args(tmp_path, alignment_layer=6)  # the tiny model has 2 layers
    with pytest.raises(
        ValueError, match=r"'contrastive': There is no layer 6 in a model with 2 transformer blocks.*alignment_layer"
    ):
        make_trainer(tokenizer, task_dataset, parallel_dataset, task_collator, args)


@pytest.mark.parametrize(
    ("options", "environment", "engine", "fix"),
    [
        (
            dict(fsdp=True, fsdp_config={"version": 1}),
            {},
            r"FSDP1 \(the `fsdp` / `fsdp_config` training arguments",
            "Launch with FSDP2 instead",
        ),
        ({}, {"ACCELERATE_USE_FSDP": "true"}, r"FSDP1 \(`accelerate launch --use_fsdp`", "Launch with FSDP2 instead"),
        ({}, {"ACCELERATE_USE_DEEPSPEED": "true"}, r"DeepSpeed \(`accelerate launch --use_deepspeed`", "FSDP2 or DDP"),
    ],
    ids=["fsdp1-argument", "accelerate-launch-fsdp1", "accelerate-launch-use-deepspeed"],
)
def test_fsdp1_and_deepspeed_are_refused_at_construction(
    tmp_path, data, monkeypatch, options, environment, engine, fix
):
    args = make_args(tmp_path, **options)
    for name, value in environment.items():  # as `accelerate launch` sets them for the launched processes
        monkeypatch.setenv(name, value)
    with pytest.raises(NotImplementedError, match=rf"does not support {engine}.* yet: .*{fix}"):
        make_trainer(*data, args)


def test_fsdp2_asked_for_by_the_launcher_is_accepted(tmp_path, data, monkeypatch):
    # `accelerate launch --use_fsdp --fsdp_version 2` sets both; on CPU accelerate then runs without FSDP.
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("FSDP_VERSION", "2")
    trainer = make_trainer(*data, make_args(tmp_path))
    assert trainer.gradient_splitter is not None


def test_an_accelerator_with_fsdp1_is_refused_at_construction(tmp_path, data, monkeypatch):
    # However it came to be configured (a state prepared by hand, context parallelism), the accelerator decides;
    # without an FSDP plugin saying version 2, FSDP is accelerate's default, FSDP1.
    monkeypatch.setattr(Accelerator, "distributed_type", property(lambda self: DistributedType.FSDP))
    with pytest.raises(NotImplementedError, match=r"does not support FSDP1 \(the accelerator's FSDP plugin\) yet"):
        make_trainer(*data, make_args(tmp_path))


@pytest.mark.skipif(torch.accelerator.is_available(), reason="needs a machine without an accelerator")
def test_no_pin_memory_warning_without_an_accelerator(tmp_path, data, recwarn):
    args = make_args(tmp_path, max_steps=1, use_cpu=False)  # as the demo: no accelerator, use_cpu not set
    assert args.dataloader_pin_memory is False  # nothing to pin memory for
    trainer = make_trainer(*data, args)
    trainer.train()
    trainer.evaluate(eval_dataset=data[1])
    assert not [w for w in recwarn if "pin_memory" in str(w.message)]


def test_head_learning_rate_trains_like_an_optimizer_with_a_head_group(
    tmp_path, tokenizer, task_dataset, task_collator
):
    from transformers import Trainer

    args = make_args(tmp_path, max_steps=3, alignment_mode="none", head_learning_rate=0.02, weight_decay=0.1)
    ours = AlignmentTrainer(
        model=make_model(tokenizer), args=args, train_dataset=task_dataset, data_collator=task_collator
    )
    ours.train()
    # Oracle: a plain Trainer given an AdamW whose groups are cut by hand (head = outside `roberta.`).
    model = make_model(tokenizer)
    plain_args = make_args(tmp_path / "plain", max_steps=3, weight_decay=0.1)
    decay = set(Trainer(model=model, args=plain_args).get_decay_parameter_names(model))
    groups = []
    for in_head, lr in ((False, plain_args.learning_rate), (True, 0.02)):
        for decayed in (True, False):
            params = [
                p
                for n, p in model.named_parameters()
                if (not n.startswith("roberta.")) == in_head and (n in decay) == decayed
            ]
            groups.append({"params": params, "lr": lr, "weight_decay": 0.1 if decayed else 0.0})
    optimizer = torch.optim.AdamW(groups, lr=plain_args.learning_rate, betas=(0.9, 0.999), eps=1e-8)
    plain = Trainer(
        model=model,
        args=plain_args,
        train_dataset=task_dataset,
        data_collator=task_collator,
        optimizers=(optimizer, None),
    )
    plain.train()
    for (name, expected), got in zip(plain.model.named_parameters(), ours.model.parameters()):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6, msg=name)


def test_head_learning_rate_needs_a_head(tmp_path, tokenizer, parallel_dataset):
    args = make_args(tmp_path, max_steps=1, head_learning_rate=0.01)
    trainer = AlignmentTrainer(
        model=make_model(tokenizer).roberta, args=args, alignment_dataset=parallel_dataset, processing_class=tokenizer
    )
    with pytest.raises(ValueError, match="head_learning_rate: the model is a bare encoder"):
        trainer.train()


SAVE_SETTINGS = {
    "no": dict(save_strategy="no"),
    "steps": dict(save_strategy="steps", save_steps=2),
    "epoch": dict(save_strategy="epoch"),
    "best": dict(save_strategy="best", eval_strategy="steps", eval_steps=2, metric_for_best_model="loss"),
    "steps+load_best": dict(
        save_strategy="steps", save_steps=2, eval_strategy="steps", eval_steps=2, load_best_model_at_end=True
    ),
    "epoch+load_best": dict(save_strategy="epoch", eval_strategy="epoch", load_best_model_at_end=True),
    "best+load_best": dict(
        save_strategy="best",
        eval_strategy="steps",
        eval_steps=2,
        metric_for_best_model="loss",
        load_best_model_at_end=True,
    ),
}


@pytest.mark.parametrize("save_setting", list(SAVE_SETTINGS))
def test_sequential_mode_finishes_under_every_save_strategy(
    tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator, save_setting
):
    args = make_args(
        tmp_path, max_steps=3, alignment_mode="sequential", alignment_steps=2, **SAVE_SETTINGS[save_setting]
    )
    user_settings = json.dumps(args.to_dict(), sort_keys=True, default=str)  # a copy taken before training
    # Early stopping needs evaluations, which only the task stage runs.
    callbacks = [EarlyStoppingCallback(early_stopping_patience=5)] if args.load_best_model_at_end else []
    trainer = make_trainer(
        tokenizer, task_dataset, parallel_dataset, task_collator, args, eval_dataset=task_dataset, callbacks=callbacks
    )
    trainer.train()
    assert all(callback in trainer.callback_handler.callbacks for callback in callbacks)  # back for later runs
    stage_steps = [h["step"] for h in trainer.alignment_stage_log_history if "align_loss" in h]
    task_steps = [h["step"] for h in trainer.state.log_history if "task_loss" in h]
    assert (stage_steps, task_steps) == ([1, 2], [1, 2, 3])
    assert trainer.args is args and json.dumps(args.to_dict(), sort_keys=True, default=str) == user_settings
