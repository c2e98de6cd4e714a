"""The data of a zero-shot transfer experiment, read once and shared by the cells that train on it."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import AutoTokenizer, DataCollatorWithPadding, EvalPrediction, PreTrainedModel

from ..analysis.bootstrap import example_outcomes
from ..args import AlignmentTrainingArguments
from ..data.parallel import drop_pairs_containing, hold_out_pairs, language_pair_counts, load_parallel
from ..extras import missing_extra
from ..metrics import metric_path
from .console import quiet_console

try:
    import evaluate
except ModuleNotFoundError as error:
    raise missing_extra(error, "the recipes' evaluation (hf_xalign.experiment.task)") from None


@dataclass(kw_only=True)  # keyword-only: a recipe's required options may follow these defaults
class ZeroShotArguments:
    """What every zero-shot recipe asks: the encoder, the source language, parallel text, the grid.

    Recipes extend it with their data options (treebanks, labelled examples) and set
    `eval_languages` (`{language: source}`, the evaluation data) in `__post_init__`.
    """

    model_name_or_path: str = field(metadata={"help": "Hub id or local folder of the encoder."})
    source_language: str = field(default="en", metadata={"help": "Language of the training data."})
    parallel_data: list[str] = field(
        default_factory=list, metadata={"help": "Parallel TSV/JSONL file(s) or hub:PATH[:CONFIG]:SPLIT."}
    )
    compare: bool = field(default=True, metadata={"help": "Also train without alignment and show the difference."})
    analysis: bool = field(
        default=False,
        metadata={"help": "Measure alignment per layer (base and trained models) on held-out pairs; write the report."},
    )
    analysis_pairs: int = field(
        default=100, metadata={"help": "Pairs held out of alignment training per language pair, for the analysis."}
    )
    analysis_layers: list[int] = field(
        default_factory=list,
        metadata={"help": "Layers the analysis measures (hf_xalign.layers numbering); empty: all."},
    )
    workers: str = field(
        default="1",
        metadata={
            "help": "Cells side by side, each its own process with cores // N torch threads (or its own GPU); "
            "'auto': as many as the cores hold at worker_threads each (one per core without it; one per GPU). "
            "1: one after the other in this process. A launch of several processes runs its cells one after the other."
        },
    )
    worker_threads: int = field(
        default=0,
        metadata={
            "help": "With workers > 1 on CPU: torch threads of each cell instead of cores // workers (0). A "
            "float sum depends on the thread count: the thread count of a run to reproduce bit for bit."
        },
    )


class ZeroShotTask:
    """The data of one zero-shot transfer experiment, read once and shared by all its cells.

    A recipe subclasses it, names its task, metric module and collator, reads its data in
    `__init__` (after calling this one) and returns a fresh model for each cell from
    [`build_model`].

    Class attributes:
        name (`str`): the task (`pos`, `classification`), recorded in every [`CellResult`].
        metric (`str`): the main score of the result table.
        metric_module (`str`): the shipped `evaluate` module that scores predictions
            (see `hf_xalign.metrics`); loaded once per run.
        collator_class: the data collator's class, built with the tokenizer.
        recipe (`str`): the script that runs the task, named in `config.yaml`.

    Attributes set here or by the subclass:
        script_args ([`ZeroShotArguments`]): the recipe's own arguments.
        training_args ([`AlignmentTrainingArguments`]): the experiment's training arguments; cells
            override some of them.
        tokenizer: the model's tokenizer, also used for the parallel text.
        data_collator: batches `train_dataset` and `eval_datasets`.
        train_dataset: tokenized source-language training data (subclass).
        eval_datasets (`dict[str, Dataset]`): tokenized evaluation data per language (subclass).
        alignment_dataset: parallel text (`src`, `tgt`), or `None` without alignment ([`load_alignment_data`]).
        details (`dict`): facts about the data, copied into every result.
    """

    name: str = "task"
    metric: str = "accuracy"
    metric_module: str = "token_accuracy"
    collator_class: type = DataCollatorWithPadding
    recipe: str | None = None

    def __init__(self, script_args: ZeroShotArguments, training_args: AlignmentTrainingArguments) -> None:
        # When the experiment's data work started: the runner reports it as the setup time.
        self.started = time.perf_counter()
        quiet_console(training_args)
        self.script_args, self.training_args = script_args, training_args
        self.tokenizer = AutoTokenizer.from_pretrained(script_args.model_name_or_path)
        self.data_collator = self.collator_class(self.tokenizer)
        # In memory: several processes scoring at once share no cache files (and so no locks).
        self.scorer = evaluate.load(metric_path(self.metric_module), keep_in_memory=True)
        self.train_dataset: Any = None
        self.eval_datasets: dict[str, Any] = {}
        self.alignment_dataset: Any = None
        self.analysis_dataset: Any = None  # pairs held out for measuring alignment (`analysis: true`)
        self.details: dict[str, Any] = {
            "model": script_args.model_name_or_path,
            "eval_sources": dict(script_args.eval_languages),
            "parallel_sources": [str(source) for source in script_args.parallel_data],
        }

    @property
    def source_language(self) -> str:
        return self.script_args.source_language

    def load_alignment_data(self, test_texts: Iterable[str] | None) -> None:
        """Read `script_args.parallel_data` into `alignment_dataset`, without the pairs that contain
        one of `test_texts` (evaluation text must not be aligned); `None` keeps every pair.

        With `analysis`, `analysis_pairs` pairs of each language pair are held out first into
        `analysis_dataset`: alignment training never sees them. Nothing is read when the experiment
        neither aligns nor analyses. `details` records the counts.

        `held_out_texts` keeps every text that alignment must not see (the test texts given, and both
        sides of the analysis pairs), for an alignment stage run apart from this task (a study's).
        """
        args = self.script_args
        aligning = self.training_args.alignment_mode != "none"
        self.details.update(parallel_pairs=0, parallel_pairs_dropped_as_test_text=0)
        test_texts = None if test_texts is None else list(test_texts)
        self.held_out_texts: list[str] = list(test_texts or ())
        if not args.parallel_data or not (aligning or args.analysis):
            return
        pairs = load_parallel(args.parallel_data)
        kept = pairs if test_texts is None else drop_pairs_containing(pairs, test_texts)
        self.details["parallel_pairs_dropped_as_test_text"] = len(pairs) - len(kept)
        if args.analysis:
            kept, self.analysis_dataset = hold_out_pairs(kept, args.analysis_pairs, self.training_args.seed)
            self.details["analysis_pairs_held_out"] = language_pair_counts(self.analysis_dataset)
            self.held_out_texts += [*self.analysis_dataset["src"], *self.analysis_dataset["tgt"]]
        if aligning:
            self.alignment_dataset = kept
            self.details["parallel_pairs"] = len(kept)

    def build_model(self) -> PreTrainedModel:
        """A fresh model for one cell (seeded by the caller)."""
        raise NotImplementedError

    def compute_metrics(self, prediction: EvalPrediction) -> dict[str, float]:
        """One language's scores: the metric module on predicted class ids (see [`predicted_ids`]) and
        labels; only numbers are kept, as every `report_to` target takes them.

        Also keeps the per-example outcomes of the main metric in `last_outcomes` (`correct`, `total`
        per example), which [`~hf_xalign.experiment.evaluate_languages`] collects for confidence intervals.
        """
        self.last_outcomes = example_outcomes(prediction.predictions, prediction.label_ids)
        predictions, references = prediction.predictions.tolist(), prediction.label_ids.tolist()
        scores = self.scorer.compute(predictions=predictions, references=references)
        return {name: value for name, value in scores.items() if isinstance(value, (int, float))}


def predicted_ids(logits: torch.Tensor | tuple, labels: torch.Tensor) -> torch.Tensor:
    """`preprocess_logits_for_metrics`: keep class ids, not logits (a POS test set's logits are large)."""
    logits = logits[0] if isinstance(logits, tuple) else logits
    return logits.argmax(-1)
