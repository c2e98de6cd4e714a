"""Offline demo: joint task + alignment training on real text that ships with the repository.

    python recipes/demo.py            # or: make demo

The task is Django-component classification of English UI strings (which part of Django a
message belongs to); the alignment data are the human translations of those strings into
six languages (see recipes/data/django/README.md). The model is a tiny XLM-R built from a
config with a tokenizer trained here, so nothing is downloaded. It prints the losses the
trainer logged (task loss, each alignment loss, λ), then zero-shot accuracy per language.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import datasets
import numpy as np
import torch
import transformers
from transformers import DataCollatorWithPadding, PrinterCallback, XLMRobertaForSequenceClassification

from hf_xalign import AlignmentTrainer, AlignmentTrainingArguments
from hf_xalign.data import load_parallel
from hf_xalign.tiny import tiny_xlmr_config, train_tokenizer

DATA = Path(__file__).parent / "data" / "django"
LANGUAGES = ["en", "de", "fr", "es", "ru", "tr", "ar", "zh_Hans"]
LOGGED = ["loss", "task_loss", "align/contrastive", "align/mlm", "align_lambda"]


def read_labelled(path: Path) -> tuple[list[str], list[str]]:
    lines = path.read_text(encoding="utf-8").splitlines()[1:]  # skip the `text<TAB>label` header
    texts, labels = zip(*(line.split("\t") for line in lines if line))
    return list(texts), list(labels)


def main(steps: int, output_dir: str) -> None:
    transformers.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    parallel = datasets.concatenate_datasets(
        [load_parallel(path) for path in sorted((DATA / "parallel").glob("en-*.tsv"))]
    )
    tokenizer = train_tokenizer(list(parallel["src"]) + list(parallel["tgt"]), vocab_size=2000)

    texts, labels = read_labelled(DATA / "components" / "en.tsv")
    label_names = sorted(set(labels))
    label_ids = {name: i for i, name in enumerate(label_names)}

    def encode(lang: str) -> datasets.Dataset:
        texts, labels = read_labelled(DATA / "components" / f"{lang}.tsv")
        encoded = tokenizer(texts, truncation=True, max_length=64)
        return datasets.Dataset.from_dict({**encoded, "labels": [label_ids[label] for label in labels]})

    torch.manual_seed(0)
    config = tiny_xlmr_config(tokenizer, hidden_size=64, num_layers=4, num_labels=len(label_names))
    model = XLMRobertaForSequenceClassification(config)
    args = AlignmentTrainingArguments(
        output_dir=output_dir,
        max_steps=steps,
        per_device_train_batch_size=16,
        learning_rate=1e-3,
        warmup_steps=10,
        logging_steps=max(1, steps // 10),
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        use_cpu=True,
        alignment_loss=["contrastive", "mlm"],
        alignment_loss_weights=[1.0, 0.5],
        alignment_layer=2,  # a middle layer of 4
        alignment_lambda=0.5,
        alignment_lambda_schedule="linear_warmup",
        alignment_lambda_warmup_steps=max(1, steps // 4),
        alignment_batch_size=16,
        alignment_max_length=64,
    )
    trainer = AlignmentTrainer(
        model=model,
        args=args,
        train_dataset=encode("en"),
        alignment_dataset=parallel,
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
    )
    trainer.remove_callback(PrinterCallback)  # the tables below say it once, readably
    trainer.train()

    print(f"\nLogged losses ({len(parallel)} translation pairs, {len(texts)} English training strings)")
    print("| step | " + " | ".join(LOGGED) + " |")
    print("|---:|" + "---:|" * len(LOGGED))
    for entry in trainer.state.log_history:
        if "loss" in entry:
            print(f"| {entry['step']} | " + " | ".join(f"{entry.get(key, float('nan')):.4f}" for key in LOGGED) + " |")

    print("\nZero-shot accuracy per language (trained on English only)")
    print("| language | accuracy | majority class |")
    print("|---|---:|---:|")
    for lang in LANGUAGES:
        evaluation = encode(lang)
        predictions = trainer.predict(evaluation).predictions.argmax(-1)
        gold = np.array(evaluation["labels"])
        majority = np.bincount(gold).max() / len(gold)
        print(f"| {lang} | {(predictions == gold).mean():.3f} | {majority:.3f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--output_dir", default=None)
    cli = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        main(cli.steps, cli.output_dir or scratch)
