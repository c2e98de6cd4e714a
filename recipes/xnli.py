"""Sentence classification, pairs (XNLI, PAWS-X) or single sentences (SIB-200): fine-tune on one language,
evaluate zero-shot on others, with and without cross-lingual alignment.

    accelerate launch recipes/xnli.py recipes/configs/xnli.yaml          # xlm-roberta-base, XNLI, 15 languages
    accelerate launch recipes/xnli.py recipes/configs/sib.yaml           # xlm-roberta-base, SIB-200 topics
    python recipes/xnli.py recipes/configs/xnli_demo.yaml                # offline demo, sentence pairs (make demo)
    python recipes/xnli.py recipes/configs/sib_demo.yaml                 # offline demo, single sentences
    accelerate launch --multi_gpu --num_processes 2 recipes/xnli.py recipes/configs/xnli_demo.yaml  # 2 CPU processes
    python recipes/xnli.py recipes/configs/xnli_demo.yaml --max_steps 20 --compare false  # overrides

The story: read the source-language training examples, which fix the label set, and one evaluation set per
language (held to that label set); encode a pair as ONE sequence, `tokenizer(premise, hypothesis)`; train an
`AutoModelForSequenceClassification` with `AlignmentTrainer` (alignment joint with the task, or as a stage
before it); score accuracy and macro-F1 on every language; then, with `compare: true`, train the same model
without alignment. Parallel pairs that contain an evaluation text are dropped first, so alignment never sees
a test sentence. Results go to `output_dir/results.{json,md}`: accuracy in the table, macro-F1 next to it in
the JSON, with the majority-class accuracy of each evaluation set for reference.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from dataclasses import dataclass, field

import datasets
import evaluate
import numpy as np
import transformers
from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, set_seed

from hf_xalign import AlignmentTrainer, AlignmentTrainingArguments
from hf_xalign.data import drop_pairs_containing, load_parallel
from hf_xalign.data.classification import LAYOUTS, load_classification, tokenize_classification
from hf_xalign.experiment import (
    ALIGNED,
    BASELINE,
    ZeroShotReport,
    evaluate_languages,
    parse_config,
    parse_language_paths,
    use_console_log,
)
from hf_xalign.metrics import metric_path


@dataclass(kw_only=True)  # keyword-only: options with defaults may come before required ones
class ClassificationArguments:
    """The experiment: model, the data's columns and labels, labelled examples per language, parallel text."""

    model_name_or_path: str = field(metadata={"help": "Hub id or local folder of the encoder."})
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
    source_language: str = field(default="en", metadata={"help": "Language of the training examples."})
    parallel_data: list[str] = field(default_factory=list, metadata={"help": "Parallel TSV/JSONL file(s)."})
    drop_eval_texts_from_parallel: bool = field(
        default=True, metadata={"help": "Leave out parallel pairs whose source or target is an evaluation text."}
    )
    max_length: int = field(default=128, metadata={"help": "Max tokens per example (a pair counts as one)."})
    ignore_mismatched_sizes: bool = field(
        default=False, metadata={"help": "Load a checkpoint whose classifier has another number of labels."}
    )
    compare: bool = field(default=True, metadata={"help": "Also train without alignment and show the difference."})

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}.")
        self.eval_languages = parse_language_paths(self.eval_data, "eval_data")


def classification_scores(predictions, label_ids: np.ndarray) -> dict[str, float]:
    """Accuracy, macro-F1 (over the classes present) and the number of examples, from logits."""
    logits = predictions[0] if isinstance(predictions, tuple) else predictions
    predicted, gold = logits.argmax(-1).tolist(), label_ids.tolist()
    metric = evaluate.load(metric_path("classification"), keep_in_memory=True)  # in memory: no cache-file locks
    scores = metric.compute(predictions=predicted, references=gold)
    return {name: scores[name] for name in ("accuracy", "macro_f1", "examples")}


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


