"""A tiny study folder built with the real cell machinery, laid out as the study runner writes it.

The pos cells of one seed are real runs of conftest.py's 2-layer tagger, with the pieces the study
runner runs (`run_cell`, `write_results`, `run_analysis`: `run_experiment` with one cell, analysis on,
without its per-cell report); the other cells are copies of them with moved values, and `finished.json`
(the cell's marker, kind `study_cell`) is written by hand per the study contract, so these tests do not depend on
the study runner and stay within seconds.

Languages: `en` (source), `xx` (conftest's word-by-word translation), `xy` and `xz` (code-mixed:
the odd or the even words translated). Parallel text pairs `en` with each target, so every target
has a Δ measure.
"""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
from dataclasses import dataclass

from _tiny_experiment import save_tiny_model, training_arguments
from conftest import LEXICON, make_model, synthetic_sentences, translate
from datasets import Dataset
from transformers import AutoModelForTokenClassification, DataCollatorForTokenClassification

from hf_xalign.experiment import ZeroShotArguments, ZeroShotTask, run_cell, write_results
from hf_xalign.experiment.runner import run_analysis

ENCODER = "tiny"
TARGETS = ("xx", "xy", "xz")
_TAG_OF = {word: tag for english, (other, tag) in LEXICON.items() for word in (english, other)}


def in_language(words: list[str], language: str) -> list[str]:
    """A sentence in one of the study's languages: English, translated, or code-mixed."""
    translated = translate(words)
    keep = {"en": lambda i: True, "xx": lambda i: False, "xy": lambda i: i % 2 == 0, "xz": lambda i: i % 2 == 1}
    return [word if keep[language](i) else translated[i] for i, word in enumerate(words)]


def tagged(tokenizer, sentences: list[list[str]]) -> Dataset:
    """Token-classification rows: each word's tag on its first sub-token, -100 elsewhere."""
    rows: dict[str, list] = {"input_ids": [], "attention_mask": [], "labels": []}
    for words in sentences:
        encoded = tokenizer(words, is_split_into_words=True)
        word_ids = encoded.word_ids()
        labels = [
            -100 if word is None or word == word_ids[i - 1] else _TAG_OF[words[word]] for i, word in enumerate(word_ids)
        ]
        rows["input_ids"].append(encoded["input_ids"])
        rows["attention_mask"].append(encoded["attention_mask"])
        rows["labels"].append(labels)
    return Dataset.from_dict(rows)


@dataclass(kw_only=True)
class StudyArguments(ZeroShotArguments):
    def __post_init__(self) -> None:
        self.eval_languages = {language: f"synthetic:{language}" for language in ("en", *TARGETS)}


class StudyTagging(ZeroShotTask):
    """Tagging in four languages; `classification` below is the same data under the grid's second task name."""

    name, metric_module, collator_class = "pos", "token_accuracy", DataCollatorForTokenClassification

    def __init__(self, script_args, training_args) -> None:
        super().__init__(script_args, training_args)
        test = synthetic_sentences(16, seed=3)
        self.train_dataset = tagged(self.tokenizer, synthetic_sentences(48, seed=2))
        self.eval_datasets = {
            language: tagged(self.tokenizer, [in_language(words, language) for words in test])
            for language in ("en", *TARGETS)
        }
        self.load_alignment_data(None)

    def build_model(self):
        return AutoModelForTokenClassification.from_pretrained(self.script_args.model_name_or_path)


class StudyClassification(StudyTagging):
    name = "classification"


TASKS = {"pos": StudyTagging, "classification": StudyClassification}


def write_study_parallel(path: str) -> str:
    """en-xx, en-xy and en-xz pairs (24 each) with a header naming the languages."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("src_lang\ttgt_lang\tsrc\ttgt\n")
        for target in TARGETS:
            for words in synthetic_sentences(24, seed=1):
                f.write(f"en\t{target}\t{' '.join(words)}\t{' '.join(in_language(words, target))}\n")
    return path


GRID = """\
output_dir: {output_dir}
encoders:
  tiny: {model_dir}
tasks:
  pos: {{task: pos, config: pos.yaml}}
  classification: {{task: classification, config: classification.yaml}}
pairs:
  en-xx: [{parallel_tsv}]
objectives:
  contrastive: contrastive
