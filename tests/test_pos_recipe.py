"""The POS recipe end to end on the shipped treebanks, with a tiny model built here."""

from __future__ import annotations

import json
import os
import sys
from collections import Counter

import pytest
import torch
import yaml
from transformers import XLMRobertaForTokenClassification

from hf_xalign import AlignmentTrainingArguments
from hf_xalign.data import load_parallel
from hf_xalign.data.conllu import UPOS_TAGS, read_conllu
from hf_xalign.tasks.pos import PosArguments
from hf_xalign.tiny import tiny_xlmr_config, train_tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "recipes"))
import pos  # noqa: E402

POS_DATA = os.path.join(ROOT, "recipes", "data", "pos")
PARALLEL = os.path.join(ROOT, "recipes", "data", "django", "parallel")
EN_TRAIN = os.path.join(POS_DATA, "en_silver", "train.conllu")


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """A tiny XLM-R tagger saved like a hub model, its tokenizer trained on the recipe's own text."""
    texts = [
        " ".join(words)
        for path in (
            EN_TRAIN,
            os.path.join(POS_DATA, "tr_gold", "test.conllu"),
            os.path.join(POS_DATA, "fr_silver", "test.conllu"),
        )
        for words in read_conllu(path)["words"]
    ]
    tokenizer = train_tokenizer(texts, vocab_size=2000)
    torch.manual_seed(0)
    model = XLMRobertaForTokenClassification(tiny_xlmr_config(tokenizer, hidden_size=64, num_labels=len(UPOS_TAGS)))
    folder = tmp_path_factory.mktemp("tiny-xlmr")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def test_recipe_learns_the_training_set_and_writes_the_table(tmp_path, tiny_model_dir, capsys):
    script_args = PosArguments(
        model_name_or_path=tiny_model_dir,
        train_treebank=[EN_TRAIN],
        eval_treebanks=[
            f"en={EN_TRAIN}",
            f"fr={os.path.join(POS_DATA, 'fr_silver', 'test.conllu')}",
            f"tr={os.path.join(POS_DATA, 'tr_gold', 'test.conllu')}",
        ],
        parallel_data=[os.path.join(PARALLEL, "en-fr.tsv"), os.path.join(PARALLEL, "en-tr.tsv")],
        max_length=256,  # no sentence of these treebanks is cut: every word is scored
        compare=True,
    )
    training_args = AlignmentTrainingArguments(
        output_dir=str(tmp_path / "pos"),
        max_steps=60,
        per_device_train_batch_size=32,
        learning_rate=3e-3,
        warmup_steps=10,
        alignment_batch_size=16,
        alignment_max_length=48,
        logging_steps=50,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
        alignment_lambda=0.1,
    )
    cells = {result.name: result for result in pos.main(script_args, training_args)}

    # Oracle for "learned": the majority-tag share of the training treebank, counted here.
    tags = Counter(tag for sentence in read_conllu(EN_TRAIN)["upos"] for tag in sentence)
    majority = max(tags.values()) / sum(tags.values())
    for variant in ("aligned", "baseline"):
        assert cells[variant].scores["en"]["accuracy"] > majority + 0.2, (variant, majority)
        assert cells[variant].scores["en"]["tokens"] == sum(tags.values())  # every word scored once

    saved = {cell["name"]: cell for cell in read_jsonl(tmp_path / "pos" / "results.jsonl")}
    assert set(saved) == {"aligned", "baseline"}
    # The time split: training wall time holds the Trainer's own train_runtime (and the model load).
    for result in cells.values():
        assert result.seconds["train"] >= result.train_metrics["train_runtime"] > 0 and result.seconds["evaluate"] > 0
    time_lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("time: ")]
    assert len(time_lines) == 1 and "aligned: train" in time_lines[0] and "baseline: train" in time_lines[0]
    assert set(saved["aligned"]["scores"]) == {"en", "fr", "tr"}
    markdown = (tmp_path / "pos" / "results.md").read_text()
    for row in ("| en (source) |", "| fr |", "| tr |", "macro avg (targets)", "Δ (aligned − baseline)"):
        assert row in markdown
    assert saved["aligned"]["conflict_summary"]["measured_steps"] == 60
    for name, result in cells.items():
        # Scores come from Trainer.evaluate: the same numbers are in the cell's log_history (and so
        # reached every report_to target), one eval_<lang>_* entry per language.
        state = json.loads((tmp_path / "pos" / name / "trainer_state.json").read_text())
        logged = {key: value for entry in state["log_history"] for key, value in entry.items()}
        for language in ("en", "fr", "tr"):
            assert logged[f"eval_{language}_accuracy"] == result.scores[language]["accuracy"]
            assert logged[f"eval_{language}_tokens"] == result.scores[language]["tokens"]
        assert json.loads((tmp_path / "pos" / name / "cell_result.json").read_text()) == saved[name]
    rerun = yaml.safe_load((tmp_path / "pos" / "config.yaml").read_text())
    assert rerun["max_steps"] == 60 and rerun["eval_treebanks"] == script_args.eval_treebanks
    # The French test treebank is the French side of en-fr.tsv (recipes/data/pos/README.md): all of
    # those pairs must be kept out of the alignment stream, and the en-tr pairs kept in.
    english_french = len(load_parallel(os.path.join(PARALLEL, "en-fr.tsv")))
    assert saved["aligned"]["details"]["parallel_pairs_dropped_as_test_text"] == english_french
    assert saved["aligned"]["details"]["parallel_pairs"] == len(load_parallel(os.path.join(PARALLEL, "en-tr.tsv")))


def test_two_processes_complete_and_report_the_same_table(tmp_path, tiny_model_dir):
    """`torchrun --nproc_per_node 2` on CPU: one DDP run (gloo), one table, every word scored once."""
    import shutil
    import subprocess

    dev = os.path.join(POS_DATA, "en_silver", "dev.conllu")
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    command = [
        torchrun,
        "--nproc_per_node",
        "2",
        "--standalone",
        os.path.join(ROOT, "recipes", "pos.py"),
        os.path.join(ROOT, "recipes", "configs", "pos_demo.yaml"),
        "--model_name_or_path",
        tiny_model_dir,
        "--output_dir",
        str(tmp_path / "pos2"),
        "--max_steps",
        "4",
        "--alignment_layer",
        "1",
        "--eval_treebanks",
        f"en={dev}",
        f"tr={os.path.join(POS_DATA, 'tr_gold', 'test.conllu')}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.count("accuracy per language, trained on en only") == 1  # printed by rank 0 only
    saved = {cell["name"]: cell for cell in read_jsonl(tmp_path / "pos2" / "results.jsonl")}
    assert set(saved) == {"aligned", "baseline"} and set(saved["aligned"]["scores"]) == {"en", "tr"}
    words = sum(len(sentence) for sentence in read_conllu(dev)["words"])
    assert saved["aligned"]["scores"]["en"]["tokens"] == words  # gathered predictions, no duplicates
    # en dev is the English side of Django's catalogs, but source-language text is not zero-shot
    # test text: no pair is dropped for it (the Turkish test sentences are not in the catalogs).
    assert saved["aligned"]["details"]["parallel_pairs_dropped_as_test_text"] == 0
    markdown = (tmp_path / "pos2" / "results.md").read_text()
    assert "| en (source) |" in markdown and "| tr |" in markdown and "macro avg (targets)" in markdown
