"""`AlignmentTrainer` with no alignment asked for is `Trainer`: both run side by side, `Trainer`'s result the oracle."""

from __future__ import annotations

import inspect
import math
import os
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import TAGS, make_model
from transformers import Trainer, TrainingArguments, XLMRobertaForTokenClassification

from hf_xalign import AlignmentTrainer
from hf_xalign.tiny import tiny_xlmr_config

# Timings differ between two runs; everything else in the metrics must not.
TIMING_KEYS = ("_runtime", "_per_second", "_time")
ALIGNMENT_PARAMETERS = ["alignment_dataset", "alignment_loss"]


@dataclass
class ProjectArguments(TrainingArguments):
    """A user's own `TrainingArguments` subclass with a field of its own."""

    project_tag: str = field(default="untagged")


class SummingTagger(XLMRobertaForTokenClassification):
    """A tagger whose loss honours `num_items_in_batch` (summed over the batch's tokens, divided by the step's)."""

    def forward(self, input_ids=None, attention_mask=None, labels=None, num_items_in_batch=None, **kwargs):
        output = super().forward(input_ids=input_ids, attention_mask=attention_mask)
        if labels is not None:
            summed = F.cross_entropy(output.logits.flatten(0, 1), labels.flatten(), ignore_index=-100, reduction="sum")
            output.loss = summed / (num_items_in_batch if num_items_in_batch is not None else (labels != -100).sum())
        return output


