"""`AlignmentTrainer` with no alignment asked for is `Trainer`: both run side by side, `Trainer`'s result the oracle."""

from __future__ import annotations

import inspect
import math
import os
from dataclasses import dataclass, field

import datasets
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import TAGS, make_model
from safetensors.torch import load_file
from transformers import Trainer, TrainerCallback, TrainingArguments, XLMRobertaForTokenClassification

from hf_xalign import AlignmentTrainer, AlignmentTrainingArguments
from hf_xalign.hub import ALIGNMENT_LOSSES_NAME
from hf_xalign.tiny import tiny_xlmr_config

# Timings differ between two runs; everything else in the metrics must not.
TIMING_KEYS = ("_runtime", "_per_second", "_time")
ALIGNMENT_PARAMETERS = ["alignment_dataset", "alignment_loss"]
# What a training log row gains once alignment is on (docs/subclassing.md lists the same): exact keys, and the
# prefixes of keys named after a loss or a parameter group. Evaluation rows and the closing summary gain nothing.
ALIGNMENT_LOG_KEYS = {"task_loss", "align_loss", "align_lambda", "skipped_nonfinite_steps"}
ALIGNMENT_LOG_PREFIXES = ("align/", "conflict/")
# A model checkpointed every step whose "best" is the highest evaluation loss: the first checkpoint, since the loss
# falls, so that loading the best one differs from keeping the last one.
EARLIEST_IS_BEST = dict(
    max_steps=4,
    eval_strategy="steps",
    eval_steps=1,
    save_strategy="steps",
    save_steps=1,
    load_best_model_at_end=True,
    metric_for_best_model="eval_loss",
    greater_is_better=True,
)


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


class EventRecorder(TrainerCallback):
    """Records the name of every callback event it receives, in order (its `on_*` methods are set below)."""

    def __init__(self) -> None:
        self.events: list[str] = []


def _recorder_of(event: str):
    def record(self, args, state, control, **kwargs):
        self.events.append(event)

    return record


for _event in [name for name in vars(TrainerCallback) if name.startswith("on_")]:
    setattr(EventRecorder, _event, _recorder_of(_event))


class TorchRows(torch.utils.data.IterableDataset):
    """A torch `IterableDataset` over the rows of a `datasets.Dataset` (no length)."""

    def __init__(self, rows: datasets.Dataset) -> None:
        self.rows = rows

    def __iter__(self):
        return iter(self.rows)


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


def train(cls, folder, tokenizer, collator, train_dataset, eval_dataset=None, callbacks=None, resume=None, **options):
    """A `cls` trainer of the tiny tagger (seeded), trained on `training_args(folder, **options)`."""
    args = training_args(folder, **options)
    trainer = cls(make_model(tokenizer), args, collator, train_dataset, eval_dataset, callbacks=callbacks)
    trainer.train(resume_from_checkpoint=resume)
    return trainer


def train_aligned(folder, tokenizer, collator, task_dataset, parallel_dataset, **options) -> AlignmentTrainer:
    """An `AlignmentTrainer` of the tiny tagger aligning on `parallel_dataset`, evaluated on `task_dataset`, trained."""
    args = training_args(folder, cls=AlignmentTrainingArguments, alignment_batch_size=8, **options)
    model = make_model(tokenizer)
    trainer = AlignmentTrainer(
        model, args, collator, task_dataset, task_dataset, tokenizer, alignment_dataset=parallel_dataset
    )
    trainer.train()
    return trainer


def checkpoint_folders(folder) -> set[str]:
    return {name for name in os.listdir(folder) if name.startswith("checkpoint-")}


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


def test_resume_from_a_middle_checkpoint_equals_the_uninterrupted_run(tmp_path, tokenizer, task_dataset, task_collator):
    data = (tokenizer, task_collator, task_dataset)
    options = dict(max_steps=4, save_strategy="steps", save_steps=2)
    uninterrupted = train(Trainer, tmp_path / "uninterrupted", *data, **options)
    train(AlignmentTrainer, tmp_path / "first", *data, **options)
    middle = str(tmp_path / "first" / "checkpoint-2")
    expected = train(Trainer, tmp_path / "trainer-resumed", *data, resume=middle, **options)
    resumed = train(AlignmentTrainer, tmp_path / "resumed", *data, resume=middle, **options)
    assert_same_parameters(parameters(uninterrupted), parameters(resumed))
    # Every row but the closing summary (its train_loss averages the steps of this call only) as uninterrupted.
    rows = [without_timings(row) for row in resumed.state.log_history]
    assert rows[:-1] == [without_timings(row) for row in uninterrupted.state.log_history][:-1]
    assert rows == [without_timings(row) for row in expected.state.log_history]


@pytest.mark.parametrize(
    "options, kept",
    [
        (dict(max_steps=4, save_strategy="steps", save_steps=1, save_total_limit=2), {"checkpoint-3", "checkpoint-4"}),
        ({**EARLIEST_IS_BEST, "save_total_limit": 2}, {"checkpoint-1", "checkpoint-4"}),  # the best one is kept
    ],
    ids=["last", "best-and-last"],
)
def test_rotation_keeps_trainers_checkpoints(tmp_path, tokenizer, task_dataset, task_collator, options, kept):
    data = (tokenizer, task_collator, task_dataset, task_dataset)
    train(Trainer, tmp_path / "a", *data, **options)
    train(AlignmentTrainer, tmp_path / "b", *data, **options)
    assert checkpoint_folders(tmp_path / "b") == checkpoint_folders(tmp_path / "a") == kept


