"""Sentence(-pair) classification (XNLI, PAWS-X, SIB-200) as a zero-shot task: labelled examples per language,
a fresh classifier per cell."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import datasets
from transformers import AutoModelForSequenceClassification

from ..args import AlignmentTrainingArguments
from ..data.classification import LAYOUTS, load_classification, tokenize_classification
from ..experiment.config import parse_language_paths
from ..experiment.task import ZeroShotArguments, ZeroShotTask


@dataclass(kw_only=True)  # keyword-only: options with defaults may come before required ones
class ClassificationArguments(ZeroShotArguments):
    """The experiment: model, the data's columns and labels, labelled examples per language, parallel text."""

    layout: str = field(
        default="xnli", metadata={"help": f"Columns of the data: {', '.join(LAYOUTS)} (pairs: xnli, paws-x)."}
    )
    label_set: list[str] = field(
        default_factory=list,
        metadata={"help": "The labels in id order (integers in the data index them); empty: the training data's."},
    )
    train_data: list[str] = field(
        metadata={"help": "Source-language examples: .tsv/.csv/.jsonl file(s) or hub:PATH[:CONFIG]:SPLIT."}
    )
    eval_data: list[str] = field(metadata={"help": "LANG=SOURCE per evaluation language (source language included)."})
    drop_eval_texts_from_parallel: bool = field(
        default=True, metadata={"help": "Leave out parallel pairs whose source or target is an evaluation text."}
    )
    max_length: int = field(default=128, metadata={"help": "Max tokens per example (a pair counts as one)."})
    ignore_mismatched_sizes: bool = field(
        default=False, metadata={"help": "Load a checkpoint whose classifier has another number of labels."}
    )

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}.")
        self.eval_languages = parse_language_paths(self.eval_data, "eval_data")


def texts_of(data: datasets.Dataset) -> set[str]:
    """Every text of a dataset from `load_classification` (both sides of a pair), stripped."""
    columns = [column for column in ("premise", "hypothesis", "text") if column in data.column_names]
    return {text.strip() for column in columns for text in data[column]}


def majority_reference(train: datasets.Dataset, eval_raw: dict[str, datasets.Dataset]) -> dict:
    """The training set's most frequent label, and the accuracy of always predicting it on each evaluation set."""
    majority = Counter(train["label"]).most_common(1)[0][0]
    return {
        "label": train.features["label"].names[majority],
        "accuracy": {language: data["label"].count(majority) / len(data) for language, data in eval_raw.items()},
    }


class ClassificationTask(ZeroShotTask):
    """Labelled examples per language and parallel text, read once; a fresh classifier for each cell."""

    name, metric_module = "classification", "classification"  # accuracy, macro-F1, examples
    recipe = "recipes/xnli.py"

    def __init__(self, script_args: ClassificationArguments, training_args: AlignmentTrainingArguments) -> None:
        super().__init__(script_args, training_args)
        layout, source_language = script_args.layout, script_args.source_language
        self.train_raw = train_raw = load_classification(
            script_args.train_data, layout=layout, label_names=script_args.label_set or None, language=source_language
        )
        self.labels = train_raw.features["label"].names  # every evaluation set is held to this set
        eval_raw = {
            language: load_classification(source, layout=layout, label_names=self.labels, language=language)
            for language, source in script_args.eval_languages.items()
        }
        encode = dict(tokenizer=self.tokenizer, max_length=script_args.max_length)
        self.train_dataset = tokenize_classification(train_raw, **encode)
        self.eval_datasets = {language: tokenize_classification(data, **encode) for language, data in eval_raw.items()}
        self.details.update(
            train_sources=list(script_args.train_data),
            layout=script_args.layout,
            labels=self.labels,
            train_examples=len(self.train_dataset),
            eval_examples={language: len(data) for language, data in self.eval_datasets.items()},
            majority_class=majority_reference(train_raw, eval_raw),
        )
        evaluation_texts = set().union(*map(texts_of, eval_raw.values()))
        self.load_alignment_data(evaluation_texts if script_args.drop_eval_texts_from_parallel else None)

    def build_model(self):
        return AutoModelForSequenceClassification.from_pretrained(
            self.script_args.model_name_or_path,
            num_labels=len(self.labels),
            id2label=dict(enumerate(self.labels)),
            label2id={label: i for i, label in enumerate(self.labels)},
            ignore_mismatched_sizes=self.script_args.ignore_mismatched_sizes,
        )
