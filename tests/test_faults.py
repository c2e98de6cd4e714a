"""Faults: non-finite losses (stop with the step and loss named, or skip), and bad set-ups refused before any step."""

from __future__ import annotations

import copy
import json
import logging
import os

import pytest
import torch
from conftest import make_model
from test_trainer import _params, make_args, make_trainer
from transformers import AutoModelForTokenClassification, TrainerCallback, XLMRobertaForTokenClassification

from hf_xalign import AlignmentTrainer
from hf_xalign.files import CONFLICT_LOG_NAME
from hf_xalign.tiny import tiny_xlmr_config


class NonfiniteAt(AlignmentTrainer):
    """Makes the task loss, or the first alignment loss, NaN at chosen `(optimizer step, micro-step)`s."""

    def __init__(self, *args, task_at=(), alignment_at=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.task_at, self.alignment_at = set(task_at), set(alignment_at)
        self.calls = {}  # (objective, optimizer step) -> micro-steps computed so far

    def _poison(self, objective, at, loss):
        step = self.state.global_step
        micro = self.calls.get((objective, step), 0)
        self.calls[(objective, step)] = micro + 1
        return loss * float("nan") if (step, micro) in at else loss

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        return self._poison("task", self.task_at, loss)

    def compute_alignment_loss(self, model, batch):
        parts = super().compute_alignment_loss(model, batch)
        first = next(iter(parts))
        parts[first] = self._poison("alignment", self.alignment_at, parts[first])
        return parts


def nonfinite_trainer(tokenizer, task_dataset, parallel_dataset, task_collator, args, **nonfinite_at):
    """`make_trainer` with a [`NonfiniteAt`] trainer: `task_at=` / `alignment_at=` say where losses turn NaN."""
    return NonfiniteAt(
        model=make_model(tokenizer),
        args=args,
        train_dataset=task_dataset,
        alignment_dataset=parallel_dataset,
        processing_class=tokenizer,
        data_collator=task_collator,
        **nonfinite_at,
    )


class UndoUpdate(TrainerCallback):
    """Oracle of a skipped step: puts parameters and optimizer state back as they were before step `step`'s update."""

    def __init__(self, trainer, step):
        self.trainer, self.step, self.saved = trainer, step, None

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            params = [p.detach().clone() for p in self.trainer._trainable_parameters()]
            self.saved = (params, copy.deepcopy(self.trainer.optimizer.state_dict()))

    def on_optimizer_step(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            params, optimizer_state = self.saved
            with torch.no_grad():
                for param, value in zip(self.trainer._trainable_parameters(), params):
                    param.copy_(value)
            self.trainer.optimizer.load_state_dict(optimizer_state)


class ParameterSnapshots(TrainerCallback):
    """Parameters after each optimizer step."""

    def __init__(self, trainer):
        self.trainer, self.after_step = trainer, {}

    def on_step_end(self, args, state, control, **kwargs):
        self.after_step[state.global_step - 1] = _params(self.trainer)


def conflict_records(trainer):
    with open(os.path.join(trainer.args.output_dir, CONFLICT_LOG_NAME), encoding="utf-8") as f:
        return {record["step"]: record for record in map(json.loads, f)}


def loss_logs(trainer):
    return {h["step"]: h for h in trainer.state.log_history if "loss" in h}


def test_skipped_step_under_accumulation_equals_a_run_that_undoes_that_step(
    tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator, caplog
):
    """NaN task loss on the 2nd micro-step of step 1: the whole step applies nothing, the rest is as without it."""
    options = dict(max_steps=3, gradient_accumulation_steps=2, per_device_train_batch_size=4, skip_nonfinite_steps=1)
    data = (tokenizer, task_dataset, parallel_dataset, task_collator)
    run = nonfinite_trainer(*data, make_args(tmp_path / "skip", **options), task_at={(1, 1)})
    with caplog.at_level(logging.WARNING, logger="hf_xalign"):
        run.train()
    oracle = make_trainer(*data, make_args(tmp_path / "oracle", **options))
    oracle.add_callback(UndoUpdate(oracle, step=1))
    oracle.train()

    got, expected = _params(run), _params(oracle)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], atol=1e-6, rtol=0, msg=name)
    assert [r.getMessage() for r in caplog.records if "Skipping" in r.getMessage()] == [
        "Skipping optimizer step 1: task loss = nan; no update from this step (1 of skip_nonfinite_steps=1 used)."
    ]
    # The measurement and the logged losses leave the skipped step out; the other steps are the oracle's.
    records, oracle_records = conflict_records(run), conflict_records(oracle)
    assert sorted(records) == [0, 2]
    for step in records:
        assert records[step]["cosine"] == pytest.approx(oracle_records[step]["cosine"], abs=1e-6)
    logs, oracle_logs = loss_logs(run), loss_logs(oracle)
    assert [logs[s]["skipped_nonfinite_steps"] for s in (1, 2, 3)] == [0, 1, 1]
    assert "task_loss" not in logs[2] and "conflict/cosine" not in logs[2]
    for s in (1, 3):
        assert logs[s]["task_loss"] == pytest.approx(oracle_logs[s]["task_loss"], abs=1e-6)
        assert logs[s]["align_loss"] == pytest.approx(oracle_logs[s]["align_loss"], abs=1e-6)