class ClassificationExperiment:
    """The data of one run, read once, and the training of each variant on it."""

    def __init__(self, script_args: ClassificationArguments, training_args: AlignmentTrainingArguments):
        self.script_args, self.training_args = script_args, training_args
        self.tokenizer = AutoTokenizer.from_pretrained(script_args.model_name_or_path)
        layout, source_language = script_args.layout, script_args.source_language
        self.train_raw = load_classification(
            script_args.train_data, layout=layout, label_names=script_args.label_set or None, language=source_language
        )
        self.labels = self.train_raw.features["label"].names  # every evaluation set is held to this set
        self.eval_raw = {
            language: load_classification(source, layout=layout, label_names=self.labels, language=language)
            for language, source in script_args.eval_languages.items()
        }
        encode = dict(tokenizer=self.tokenizer, max_length=script_args.max_length)
        self.train = tokenize_classification(self.train_raw, **encode)
        self.eval_sets = {language: tokenize_classification(data, **encode) for language, data in self.eval_raw.items()}
        self.parallel, self.dropped_pairs = None, 0
        if script_args.parallel_data and training_args.alignment_mode != "none":
            pairs = datasets.concatenate_datasets([load_parallel(path) for path in script_args.parallel_data])
            if script_args.drop_eval_texts_from_parallel:
                self.parallel = drop_pairs_containing(pairs, set().union(*map(texts_of, self.eval_raw.values())))
            else:
                self.parallel = pairs
            self.dropped_pairs = len(pairs) - len(self.parallel)

    def details(self) -> dict:
        return {
            "model": self.script_args.model_name_or_path,
            "layout": self.script_args.layout,
            "labels": self.labels,
            "train_examples": len(self.train),
            "eval_examples": {language: len(data) for language, data in self.eval_sets.items()},
            "majority_class": majority_reference(self.train_raw, self.eval_raw),
            "parallel_pairs": len(self.parallel) if self.parallel is not None else 0,
            "parallel_pairs_dropped_as_eval_texts": self.dropped_pairs,
            "alignment_loss": self.training_args.alignment_loss,
            "alignment_mode": self.training_args.alignment_mode,
        }

    def trainer(self, variant: str) -> AlignmentTrainer:
        """A fresh model from the checkpoint and its trainer; the baseline runs with `alignment_mode: none`."""
        set_seed(self.training_args.seed)
        model = AutoModelForSequenceClassification.from_pretrained(
            self.script_args.model_name_or_path,
            num_labels=len(self.labels),
            id2label=dict(enumerate(self.labels)),
            label2id={label: i for i, label in enumerate(self.labels)},
            ignore_mismatched_sizes=self.script_args.ignore_mismatched_sizes,
        )
        variant_args = dataclasses.replace(
            self.training_args,
            output_dir=os.path.join(self.training_args.output_dir, variant),
            alignment_mode="none" if variant == BASELINE else self.training_args.alignment_mode,
        )
        return AlignmentTrainer(
            model=model,
            args=variant_args,
            train_dataset=self.train,
            alignment_dataset=self.parallel if variant == ALIGNED else None,
            processing_class=self.tokenizer,
            data_collator=DataCollatorWithPadding(self.tokenizer),
        )


def main(script_args: ClassificationArguments, training_args: AlignmentTrainingArguments) -> ZeroShotReport:
    transformers.utils.logging.set_verbosity(training_args.get_process_log_level())  # as HF's examples do
    experiment = ClassificationExperiment(script_args, training_args)
    report = ZeroShotReport(
        metric="accuracy", source_language=script_args.source_language, details=experiment.details()
    )
    for variant in (ALIGNED, BASELINE) if script_args.compare else (ALIGNED,):
        trainer = experiment.trainer(variant)
        use_console_log(trainer)
        trainer.train()
        trainer.save_model()
        report.runs[variant] = evaluate_languages(trainer, experiment.eval_sets, classification_scores)
        if variant == ALIGNED and trainer.conflict_callback is not None:
            report.conflict_summary = trainer.conflict_callback.summary
    if training_args.process_index == 0:
        report.save(training_args.output_dir)
        majority = report.details["majority_class"]
        shown = ", ".join(f"{language} {share:.4f}" for language, share in majority["accuracy"].items())
        print("\n" + report.to_markdown())
        print(f"always predicting {majority['label']!r} (the training set's majority class): {shown}")
    return report


if __name__ == "__main__":
    main(*parse_config((ClassificationArguments, AlignmentTrainingArguments)))
