"""The study runner: the grid, validation before training, resume after a kill, --cells subsets, failed cells.

The studies here run a tiny 2-layer XLM-R on conftest.py's synthetic language `xx` (a word-by-word
translation of English): POS tagging from the base encoder, from one aligned on en-xx before
fine-tuning (sequential) and aligned while fine-tuning (joint); a two-label sentence classification
where a cell must fail beside one that finishes. Three cells keep the file within a minute or two.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml
from _tiny_experiment import write_parallel_tsv
from conftest import LEXICON, TAGS, synthetic_sentences, translate
from transformers import XLMRobertaModel

from hf_xalign.experiment.config import ConfigError
from hf_xalign.experiment.study.checks import study_errors
from hf_xalign.experiment.study.report import build_study_report
from hf_xalign.experiment.study.runner import run_study
from hf_xalign.experiment.study.spec import (
    expand_grid,
    finished,
    read_study_config,
    select_cells,
    study_config_from_dict,
)
from hf_xalign.files import ERROR_NAME, FINISHED_NAME, STUDY_CELL_KIND, is_finished
from hf_xalign.tiny import tiny_xlmr_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "recipes"))
import study as study_recipe  # noqa: E402

ANIMALS = {"cat", "dog", "bird"}
TAG_OF = {word: TAGS[tag] for english, (translation, tag) in LEXICON.items() for word in (english, translation)}
TRAINING = dict(
    source_language="en",
    max_steps=4,
    per_device_train_batch_size=8,
    per_device_eval_batch_size=16,
    alignment_batch_size=8,
    alignment_layer=1,
    alignment_max_length=32,
    max_length=32,
    learning_rate=1e-3,
    logging_steps=2,
    save_strategy="no",
    report_to="none",
    use_cpu=True,
    disable_tqdm=True,
    log_level="error",
)


def write_conllu(path, sentences) -> str:
    with open(path, "w", encoding="utf-8") as f:
        for n, words in enumerate(sentences):
            f.write(f"# sent_id = {n}\n")
            for i, word in enumerate(words, 1):
                f.write(f"{i}\t{word}\t_\t{TAG_OF[word]}\t_\t_\t_\t_\t_\t_\n")
            f.write("\n")
    return str(path)


def write_labelled(path, sentences) -> str:
    """`text<TAB>label`: `animal` when the English sentence names an animal, else `thing`."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("text\tlabel\n")
        for english, words in sentences:
            f.write(f"{' '.join(words)}\t{'animal' if ANIMALS & set(english) else 'thing'}\n")
    return str(path)


@pytest.fixture(scope="module")
def classification(study_files) -> dict:
    """The classification task, kept out of the shared study (time) for the tests that add it."""
    return {
        "task": "classification",
        "config": os.path.join(os.path.dirname(study_files["tasks"]["pos"]["config"]), "cls.yaml"),
    }


@pytest.fixture(scope="module")
def study_files(tmp_path_factory, tokenizer) -> dict:
    """The tiny model, the task data and the two task configs; returns the shared study's options."""
    data = tmp_path_factory.mktemp("study-data")
    train, test = synthetic_sentences(48, seed=2), synthetic_sentences(16, seed=3)
    pos_config = {
        **TRAINING,
        "analysis": True,  # distances before/after on held-out pairs (the classification cells skip it: time)
        "analysis_pairs": 4,
        "train_treebank": [write_conllu(data / "en-train.conllu", train)],
        "eval_treebanks": [
            f"en={write_conllu(data / 'en-test.conllu', test)}",
            f"xx={write_conllu(data / 'xx-test.conllu', map(translate, test))}",
        ],
    }
    cls_config = {
        **TRAINING,
        "layout": "text",
        "label_set": ["animal", "thing"],
        "train_data": [write_labelled(data / "en-train.tsv", [(s, s) for s in train])],
        "eval_data": [
            f"en={write_labelled(data / 'en-test.tsv', [(s, s) for s in test])}",
            f"xx={write_labelled(data / 'xx-test.tsv', [(s, translate(s)) for s in test])}",
        ],
    }
    for name, values in (("pos.yaml", pos_config), ("cls.yaml", cls_config)):
        (data / name).write_text(yaml.safe_dump(values), encoding="utf-8")
    return {
        "encoders": {"tiny": save_encoder(str(data / "tiny"), tokenizer)},
        "tasks": {"pos": {"task": "pos", "config": str(data / "pos.yaml")}},
        "pairs": {"en-xx": [write_parallel_tsv(str(data / "en-xx.tsv"))]},
        "objectives": {"contrastive": "contrastive"},
        "modes": ["sequential", "joint"],
        "seeds": [7],
        "align": {
            "max_steps": 3,
            "alignment_batch_size": 8,
            "alignment_max_length": 32,
            "learning_rate": 1e-3,
            "use_cpu": True,
            "disable_tqdm": True,
            "log_level": "error",
        },
    }