modes: [sequential, joint]
seeds: [1, 2]
"""
OBJECTIVE, PAIR, LAYER = "contrastive", "en-xx", 1  # LAYER: the layer both aligned variants align
VARIANTS = ("base", f"{OBJECTIVE}__{PAIR}__sequential", f"{OBJECTIVE}__{PAIR}__joint")
RUN_SEED = 1  # the cells of pos with this seed are run; the others are copies of them with shifted values


def cell_id(task: str, variant: str, seed: int) -> str:
    return f"{task}__{ENCODER}__{variant}__seed{seed}"


def aligned_folder(study_dir: str, tokenizer) -> str:
    """The aligned encoder sequential cells fine-tune: a differently initialised tiny model stands in for
    it, with the `alignment_config.json` that names the aligned layer."""
    folder = os.path.join(study_dir, "aligned", f"{ENCODER}__{OBJECTIVE}__{PAIR}")
    make_model(tokenizer, seed=1).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    with open(os.path.join(folder, "alignment_config.json"), "w", encoding="utf-8") as f:
        json.dump({"layer": LAYER, "mode": "sequential", "losses": [{"name": OBJECTIVE}]}, f)
    return folder


def write_marker(folder: str, task: str, variant: str, seed: int) -> None:
    """The cell's `finished.json` as the study runner writes it (written last)."""
    objective, pair, mode = variant.split("__") if variant != "base" else (None, None, None)
    marker = {
        "kind": "study_cell",
        "cell_id": cell_id(task, variant, seed),
        "task": task,
        "encoder": ENCODER,
        "variant": variant,
        "objective": objective,
        "pair": pair,
        "mode": mode,
        "seed": seed,
        "base_cell_id": cell_id(task, "base", seed),
        "seconds": 1.0,
    }
    with open(os.path.join(folder, "finished.json"), "w", encoding="utf-8") as f:
        json.dump(marker, f)


def run_study_cell(
    study_dir: str, model_dir: str, aligned_dir: str, parallel_tsv: str, task: str, variant: str, seed: int
) -> str:
    """Run one cell into `study_dir/cells/<cell_id>/` as the study runner does (one cell, analysis on), then
    write its marker; return the folder.

    `base`: fine-tunes `model_dir`; `joint`: the same with the contrastive loss at [`LAYER`] and the
    gradients measured; `sequential`: fine-tunes `aligned_dir` without alignment.
    """
    folder = os.path.join(study_dir, "cells", cell_id(task, variant, seed))
    overrides = {"alignment_mode": "none"}
    if variant.endswith("__joint"):
        overrides = {"alignment_mode": "joint", "alignment_loss": [OBJECTIVE], "conflict_every": 1}
    script_args = StudyArguments(
        model_name_or_path=aligned_dir if variant.endswith("__sequential") else model_dir,
        parallel_data=[parallel_tsv],
        analysis=True,
        analysis_pairs=8,
        compare=False,
    )
    arguments = training_arguments(folder, seed=seed, max_steps=3, alignment_layer=LAYER, **overrides)
    experiment = TASKS[task](script_args, arguments)
    results = [run_cell(experiment, variant)]
    write_results(results, folder)
    run_analysis(experiment, results)
    write_marker(folder, task, variant, seed)
    return folder


def derive_cell(study_dir: str, source: str, task: str, variant: str, seed: int) -> str:
    """A copy of finished cell `source` as cell (task, variant, seed), its scores and its own measures
    moved by seeded random amounts, so that no two cells agree."""
    rng = random.Random(cell_id(task, variant, seed))
    folder = os.path.join(study_dir, "cells", cell_id(task, variant, seed))
    shutil.copytree(source, folder)
    results_path = os.path.join(folder, "results.jsonl")
    with open(results_path, encoding="utf-8") as f:
        result = json.loads(f.readline())
    for scores in result["scores"].values():
        scores["accuracy"] += rng.uniform(-0.03, 0.03)
    result["task"] = task
    with open(results_path, "w", encoding="utf-8") as f:
        f.write(json.dumps(result) + "\n")
    analysis_path = os.path.join(folder, "analysis.csv")
    with open(analysis_path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    own = [row for row in rows if row["model"] == variant][-len(rows) // 2 :]  # base: its later rows
    for row in own:
        row["value"] = repr(float(row["value"]) + rng.uniform(-0.05, 0.05))
    with open(analysis_path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    write_marker(folder, task, variant, seed)
    return folder


def build_tiny_study(study_dir: str, tokenizer) -> str:
    """The full grid (1 encoder × 3 variants × 2 tasks × 2 seeds = 12 cells) in `study_dir`, with study.yaml.

    The three pos cells of seed 1 are real runs; the other nine are copies of them with shifted values
    ([`derive_cell`]), which keeps the fixture within seconds.
    """
    os.makedirs(study_dir)
    model_dir = save_tiny_model(os.path.join(study_dir, "..", "tiny-model"), tokenizer)
    parallel_tsv = write_study_parallel(os.path.join(study_dir, "..", "parallel.tsv"))
    aligned_dir = aligned_folder(study_dir, tokenizer)
    with open(os.path.join(study_dir, "study.yaml"), "w", encoding="utf-8") as f:
        f.write(GRID.format(output_dir=study_dir, model_dir=model_dir, parallel_tsv=parallel_tsv))
    for variant in VARIANTS:
        source = run_study_cell(study_dir, model_dir, aligned_dir, parallel_tsv, "pos", variant, RUN_SEED)
        for task, seed in [("pos", 2), ("classification", 1), ("classification", 2)]:
            derive_cell(study_dir, source, task, variant, seed)
    return study_dir