def test_best_model_loaded_as_trainer(tmp_path, tokenizer, task_dataset, task_collator):
    data = (tokenizer, task_collator, task_dataset, task_dataset)
    expected = train(Trainer, tmp_path / "a", *data, **EARLIEST_IS_BEST)
    trainer = train(AlignmentTrainer, tmp_path / "b", *data, **EARLIEST_IS_BEST)
    assert os.path.basename(expected.state.best_model_checkpoint) == "checkpoint-1"  # not the last one
    assert os.path.relpath(trainer.state.best_model_checkpoint, tmp_path / "b") == "checkpoint-1"
    assert trainer.state.best_metric == expected.state.best_metric
    assert_same_parameters(parameters(expected), parameters(trainer))


def test_best_model_brings_back_the_loss_owned_head(tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator):
    """With alignment on, the best checkpoint's loss-owned parameters (the `mlm` head) come back with its model."""
    data = (tokenizer, task_collator, task_dataset, parallel_dataset)
    trainer = train_aligned(tmp_path, *data, alignment_loss=["mlm"], **EARLIEST_IS_BEST)
    assert os.path.basename(trainer.state.best_model_checkpoint) == "checkpoint-1"
    best = load_file(os.path.join(trainer.state.best_model_checkpoint, ALIGNMENT_LOSSES_NAME))
    last = load_file(str(tmp_path / "checkpoint-4" / ALIGNMENT_LOSSES_NAME))
    assert any(not torch.equal(best[name], last[name]) for name in best)  # the head moved after the best step
    head = trainer.alignment_losses.state_dict()
    assert head.keys() == best.keys()
    for name, tensor in best.items():
        assert torch.equal(head[name].cpu(), tensor), name


@pytest.mark.parametrize(
    "iterable", [datasets.Dataset.to_iterable_dataset, TorchRows], ids=["datasets.IterableDataset", "torch"]
)
def test_iterable_train_and_eval_datasets_as_trainer(tmp_path, tokenizer, task_dataset, task_collator, iterable):
    def trained(cls) -> Trainer:
        train_rows, eval_rows = iterable(task_dataset), iterable(task_dataset)
        options = dict(max_steps=4, eval_strategy="steps", eval_steps=2)
        return train(cls, tmp_path / cls.__name__, tokenizer, task_collator, train_rows, eval_rows, **options)

    expected = trained(Trainer)
    trainer = trained(AlignmentTrainer)
    assert_same_parameters(parameters(expected), parameters(trainer))
    assert [without_timings(row) for row in trainer.state.log_history] == [
        without_timings(row) for row in expected.state.log_history
    ]
    assert [row["step"] for row in expected.state.log_history if "eval_loss" in row] == [2, 4]


def test_callbacks_called_in_trainers_order(tmp_path, tokenizer, task_dataset, task_collator):
    def events(cls) -> list[str]:
        recorder = EventRecorder()
        options = dict(max_steps=4, eval_strategy="steps", eval_steps=2, save_strategy="steps", save_steps=2)
        folder = tmp_path / cls.__name__
        trainer = train(cls, folder, tokenizer, task_collator, task_dataset, task_dataset, [recorder], **options)
        trainer.evaluate()
        trainer.predict(task_dataset)
        return recorder.events

    expected = events(Trainer)
    assert {"on_step_end", "on_evaluate", "on_save", "on_predict"} <= set(expected)
    assert events(AlignmentTrainer) == expected


def test_a_whole_runs_log_history_as_trainer(tmp_path, tokenizer, task_dataset, task_collator):
    """Two epochs with evaluations, logs every third step and the closing summary: row by row Trainer's."""
    options = dict(max_steps=-1, num_train_epochs=2, logging_steps=3, eval_strategy="epoch")
    data = (tokenizer, task_collator, task_dataset, task_dataset)
    expected = train(Trainer, tmp_path / "a", *data, **options).state.log_history
    log_history = train(AlignmentTrainer, tmp_path / "b", *data, **options).state.log_history
    assert [without_timings(row) for row in log_history] == [without_timings(row) for row in expected]
    assert len(expected) == 5 + 2 + 1  # training rows at steps 3, 6, ..., 15, one evaluation per epoch, the summary


def test_alignment_adds_only_the_documented_log_keys(
    tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator
):
    options = dict(max_steps=4, logging_steps=2, eval_strategy="steps", eval_steps=2)
    expected = train(Trainer, tmp_path / "a", tokenizer, task_collator, task_dataset, task_dataset, **options)
    # skip_nonfinite_steps: its log key is an addition too.
    data = (tokenizer, task_collator, task_dataset, parallel_dataset)
    trainer = train_aligned(tmp_path / "b", *data, skip_nonfinite_steps=1, **options)
    assert len(trainer.state.log_history) == len(expected.state.log_history)
    for row, expected_row in zip(trainer.state.log_history, expected.state.log_history):
        added = row.keys() - expected_row.keys()
        assert expected_row.keys() <= row.keys()
        assert row["step"] == expected_row["step"]
        if "loss" in row:
            assert {"task_loss", "align_loss", "align/contrastive", "conflict/cosine"} <= added
        undocumented = {
            key for key in added if key not in ALIGNMENT_LOG_KEYS and not key.startswith(ALIGNMENT_LOG_PREFIXES)
        }
        assert not undocumented, row
        assert "loss" in row or not added, row  # evaluation rows and the summary gain nothing