def test_skipped_alignment_step_updates_nothing_and_keeps_gradvac_state_finite(
    tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator, caplog
):
    args = make_args(tmp_path, max_steps=4, skip_nonfinite_steps=1, gradient_combination="gradvac", gradvac_beta=0.5)
    trainer = nonfinite_trainer(tokenizer, task_dataset, parallel_dataset, task_collator, args, alignment_at={(1, 0)})
    snapshots = ParameterSnapshots(trainer)
    trainer.add_callback(snapshots)
    with caplog.at_level(logging.WARNING, logger="hf_xalign"):
        trainer.train()

    assert "Skipping optimizer step 1: alignment loss 'contrastive' = nan" in caplog.text
    for name, value in snapshots.after_step[0].items():  # step 1 changed no parameter
        torch.testing.assert_close(snapshots.after_step[1][name], value, atol=0, rtol=0, msg=name)
    assert any(not torch.equal(snapshots.after_step[2][n], v) for n, v in snapshots.after_step[1].items())
    # AdamW counted 3 updates, not 4, for every parameter: its state did not see step 1.
    adam_steps = {float(state["step"]) for state in trainer.optimizer.state_dict()["state"].values()}
    assert adam_steps == {3.0}
    assert sorted(conflict_records(trainer)) == [0, 2, 3]
    targets = trainer.combination_state.gradvac_targets
    assert targets and all(torch.isfinite(torch.tensor(v)) for v in targets.values())
    assert all(torch.isfinite(p).all() for p in _params(trainer).values())


def test_a_nonfinite_task_loss_stops_naming_step_and_loss(
    tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator
):
    """The alignment side: test_trainer.py's test_non_finite_alignment_loss_stops_with_a_clear_error_and_keeps_checkpoints."""
    args = make_args(tmp_path)
    trainer = nonfinite_trainer(tokenizer, task_dataset, parallel_dataset, task_collator, args, task_at={(0, 0)})
    message = r"Non-finite loss at optimizer step 0: task loss = nan\. .*skip_nonfinite_steps=N \(now 0\)"
    with pytest.raises(FloatingPointError, match=message):
        trainer.train()


def test_once_the_skips_are_used_up_training_stops_and_the_last_checkpoint_loads(
    tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator
):
    args = make_args(tmp_path, max_steps=5, skip_nonfinite_steps=1, save_strategy="steps", save_steps=1)
    trainer = nonfinite_trainer(
        tokenizer, task_dataset, parallel_dataset, task_collator, args, task_at={(1, 0), (2, 0)}
    )
    with pytest.raises(FloatingPointError, match=r"step 2: task loss = nan after skipping 1 step\(s\) \(\[1\]\)"):
        trainer.train()

    assert sorted(os.listdir(args.output_dir)) == ["checkpoint-1", "checkpoint-2", CONFLICT_LOG_NAME]
    last = os.path.join(args.output_dir, "checkpoint-2")
    with open(os.path.join(last, "skipped_nonfinite_steps.json"), encoding="utf-8") as f:
        assert json.load(f) == {"skipped_steps": [1]}
    loaded = AutoModelForTokenClassification.from_pretrained(last)
    current = dict(trainer.model.named_parameters())  # the failing step applied nothing either
    for name, param in loaded.named_parameters():
        assert torch.isfinite(param).all(), name
        torch.testing.assert_close(param, current[name].detach(), atol=0, rtol=0, msg=name)


# ---- bad set-ups, refused when the trainer is built ----


def test_alignment_data_smaller_than_a_batch_is_refused_at_construction(
    tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator
):
    args = make_args(tmp_path, alignment_batch_size=8)
    with pytest.raises(ValueError, match=r"has 5 pairs, fewer than one batch \(alignment_batch_size=8 pairs"):
        make_trainer(tokenizer, task_dataset, parallel_dataset.select(range(5)), task_collator, args)


def test_a_tokenizer_larger_than_the_embeddings_is_refused_at_construction(
    tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator
):
    rows = len(tokenizer) - 10
    small = XLMRobertaForTokenClassification(tiny_xlmr_config(tokenizer, num_labels=4, vocab_size=rows))
    assert small.get_input_embeddings().num_embeddings == rows
    largest_id = max(tokenizer.get_vocab().values())  # oracle: the id the model could not look up
    with pytest.raises(ValueError, match=rf"{len(tokenizer)} tokens, ids up to {largest_id}, but .* have {rows} rows"):
        make_trainer(tokenizer, task_dataset, parallel_dataset, task_collator, make_args(tmp_path), model=small)


def test_skip_nonfinite_steps_must_not_be_negative(tmp_path):
    with pytest.raises(ValueError, match="skip_nonfinite_steps must be >= 0"):
        make_args(tmp_path, skip_nonfinite_steps=-1)
