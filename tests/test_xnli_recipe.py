"""The classification recipe end to end on the shipped demo data (pairs and single sentences), with a tiny model
built here."""

from __future__ import annotations

import glob
import json
import os
import sys
from collections import Counter

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, EvalPrediction, XLMRobertaForSequenceClassification

import hf_xalign.experiment.task
from hf_xalign import AlignmentTrainingArguments
from hf_xalign.experiment import parse_config, predicted_ids
from hf_xalign.tasks.classification import ClassificationArguments, ClassificationTask
from hf_xalign.tiny import tiny_xlmr_config, train_tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "recipes"))
import xnli  # noqa: E402

CONFIGS = os.path.join(ROOT, "recipes", "configs")
NLI_DATA = os.path.join(ROOT, "recipes", "data", "nli")
PAIRS = os.path.join(NLI_DATA, "same_component")
SINGLE = os.path.join(NLI_DATA, "components_split")
PARALLEL = os.path.join(ROOT, "recipes", "data", "django", "parallel")


def tsv_rows(path: str) -> list[list[str]]:
    """The data rows of a shipped TSV (header dropped), read without the library under test."""
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t") for line in f][1:]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """A tiny model runs fastest on one thread; on a busy 2-core machine two threads made a forward ~90x slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """A tiny XLM-R pair classifier saved like a hub model, its tokenizer trained on the demo strings."""
    texts = [row[0] for path in glob.glob(os.path.join(SINGLE, "*", "*.tsv")) for row in tsv_rows(path)]
    tokenizer = train_tokenizer(texts, vocab_size=2000)
    torch.manual_seed(0)
    model = XLMRobertaForSequenceClassification(tiny_xlmr_config(tokenizer, hidden_size=64, num_labels=2))
    folder = tmp_path_factory.mktemp("tiny-xlmr-cls")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def training_arguments(output_dir, max_steps: int, **overrides) -> AlignmentTrainingArguments:
    options = dict(
        output_dir=str(output_dir),
        max_steps=max_steps,
        per_device_train_batch_size=32,
        learning_rate=3e-3,
        warmup_steps=10,
        alignment_batch_size=16,
        alignment_max_length=48,
        alignment_lambda=0.1,
        logging_steps=50,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    return AlignmentTrainingArguments(**{**options, **overrides})


def pair_arguments(model_dir: str, **overrides) -> ClassificationArguments:
    options = dict(
        model_name_or_path=model_dir,
        layout="paws-x",
        train_data=[os.path.join(PAIRS, "train", "en.tsv")],
        eval_data=[
            f"en={os.path.join(PAIRS, 'train', 'en.tsv')}",
            f"fr={os.path.join(PAIRS, 'test', 'fr.tsv')}",
            f"tr={os.path.join(PAIRS, 'test', 'tr.tsv')}",
        ],
        parallel_data=[os.path.join(PARALLEL, "en-fr.tsv"), os.path.join(PARALLEL, "en-tr.tsv")],
        max_length=64,
    )
    return ClassificationArguments(**{**options, **overrides})


def test_pair_recipe_learns_the_training_set_and_writes_the_table(tmp_path, tiny_model_dir):
    results = xnli.main(
        pair_arguments(tiny_model_dir, compare=True), training_arguments(tmp_path / "pairs", max_steps=150)
    )
    cells = {result.name: result for result in results}

    # Oracle for "learned": the majority-label share of the training file, counted here.
    labels = Counter(row[2] for row in tsv_rows(os.path.join(PAIRS, "train", "en.tsv")))
    majority = max(labels.values()) / sum(labels.values())
    for variant in ("aligned", "baseline"):
        en = cells[variant].scores["en"]
        assert en["accuracy"] > majority + 0.15, (variant, en, majority)
        assert en["examples"] == sum(labels.values())  # every pair scored once
        for language in ("en", "fr", "tr"):
            assert 0.0 <= cells[variant].scores[language]["macro_f1"] <= 1.0

    lines = (tmp_path / "pairs" / "results.jsonl").read_text().splitlines()
    saved = {cell["name"]: cell for cell in map(json.loads, lines)}
    assert all(cell["metric"] == "accuracy" for cell in saved.values())
    assert set(saved) == {"aligned", "baseline"}
    assert set(saved["aligned"]["scores"]) == {"en", "fr", "tr"}
    assert set(saved["aligned"]["scores"]["fr"]) == {"accuracy", "macro_f1", "examples"}
    markdown = (tmp_path / "pairs" / "results.md").read_text()
    for row in ("| en (source) |", "| fr |", "| tr |", "macro avg (targets)", "Δ (aligned − baseline)"):
        assert row in markdown
    assert saved["aligned"]["conflict_summary"]["measured_steps"] == 150
    assert saved["aligned"]["details"]["labels"] == ["different", "same"]
    assert saved["aligned"]["details"]["majority_class"]["accuracy"]["fr"] == 0.5


def test_parallel_pairs_holding_an_evaluation_text_are_left_out(tiny_model_dir, tmp_path):
    experiment = ClassificationTask(pair_arguments(tiny_model_dir), training_arguments(tmp_path, max_steps=1))
    eval_texts = {
        text.strip()
        for _, path in experiment.script_args.eval_languages.items()
        for row in tsv_rows(path)
        for text in row[:2]
    }
    pairs = [row for name in ("en-fr.tsv", "en-tr.tsv") for row in tsv_rows(os.path.join(PARALLEL, name))]
    kept = [row for row in pairs if row[2].strip() not in eval_texts and row[3].strip() not in eval_texts]
    assert 0 < len(kept) < len(pairs)
    assert experiment.alignment_dataset["src"] == [row[2] for row in kept]
    assert experiment.details["parallel_pairs_dropped_as_test_text"] == len(pairs) - len(kept)


def test_the_pair_is_encoded_as_one_sequence(tiny_model_dir, tmp_path):
    experiment = ClassificationTask(pair_arguments(tiny_model_dir), training_arguments(tmp_path, max_steps=1))
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    checked = 0
    for row, encoded in zip(experiment.train_raw.select(range(20)), experiment.train_dataset.select(range(20))):
        ids = encoded["input_ids"]
        first = tokenizer(row["premise"], add_special_tokens=False)["input_ids"]
        second = tokenizer(row["hypothesis"], add_special_tokens=False)["input_ids"]
        if len(first) + len(second) + 4 > 64:
            continue  # cut longest-first: checked for every row below
        # <s> premise </s></s> hypothesis </s>: XLM-R's pair format, one sequence, one forward
        assert ids == [cls, *first, sep, sep, *second, sep]
        assert tokenizer.decode(ids[1 : 1 + len(first)]) == tokenizer.decode(first)
        checked += 1
    assert checked >= 10
    assert all(
        ids[0] == cls and ids.count(sep) == 3 and ids[-1] == sep for ids in experiment.train_dataset["input_ids"]
    )
    assert max(len(ids) for ids in experiment.train_dataset["input_ids"]) == 64


def test_single_sentence_recipe_learns_with_a_fixed_label_set(tmp_path, tiny_model_dir):
    names = ["admin", "admindocs", "auth", "core"]
    script_args = ClassificationArguments(
        model_name_or_path=tiny_model_dir,
        layout="text",
        label_set=names,
        train_data=[os.path.join(SINGLE, "train", "en.tsv")],
        eval_data=[f"en={os.path.join(SINGLE, 'train', 'en.tsv')}", f"de={os.path.join(SINGLE, 'test', 'de.tsv')}"],
        compare=False,
        ignore_mismatched_sizes=True,  # the saved head has 2 classes, this task 4
    )
    (result,) = xnli.main(script_args, training_arguments(tmp_path / "single", max_steps=60, alignment_mode="none"))

    labels = Counter(row[1] for row in tsv_rows(os.path.join(SINGLE, "train", "en.tsv")))
    majority = max(labels.values()) / sum(labels.values())
    assert result.name == "aligned"
    assert result.scores["en"]["accuracy"] > majority + 0.2, (result.scores, majority)
    assert result.details["labels"] == names
    assert result.scores["de"]["examples"] == len(tsv_rows(os.path.join(SINGLE, "test", "de.tsv")))
    assert (tmp_path / "single" / "results.md").is_file()


def test_scores_are_accuracy_and_macro_f1(tiny_model_dir, tmp_path):
    task = ClassificationTask(pair_arguments(tiny_model_dir), training_arguments(tmp_path, max_steps=1))
    logits = torch.tensor([[2.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 3.0]])  # predicts 0, 0, 1, 1
    ids = predicted_ids(logits, labels=None).numpy()
    scores = task.compute_metrics(EvalPrediction(predictions=ids, label_ids=np.array([0, 1, 1, 1])))
    # class 0: TP 1, FP 1, FN 0 -> F1 2/3; class 1: TP 2, FP 0, FN 1 -> F1 4/5
    assert scores == {"accuracy": 0.75, "macro_f1": pytest.approx((2 / 3 + 4 / 5) / 2), "examples": 4}


@pytest.mark.parametrize("name", ["xnli.yaml", "xnli_demo.yaml", "sib.yaml", "sib_demo.yaml"])
def test_shipped_configs_parse_as_the_command_line_does(name):
    # One parser over both dataclasses: an option named like a TrainingArguments field would clash here.
    script_args, training_args = parse_config(
        (ClassificationArguments, AlignmentTrainingArguments), [os.path.join(CONFIGS, name), "--max_steps", "5"]
    )
    assert training_args.max_steps == 5
    assert script_args.source_language in script_args.eval_languages


def test_metric_module_is_loaded_once_per_run(tmp_path, tiny_model_dir, monkeypatch):
    import evaluate

    loads, load = [], evaluate.load

    def counting_load(*args, **kwargs):
        loads.append(args)
        return load(*args, **kwargs)

    monkeypatch.setattr(hf_xalign.experiment.task.evaluate, "load", counting_load)
    results = xnli.main(pair_arguments(tiny_model_dir, compare=True), training_arguments(tmp_path, max_steps=2))
    assert [result.name for result in results] == ["aligned", "baseline"]  # 2 cells x 3 languages scored ...
    assert len(loads) == 1  # ... with one loaded metric module
