"""A tiny zero-shot experiment on conftest.py's synthetic language, for card and Hub tests.

Importable in-process and from the subprocess scripts of the Hub tests (which add this folder to
`sys.path`): a 2-layer XLM-R tagger trained on synthetic English and scored on English and its
word-by-word translation `xx`, aligned on synthetic en-xx pairs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from conftest import make_model, synthetic_sentences, tag_dataset, translate
from transformers import AutoModelForTokenClassification, DataCollatorForTokenClassification

from hf_xalign import AlignmentTrainingArguments
from hf_xalign.experiment import ZeroShotArguments, ZeroShotTask, run_experiment
from hf_xalign.results import CellResult

LANGUAGES = ("en", "xx")


@dataclass(kw_only=True)
class SyntheticArguments(ZeroShotArguments):
    def __post_init__(self) -> None:
        self.eval_languages = {language: f"synthetic:{language}" for language in LANGUAGES}


class SyntheticTagging(ZeroShotTask):
    name, metric_module, collator_class = "pos", "token_accuracy", DataCollatorForTokenClassification

    def __init__(self, script_args: SyntheticArguments, training_args: AlignmentTrainingArguments) -> None:
        super().__init__(script_args, training_args)
        test = synthetic_sentences(24, seed=3)
        self.train_dataset = tag_dataset(self.tokenizer, synthetic_sentences(64, seed=2))
        self.eval_datasets = {
            "en": tag_dataset(self.tokenizer, test),
            "xx": tag_dataset(self.tokenizer, map(translate, test)),
        }
        self.details["train_sources"] = ["synthetic:en"]
        self.load_alignment_data(" ".join(translate(words)) for words in test)

    def build_model(self):
        return AutoModelForTokenClassification.from_pretrained(self.script_args.model_name_or_path)


def save_tiny_model(folder: str, tokenizer) -> str:
    """The 2-layer tagger of conftest.py and its tokenizer, saved like a Hub model."""
    make_model(tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_parallel_tsv(path: str) -> str:
    """Synthetic en-xx pairs with a header naming the languages."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("src_lang\ttgt_lang\tsrc\ttgt\n")
        for words in synthetic_sentences(64, seed=1):
            f.write(f"en\txx\t{' '.join(words)}\t{' '.join(translate(words))}\n")
    return path


def training_arguments(output_dir: str, **overrides) -> AlignmentTrainingArguments:
    options = dict(
        output_dir=output_dir,
        max_steps=6,
        per_device_train_batch_size=8,
        alignment_batch_size=8,
        alignment_layer=1,
        learning_rate=1e-3,
        logging_steps=2,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=7,
    )
    return AlignmentTrainingArguments(**{**options, **overrides})


def run_tiny_experiment(
    output_dir: str, model_dir: str, parallel_tsv: str, script_options: dict | None = None, **overrides
) -> list[CellResult]:
    """The aligned cell and its baseline, written to `output_dir` (results, cards, models)."""
    script_args = SyntheticArguments(
        model_name_or_path=model_dir, parallel_data=[parallel_tsv], **(script_options or {})
    )
    return run_experiment(SyntheticTagging(script_args, training_arguments(os.fspath(output_dir), **overrides)))