def save_encoder(folder: str, tokenizer) -> str:
    """A bare 2-layer XLM-R and its tokenizer, saved like a Hub encoder (each task adds its own head)."""
    torch.manual_seed(0)
    XLMRobertaModel(tiny_xlmr_config(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_study(folder, options: dict, output_dir) -> str:
    path = os.path.join(folder, "study.yaml")
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump({**options, "output_dir": str(output_dir)}, f)
    return path


def cell_scores(study_dir) -> dict[str, float]:
    """`{"cell_id/language/score": value}` of every finished cell, from each cell's results.jsonl."""
    scores = {}
    cells_dir = os.path.join(study_dir, "cells")
    for cell_id in sorted(os.listdir(cells_dir)):
        if is_finished(os.path.join(cells_dir, cell_id), STUDY_CELL_KIND):
            with open(os.path.join(cells_dir, cell_id, "results.jsonl"), encoding="utf-8") as f:
                (line,) = f.read().splitlines()
            for language, values in json.loads(line)["scores"].items():
                scores.update({f"{cell_id}/{language}/{name}": value for name, value in values.items()})
    return scores


@pytest.fixture(scope="module")
def uninterrupted(study_files, tmp_path_factory) -> str:
    """The whole tiny study, run in one go: the oracle of the resumed and the split runs."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    outcome = run_study(read_study_config(write_study(folder, study_files, folder / "study")))
    assert outcome.failed == [] and len(outcome.ran) == 3
    return str(folder / "study")


def test_expand_grid_crosses_encoders_variants_tasks_and_seeds():
    config = study_config_from_dict(
        {
            "output_dir": "out",
            "encoders": {"xlmr": "xlm-roberta-base", "mbert": "bert-base-multilingual-cased"},
            "tasks": {
                "pos": {"task": "pos", "config": "p.yaml"},
                "xnli": {"task": "classification", "config": "x.yaml"},
            },
            "pairs": {"en-fr": ["a.tsv"], "en-tr": ["b.tsv"]},
            "objectives": {"contrastive": "contrastive", "mix": {"alignment_loss": ["mlm", "tlm"]}},
            "modes": ["sequential", "joint"],
            "seeds": [1, 2],
        },
        "hand.yaml",
    )
    cells = expand_grid(config)
    # 2 encoders × (1 base + 2 objectives × 2 pairs × 2 modes) × 2 tasks × 2 seeds
    assert len(cells) == 2 * (1 + 2 * 2 * 2) * 2 * 2 == 72
    assert len({cell.cell_id for cell in cells}) == 72
    assert [cell.cell_id for cell in cells[:4]] == [
        "pos__xlmr__base__seed1",
        "pos__xlmr__base__seed2",
        "xnli__xlmr__base__seed1",
        "xnli__xlmr__base__seed2",
    ]
    joint = next(cell for cell in cells if cell.cell_id == "xnli__mbert__mix__en-tr__joint__seed2")
    assert (joint.objective, joint.pair, joint.mode, joint.seed) == ("mix", "en-tr", "joint", 2)
    assert joint.base_cell_id == "xnli__mbert__base__seed2" and joint.aligned_id is None
    sequential = next(cell for cell in cells if cell.cell_id == "pos__xlmr__contrastive__en-fr__sequential__seed1")
    assert sequential.aligned_id == "xlmr__contrastive__en-fr"
    assert sum(cell.variant == "base" for cell in cells) == 2 * 2 * 2
    selected = select_cells(cells, ["pos__mbert__base__*", "*en-tr__joint__seed1"])
    assert sorted(cell.cell_id for cell in selected) == sorted(
        ["pos__mbert__base__seed1", "pos__mbert__base__seed2"]
        + [
            f"{task}__{encoder}__{objective}__en-tr__joint__seed1"
            for task in ("pos", "xnli")
            for encoder in ("xlmr", "mbert")
            for objective in ("contrastive", "mix")
        ]
    )
    with pytest.raises(ConfigError, match="'pos__nope'"):
        select_cells(cells, ["pos__nope"])


def test_validation_lists_every_problem_before_any_training(study_files, classification, tmp_path):
    options = {
        **study_files,
        "tasks": {
            **study_files["tasks"],
            "ner": {"task": "ner", "config": study_files["tasks"]["pos"]["config"]},
            "cls": {**classification, "overrides": {"eval_data": ["en=missing/en.tsv"]}},
        },
        "pairs": {**study_files["pairs"], "en-zz": study_files["pairs"]["en-xx"], "en-yy": []},
        "objectives": {"typo": "contrastiv", "bad_loss": {"alignment_loss": ["contrastive", "tokn"]}},
    }
    config = read_study_config(write_study(tmp_path, options, tmp_path / "study"))
    with pytest.raises(ConfigError) as raised:
        run_study(config)
    message = str(raised.value)
    expected = [
        "tasks.ner: unknown task 'ner'",
        "tasks.cls: no evaluation data for 'en': 'missing/en.tsv' not found",
        "pairs.en-zz: no evaluation data for 'zz' in any task",
        "pairs.en-yy: no parallel file",
        "objectives.typo: Unknown alignment objective 'contrastiv'",
        "objectives.bad_loss:",
        "'tokn'",
    ]
    assert [line for line in expected if line not in message] == []
    assert "en-xx" not in message  # the pos task evaluates xx: a task (cls) that does not is no problem
    assert not os.path.exists(tmp_path / "study")  # nothing ran, nothing was written


def read_report(study_dir) -> str:
    """The study's report.md without the cells' total wall time, the one thing two equal runs differ in."""
    with open(os.path.join(study_dir, "report", "report.md"), encoding="utf-8") as f:
        return re.sub(r"[0-9]+ s of cell time", "N s of cell time", f.read())


def test_a_killed_study_resumes_without_redoing_finished_cells(study_files, uninterrupted, tmp_path):
    study_dir = tmp_path / "study"
    config_path = write_study(tmp_path, study_files, study_dir)
    environment = {**os.environ, "PYTHONPATH": ROOT, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "recipes", "study.py"), config_path],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    cells_dir = study_dir / "cells"
    # Killed inside the second cell: the base cell and the alignment are finished, the second cell half-written.
    while process.poll() is None and len(os.listdir(cells_dir) if cells_dir.is_dir() else []) < 2:
        time.sleep(0.05)
    assert process.poll() is None, process.stderr.read().decode()
    process.send_signal(signal.SIGKILL)
    process.wait()
    config = read_study_config(config_path)
    cells = expand_grid(config)
    done = [cell.cell_id for cell in cells if finished(str(study_dir), cell)]
    assert 0 < len(done) < len(cells)
    finished_files = [cells_dir / cell_id for cell_id in done] + [
        cells_dir / cell_id / FINISHED_NAME for cell_id in done
    ]
    finished_files.append(study_dir / "aligned" / "tiny__contrastive__en-xx" / FINISHED_NAME)
    stamps = [os.stat(path).st_mtime_ns for path in finished_files]

    outcome = run_study(config)

    assert sorted(outcome.skipped) == sorted(done) and outcome.failed == []
    assert all(finished(str(study_dir), cell) for cell in cells)
    assert [os.stat(path).st_mtime_ns for path in finished_files] == stamps
    assert cell_scores(study_dir) == pytest.approx(cell_scores(uninterrupted))
    assert read_report(study_dir) == read_report(uninterrupted)


def test_disjoint_cell_subsets_in_two_folders_give_the_report_of_one_run(study_files, uninterrupted, tmp_path):
    first = run_study(read_study_config(write_study(tmp_path, study_files, tmp_path / "a")), ["*__base__*"])
    second = run_study(read_study_config(write_study(tmp_path, study_files, tmp_path / "b")), ["*__contrastive__*"])
    assert len(first.ran) == 1 and len(second.ran) == 2
    assert {**cell_scores(tmp_path / "a"), **cell_scores(tmp_path / "b")} == pytest.approx(cell_scores(uninterrupted))
    build_study_report([str(tmp_path / "a"), str(tmp_path / "b")], output_dir=str(tmp_path / "merged"))
    assert read_report(tmp_path / "merged") == read_report(uninterrupted)


def test_a_failing_cell_is_reported_and_the_others_finish(study_files, classification, tmp_path, capsys):
    broken = tmp_path / "broken.conllu"
    broken.write_text("# sent_id = 1\n1\tthe\t_\tDET\n\n", encoding="utf-8")  # 4 fields, not 10
    pos_config = yaml.safe_load(open(study_files["tasks"]["pos"]["config"], encoding="utf-8"))
    (tmp_path / "pos.yaml").write_text(
        yaml.safe_dump({**pos_config, "train_treebank": [str(broken)]}), encoding="utf-8"
    )
    options = {
        **study_files,
        "tasks": {"pos": {"task": "pos", "config": str(tmp_path / "pos.yaml")}, "cls": classification},
    }
    config_path = write_study(tmp_path, options, tmp_path / "study")

    status = study_recipe.main([config_path, "--cells", "*__base__*"])

    assert status == 1
    assert "failed: pos__tiny__base__seed7" in capsys.readouterr().out
    cells_dir = tmp_path / "study" / "cells"
    assert is_finished(str(cells_dir / "cls__tiny__base__seed7"), STUDY_CELL_KIND)
    assert not (cells_dir / "pos__tiny__base__seed7" / FINISHED_NAME).exists()
    assert str(broken) in (cells_dir / "pos__tiny__base__seed7" / ERROR_NAME).read_text(encoding="utf-8")


def test_list_cells_prints_the_grid(study_files, tmp_path, capsys):
    config_path = write_study(tmp_path, study_files, tmp_path / "study")
    assert study_recipe.main([config_path, "--list-cells", "--cells", "pos__*"]) == 0
    assert capsys.readouterr().out.split() == [
        "pos__tiny__base__seed7",
        "pos__tiny__contrastive__en-xx__sequential__seed7",
        "pos__tiny__contrastive__en-xx__joint__seed7",
    ]
    assert not os.path.exists(tmp_path / "study")


def test_shipped_study_configs_read_and_the_demo_checks_clean(monkeypatch):
    demo = read_study_config(os.path.join(ROOT, "recipes", "configs", "study_demo.yaml"))
    assert (
        len(expand_grid(demo)) == 1 * (1 + 1 * 2 * 2) * 2 * 1
    )  # encoders × (base + objectives × pairs × modes) × tasks × seeds
    # The demo's files ship with the project; its encoder is built by `make demo` (may be absent here).
    monkeypatch.chdir(ROOT)  # the configs' paths are relative to the project
    assert [error for error in study_errors(demo) if not error.startswith("encoders.")] == []
    xlmr = read_study_config(os.path.join(ROOT, "recipes", "configs", "study_xlmr.yaml"))
    assert len(expand_grid(xlmr)) == 1 * (1 + 3 * 4 * 2) * 3 * 3 == 225
