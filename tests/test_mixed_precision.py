"""fp16 loss scaling: the measurement and the combining rules see the unscaled gradients, and an
overflowed (skipped) step is logged as skipped without touching running means or rule state.

accelerate builds no `GradScaler` on CPU, so the tests put a `torch.amp.GradScaler("cpu")` into
the accelerator before training, where fp16 training on a GPU has its own: every backward then
runs on the scaled loss and the optimizer step unscales (and skips on inf) through it. Clipping
is off: on CPU accelerate does not unscale before clipping or before the logged gradient norm, so
that norm is of the scaled gradients here (on a GPU it is not). The oracle is the same run without
a scaler: scaling by a power of two is exact, so everything agrees to rounding. Under bf16
autocast (no scaler) the statistics are float64 sums of the step's gradients.

An overflow is a gradient that is not finite: the scaled gradients must leave float32's range
(largest value 2**128), which at a scale of 2**127 takes a gradient of magnitude 2 or more, hence a
large λ in that test. A scale at which the gradients stay finite but their squares do not is no
overflow: the scaler steps, and the step is measured.
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import make_model
from test_trainer import make_args, make_trainer
from transformers import TrainerCallback

from hf_xalign.conflict import TASK

SCALE = 2.0**12
OVERFLOW_SCALE = 2.0**127  # with OVERFLOW_LAMBDA the scaled contrastive gradients exceed float32's range
OVERFLOW_LAMBDA = 16.0  # the largest gradient is about 4 (about 0.4 at λ = 0.7, when nothing overflows)
BACKOFF = 2.0**-115  # after the overflow the scaler falls back to 2**12 at once


def train(data, tmp_path, scaler: torch.amp.GradScaler | None, **options):
    tokenizer, task_dataset, parallel_dataset, task_collator = data
    defaults = dict(max_steps=3, optim="sgd", max_grad_norm=0.0, per_device_train_batch_size=4, alignment_lambda=0.7)
    args = make_args(tmp_path, **{**defaults, **options})
    trainer = make_trainer(tokenizer, task_dataset, parallel_dataset, task_collator, args)
    if scaler is not None:
        trainer.accelerator.scaler = scaler  # before train(): the prepared optimizer steps through it
    trainer.train()
    return trainer


@pytest.fixture
def data(tokenizer, task_dataset, parallel_dataset, task_collator):
    return tokenizer, task_dataset, parallel_dataset, task_collator


def assert_same_measurement(got, expected):
    assert not got.skipped
    for key in ("cosine", "task_norm", "align_norm"):
        assert getattr(got, key) == pytest.approx(getattr(expected, key), rel=1e-6), key
    assert set(got.per_group) == set(expected.per_group)
    for group, values in expected.per_group.items():
        for key, value in values.items():
            assert got.per_group[group][key] == pytest.approx(value, rel=1e-6, nan_ok=True), (group, key)


@pytest.mark.parametrize("rule", ["sum", "balance"])
def test_scaled_run_logs_and_steps_as_the_unscaled_run(tmp_path, data, rule):
    scaler = torch.amp.GradScaler("cpu", init_scale=SCALE, growth_interval=1000)
    scaled = train(data, tmp_path / "scaled", scaler, gradient_combination=rule)
    plain = train(data, tmp_path / "plain", None, gradient_combination=rule)
    assert scaler.get_scale() == SCALE  # no step overflowed
    measured, expected = scaled.conflict_callback.measurements, plain.conflict_callback.measurements
    assert len(measured) == len(expected) == 3
    for got, reference in zip(measured, expected):
        assert_same_measurement(got, reference)
    # balance rescales A to |T|: with scaled norms in the rule the step would differ
    for (name, reference), got in zip(plain.model.named_parameters(), scaled.model.parameters()):
        torch.testing.assert_close(got, reference, atol=1e-6, rtol=0, msg=name)


def test_overflowed_step_is_skipped_and_leaves_means_and_gradvac_state_alone(tmp_path, data):
    # learning rate 0: the skipped step and a taken one leave the same model, so step 1 of both runs
    # measures the same gradients; only step 1 may feed the running means and GradVac's targets.
    options = dict(
        max_steps=2,
        learning_rate=0.0,
        gradient_combination="gradvac",
        gradvac_beta=0.5,
        alignment_lambda=OVERFLOW_LAMBDA,
    )
    scaler = torch.amp.GradScaler("cpu", init_scale=OVERFLOW_SCALE, backoff_factor=BACKOFF, growth_interval=1000)
    overflowed = train(data, tmp_path / "overflowed", scaler, **options)
    plain = train(data, tmp_path / "plain", None, **options)
    assert scaler.get_scale() == OVERFLOW_SCALE * BACKOFF  # the scaler found inf once, at step 0

    first, second = overflowed.conflict_callback.measurements
    assert first.skipped and first.step == 0
    assert second.step == 1
    assert_same_measurement(second, plain.conflict_callback.measurements[1])

    cosine_at_1 = plain.conflict_callback.measurements[1].cosine
    first_log, second_log = [entry for entry in overflowed.state.log_history if "loss" in entry]
    assert first_log["conflict/skipped_steps"] == 1
    assert [key for key in first_log if key.startswith("conflict/")] == ["conflict/skipped_steps"]
    assert "conflict/skipped_steps" not in second_log
    assert second_log["conflict/cosine"] == pytest.approx(cosine_at_1, rel=1e-6)
    summary = overflowed.conflict_callback.summary
    assert (summary["measured_steps"], summary["skipped_steps"]) == (1, 1)
    assert summary["mean_cosine"] == pytest.approx(cosine_at_1, rel=1e-6)

    # GradVac's targets start at 0 and move once: 0.5 * 0 + 0.5 * cos_g(step 1) per group with a cosine
    expected_targets = {
        group: 0.5 * values["cosine"]
        for group, values in plain.conflict_callback.measurements[1].per_group.items()
        if not math.isnan(values["cosine"])
    }
    targets = overflowed.combination_state.gradvac_targets
    assert set(targets) == set(expected_targets)
    for group, target in expected_targets.items():
        assert targets[group] == pytest.approx(target, rel=1e-6), group


def test_finite_scaled_gradients_with_overflowing_squares_are_measured_not_skipped(tmp_path, data):
    # At 2**127 and λ = 0.7 every scaled gradient is finite (the largest is about 0.4 * 2**127) but its
    # square is not: GradScaler finds no inf, so the step is no overflow and must be measured as unscaled.
    options = dict(max_steps=1, learning_rate=0.0, gradient_combination="gradvac", gradvac_beta=0.5)
    scaler = torch.amp.GradScaler("cpu", init_scale=OVERFLOW_SCALE, growth_interval=1000)
    scaled = train(data, tmp_path / "scaled", scaler, **options)
    plain = train(data, tmp_path / "plain", None, **options)
    (got,) = scaled.conflict_callback.measurements
    (expected,) = plain.conflict_callback.measurements
    assert_same_measurement(got, expected)
    (log,) = [entry for entry in scaled.state.log_history if "loss" in entry]
    assert "conflict/skipped_steps" not in log
    assert log["conflict/cosine"] == pytest.approx(expected.cosine, rel=1e-6)


class SplitCapture(TrainerCallback):
    """Copies the first step's total gradient G and task part T (the splitter's buffer) before the optimizer step."""

    def __init__(self) -> None:
        self.trainer, self.task, self.total = None, None, None

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        if self.task is None:
            splitter = self.trainer.gradient_splitter
            self.task = [t.detach().clone() for t in splitter.buffers[TASK]]
            self.total = [splitter.gradient(i).detach().clone() for i in range(len(splitter.params))]


def test_bf16_autocast_statistics_are_float64_sums_of_the_step_gradients(tmp_path, data):
    tokenizer, task_dataset, parallel_dataset, task_collator = data
    args = make_args(
        tmp_path, max_steps=1, bf16=True, max_grad_norm=0.0, per_device_train_batch_size=4, alignment_lambda=0.7
    )
    capture = SplitCapture()
    trainer = make_trainer(tokenizer, task_dataset, parallel_dataset, task_collator, args, callbacks=[capture])
    capture.trainer = trainer
    trainer.train()
    assert trainer.accelerator.mixed_precision == "bf16"
    # Oracle: every value cast to float64 first, A = G - T, summed over the whole model.
    task = torch.cat([t.double().flatten() for t in capture.task])
    align = torch.cat([g.double().flatten() for g in capture.total]) - task
    (measured,) = trainer.conflict_callback.measurements
    assert measured.task_norm == pytest.approx(float(task.norm()), rel=1e-6)
    assert measured.align_norm == pytest.approx(float(align.norm()), rel=1e-6)
    assert measured.cosine == pytest.approx(float(task @ align / (task.norm() * align.norm())), rel=1e-5)


def contrastive_loss_by_hand(encoder: torch.nn.Module, batch: dict, temperature: float = 0.05) -> float:
    """Symmetric InfoNCE of mean-pooled last-layer vectors (non-special, non-padding tokens), written out."""
    hidden = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    mask = (batch["attention_mask"] * (1 - batch["special_tokens_mask"])).unsqueeze(-1)  # (2 * pairs, seq, 1)
    vectors = (hidden * mask).sum(dim=1) / mask.sum(dim=1)  # (2 * pairs, dim)
    pairs = vectors.shape[0] // 2
    src = torch.nn.functional.normalize(vectors[:pairs], dim=-1)
    tgt = torch.nn.functional.normalize(vectors[pairs:], dim=-1)
    logits = src @ tgt.T / temperature  # (pairs, pairs): row i, source i against every target
    labels = torch.arange(pairs)
    cross_entropy = torch.nn.functional.cross_entropy
    return float((cross_entropy(logits, labels) + cross_entropy(logits.T, labels)) / 2)


def test_bf16_alignment_forward_runs_under_the_task_forwards_autocast(tmp_path, data):
    tokenizer, task_dataset, parallel_dataset, task_collator = data
    args = make_args(tmp_path, max_steps=1, bf16=True, per_device_train_batch_size=4, alignment_lambda=0.7)
    model = make_model(tokenizer)
    start = make_model(tokenizer)  # the same weights (same seed): the state the first alignment forward sees
    trainer = make_trainer(tokenizer, task_dataset, parallel_dataset, task_collator, args, model=model)
    trainer.train()
    (logged,) = [entry["align/contrastive"] for entry in trainer.state.log_history if "align/contrastive" in entry]

    batch = trainer.alignment_stream.batch(0, 0)  # step 0's batch: a function of (seed, step, rank)
    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            under_autocast = contrastive_loss_by_hand(start.roberta, batch)
        in_fp32 = contrastive_loss_by_hand(start.roberta, batch)
    assert abs(under_autocast - in_fp32) > 1e-3 * abs(in_fp32)  # bf16 rounding shows at this size
    assert logged == pytest.approx(under_autocast, rel=1e-5)