class NanOnSecondForward(XLMRobertaForTokenClassification):
    """A tagger whose second training forward returns a NaN loss."""

    forward_calls = 0

    def forward(self, input_ids=None, attention_mask=None, labels=None):
        output = super().forward(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
        self.forward_calls += 1
        if self.forward_calls == 2:
            output.loss = output.loss * float("nan")
        return output


def training_args(folder, cls=TrainingArguments, **overrides) -> TrainingArguments:
    options = dict(
        output_dir=str(folder),
        per_device_train_batch_size=4,
        per_device_eval_batch_size=8,
        learning_rate=1e-3,
        max_steps=3,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        dataloader_pin_memory=False,
        seed=7,
    )
    options.update(overrides)
    return cls(**options)


def parameters(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {name: param.detach().clone() for name, param in trainer.model.named_parameters()}


def assert_same_parameters(expected: dict[str, torch.Tensor], actual: dict[str, torch.Tensor]) -> None:
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name


def without_timings(metrics: dict[str, float]) -> dict[str, float]:
    return {key: value for key, value in metrics.items() if not key.endswith(TIMING_KEYS)}


def nan_as_text(log_history: list[dict[str, float]]) -> list[dict[str, float | str]]:
    """The log rows without timings, NaN written as text (NaN is not equal to itself)."""
    return [
        {key: "nan" if isinstance(value, float) and math.isnan(value) else value for key, value in row.items()}
        for row in map(without_timings, log_history)
    ]


@pytest.fixture(autouse=True)
def one_thread():
    """Bit-equal parameters need the same reduction order in both runs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_signature_is_trainers_then_the_alignment_parameters():
    trainer_parameters = list(inspect.signature(Trainer.__init__).parameters.values())
    ours = list(inspect.signature(AlignmentTrainer.__init__).parameters.values())
    head = ours[: len(trainer_parameters)]
    assert [(p.name, p.kind, p.default) for p in head] == [(p.name, p.kind, p.default) for p in trainer_parameters]
    assert [p.name for p in ours[len(trainer_parameters) :]] == ALIGNMENT_PARAMETERS


def test_positional_call_trains_as_trainer(tmp_path, tokenizer, task_dataset, task_collator):
    expected = Trainer(make_model(tokenizer), training_args(tmp_path / "a"), task_collator, task_dataset)
    expected.train()
    trainer = AlignmentTrainer(make_model(tokenizer), training_args(tmp_path / "b"), task_collator, task_dataset)
    assert trainer.data_collator is task_collator and trainer.train_dataset is task_dataset
    trainer.train()
    assert_same_parameters(parameters(expected), parameters(trainer))
    assert [without_timings(row) for row in trainer.state.log_history] == [
        without_timings(row) for row in expected.state.log_history
    ]


def test_a_users_training_arguments_subclass_is_kept(tmp_path, tokenizer, task_dataset, task_collator):
    args = training_args(tmp_path, cls=ProjectArguments, project_tag="pos-baseline")
    trainer = AlignmentTrainer(model=make_model(tokenizer), args=args, train_dataset=task_dataset)
    assert trainer.args is args
    assert trainer.args.project_tag == "pos-baseline"


def test_no_arguments_as_trainer(tokenizer):
    expected = Trainer(make_model(tokenizer))
    trainer = AlignmentTrainer(make_model(tokenizer))
    assert type(trainer.args) is TrainingArguments
    assert trainer.args.to_dict() == expected.args.to_dict()


def test_evaluation_only_trainer_gives_trainers_metrics(tmp_path, tokenizer, task_dataset, task_collator):
    model = make_model(tokenizer)
    args = training_args(tmp_path)
    expected = Trainer(model, args, task_collator, eval_dataset=task_dataset).evaluate()
    metrics = AlignmentTrainer(model, args, task_collator, eval_dataset=task_dataset).evaluate()
    assert without_timings(metrics) == without_timings(expected)
    assert "eval_loss" in metrics


def test_prediction_only_trainer_gives_trainers_predictions(tmp_path, tokenizer, task_dataset, task_collator):
    model = make_model(tokenizer)
    args = training_args(tmp_path)
    expected = Trainer(model, args, task_collator).predict(task_dataset)
    output = AlignmentTrainer(model, args, task_collator).predict(task_dataset)
    np.testing.assert_array_equal(output.predictions, expected.predictions)
    np.testing.assert_array_equal(output.label_ids, expected.label_ids)
    assert without_timings(output.metrics) == without_timings(expected.metrics)


def test_resume_in_an_empty_folder_gives_trainers_message(tmp_path, tokenizer, task_dataset, task_collator):
    args = training_args(tmp_path)
    with pytest.raises(ValueError) as expected:
        Trainer(make_model(tokenizer), args, task_collator, task_dataset).train(resume_from_checkpoint=True)
    with pytest.raises(ValueError) as raised:
        AlignmentTrainer(make_model(tokenizer), args, task_collator, task_dataset).train(resume_from_checkpoint=True)
    assert str(raised.value).startswith(str(expected.value))


def test_checkpoints_hold_trainers_files(tmp_path, tokenizer, task_dataset, task_collator):
    def saved_files(cls, folder) -> dict[str, set[str]]:
        args = training_args(folder, save_strategy="steps", save_steps=2)
        cls(make_model(tokenizer), args, task_collator, task_dataset, processing_class=tokenizer).train()
        return {os.path.relpath(root, folder): set(files) for root, _, files in os.walk(folder) if root != str(folder)}

    expected = saved_files(Trainer, tmp_path / "a")
    assert saved_files(AlignmentTrainer, tmp_path / "b") == expected
    assert set(expected) == {"checkpoint-2", "checkpoint-3"}


def test_gradient_accumulation_as_trainer(tmp_path, tokenizer, task_dataset, task_collator):
    """A model that honours `num_items_in_batch` keeps Trainer's loss normalisation over the accumulated step."""

    def trained(cls) -> Trainer:
        torch.manual_seed(0)
        model = SummingTagger(tiny_xlmr_config(tokenizer, num_labels=len(TAGS)))
        args = training_args(tmp_path / cls.__name__, gradient_accumulation_steps=2)
        trainer = cls(model, args, task_collator, task_dataset)
        trainer.train()
        return trainer

    expected = trained(Trainer)
    trainer = trained(AlignmentTrainer)
    assert trainer.model_accepts_loss_kwargs is expected.model_accepts_loss_kwargs is True
    assert_same_parameters(parameters(expected), parameters(trainer))


def test_a_nan_loss_is_logged_and_training_goes_on_as_in_trainer(tmp_path, tokenizer, task_dataset, task_collator):
    def trained(cls) -> Trainer:
        torch.manual_seed(0)
        model = NanOnSecondForward(tiny_xlmr_config(tokenizer, num_labels=len(TAGS)))
        trainer = cls(model, training_args(tmp_path / cls.__name__), task_collator, task_dataset)
        trainer.train()
        return trainer

    expected = trained(Trainer)
    trainer = trained(AlignmentTrainer)
    assert trainer.state.global_step == expected.state.global_step == 3
    assert nan_as_text(trainer.state.log_history) == nan_as_text(expected.state.log_history)
    for name, param in parameters(expected).items():
        torch.testing.assert_close(parameters(trainer)[name], param, rtol=0, atol=0, equal_nan=True)


def test_asking_for_alignment_without_data_is_one_line(tmp_path, tokenizer, task_dataset, task_collator):
    with pytest.raises(ValueError, match=r"^AlignmentTrainer needs an alignment_dataset \(parallel text\)[^\n]*$"):
        AlignmentTrainer(
            make_model(tokenizer), training_args(tmp_path), task_collator, task_dataset, alignment_loss="mse"
        )
