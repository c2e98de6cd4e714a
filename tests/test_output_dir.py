"""The output-folder rule of every recipe (pos, align, study; xnli shares pos's code path): the same finished run
is skipped, a run with other settings refused, `--overwrite` empties the folder first. The oracle is the folder
on disk: its files, their modification times and what they say.

The recipes run in this process, as their `__main__` does (`runpy`), on a tiny encoder and synthetic data.
"""

from __future__ import annotations

import os
import runpy
import shutil
import sys
import time

import pytest
import yaml
from _tiny_experiment import write_parallel_tsv
from conftest import synthetic_sentences, translate
from test_study import TRAINING, save_encoder, write_conllu

from hf_xalign.experiment import read_marker
from hf_xalign.files import EXPERIMENT_KIND, FINISHED_NAME, RESULTS_JSONL, is_finished

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "recipes"))
import study as study_recipe  # noqa: E402


@pytest.fixture(scope="module")
def files(tmp_path_factory, tokenizer) -> dict[str, str]:
    """A tiny encoder, synthetic treebanks and parallel text; a POS recipe config, an align config, a study."""
    data = tmp_path_factory.mktemp("data")
    train, test = synthetic_sentences(24, seed=2), synthetic_sentences(8, seed=3)
    encoder = save_encoder(str(data / "encoder"), tokenizer)
    parallel = write_parallel_tsv(str(data / "en-xx.tsv"))
    task = {
        **TRAINING,
        "max_steps": 2,
        "train_treebank": [write_conllu(data / "en-train.conllu", train)],
        "eval_treebanks": [
            f"en={write_conllu(data / 'en-test.conllu', test)}",
            f"xx={write_conllu(data / 'xx-test.conllu', map(translate, test))}",
        ],
        "parallel_data": [parallel],
    }
    (data / "task.yaml").write_text(yaml.safe_dump(task), encoding="utf-8")
    (data / "pos.yaml").write_text(yaml.safe_dump({**task, "model_name_or_path": encoder}), encoding="utf-8")
    align = {
        "model_name_or_path": encoder,
        "parallel_data": [parallel],
        "objective": "contrastive",
        "alignment_layer": 1,
        "max_steps": 2,
        "alignment_batch_size": 8,
        "logging_steps": 1,
        "use_cpu": True,
        "report_to": "none",
        "disable_tqdm": True,
        "log_level": "error",
    }
    (data / "align.yaml").write_text(yaml.safe_dump(align), encoding="utf-8")
    study = {"encoders": {"tiny": encoder}, "tasks": {"pos": {"task": "pos", "config": str(data / "task.yaml")}}}
    (data / "study.yaml").write_text(yaml.safe_dump({**study, "seeds": [7], "output_dir": "unused"}), encoding="utf-8")
    return {name: str(data / f"{name}.yaml") for name in ("pos", "align", "study")}


def run_recipe_script(name: str, *argv: str, monkeypatch) -> int:
    """`python recipes/<name>.py ARGV` in this process; its exit status (0 when it returns)."""
    script = os.path.join(ROOT, "recipes", f"{name}.py")
    monkeypatch.setattr(sys, "argv", [script, *argv])
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as stop:
        return stop.code
    return 0


def run_study(*argv: str) -> int:
    return study_recipe.main(list(argv))


def snapshot(folder) -> dict[str, int]:
    """Every file and folder under `folder`, with its modification time."""
    return {
        os.path.relpath(os.path.join(root, name), folder): os.stat(os.path.join(root, name)).st_mtime_ns
        for root, dirs, names in os.walk(folder)
        for name in dirs + names
    }


def run_family(family: str, files, output_dir, *flags: str, monkeypatch) -> int:
    if family == "study":
        return run_study(files["study"], "--output_dir", str(output_dir), *flags)
    return run_recipe_script(family, files[family], "--output_dir", str(output_dir), *flags, monkeypatch=monkeypatch)


FAMILIES = ("pos", "align", "study")
FINISHED = {"pos": FINISHED_NAME, "align": FINISHED_NAME, "study": os.path.join("report", "report.md")}


def other_settings(family: str, files: dict[str, str], tmp_path) -> tuple[dict[str, str], list[str]]:
    """The files and flags of a run with other settings than the finished one's: fewer cells (the README's
    `--compare false`), more steps, another seed (a study's settings are its file)."""
    if family == "study":
        changed = tmp_path / "other-study.yaml"
        values = yaml.safe_load(open(files["study"], encoding="utf-8"))
        changed.write_text(yaml.safe_dump({**values, "seeds": [8]}), encoding="utf-8")
        return {**files, "study": str(changed)}, []
    return files, {"pos": ["--compare", "false"], "align": ["--max_steps", "3"]}[family]


@pytest.fixture(scope="module")
def finished_runs(files, tmp_path_factory) -> dict[str, str]:
    """One finished run per family, copied (with its times) by the tests that need one."""
    folders = {}
    with pytest.MonkeyPatch.context() as monkeypatch:
        for family in FAMILIES:
            folder = tmp_path_factory.mktemp(f"finished-{family}") / "run"
            assert run_family(family, files, folder, monkeypatch=monkeypatch) == 0
            folders[family] = str(folder)
    return folders


def copy_run(finished_runs, family, tmp_path) -> str:
    folder = str(tmp_path / "run")
    shutil.copytree(finished_runs[family], folder, copy_function=shutil.copy2)
    return folder


@pytest.mark.parametrize("family", list(FAMILIES))
def test_the_same_finished_run_is_skipped_with_one_line(family, files, finished_runs, tmp_path, monkeypatch, capsys):
    folder = copy_run(finished_runs, family, tmp_path)
    assert os.path.isfile(os.path.join(folder, FINISHED[family]))
    before = snapshot(folder)
    capsys.readouterr()
    assert run_family(family, files, folder, monkeypatch=monkeypatch) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [line for line in out.splitlines() if "holds a finished run with these settings" in line]
    assert len(out.splitlines()) == 1 and "skipped" in out and "--overwrite" in out
    assert snapshot(folder) == before  # nothing written, nothing removed


@pytest.mark.parametrize("family", list(FAMILIES))
def test_a_run_with_other_settings_is_refused_with_one_line(
    family, files, finished_runs, tmp_path, monkeypatch, capsys
):
    folder = copy_run(finished_runs, family, tmp_path)
    files, flags = other_settings(family, files, tmp_path)
    before = snapshot(folder)
    capsys.readouterr()
    assert run_family(family, files, folder, *flags, monkeypatch=monkeypatch) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1, error
    assert f"{folder} holds a run (finished) with other settings" in error
    assert "--overwrite" in error and "--output_dir" in error
    assert snapshot(folder) == before


@pytest.mark.parametrize("family", list(FAMILIES))
def test_overwrite_empties_the_folder_first(family, files, finished_runs, tmp_path, monkeypatch):
    folder = copy_run(finished_runs, family, tmp_path)
    files, flags = other_settings(family, files, tmp_path)
    # What the first run left that the new one does not write: the baseline cell (`--compare false`), the first
    # seed's cell; for an alignment a checkpoint, as an earlier run that saved them leaves it.
    left_by_first_run = {"pos": "baseline", "align": "checkpoint-1", "study": "cells/pos__tiny__base__seed7"}[family]
    if family == "align":
        os.makedirs(os.path.join(folder, left_by_first_run))
    assert os.path.exists(os.path.join(folder, left_by_first_run))
    started = time.time_ns()
    assert run_family(family, files, folder, *flags, "--overwrite", monkeypatch=monkeypatch) == 0
    assert not os.path.exists(os.path.join(folder, left_by_first_run))
    assert os.path.isfile(os.path.join(folder, FINISHED[family]))
    old = {path: stamp for path, stamp in snapshot(folder).items() if stamp < started}
    assert old == {}, old  # every file there was written by the new run


def test_an_unfinished_alignment_with_the_same_settings_goes_on(files, finished_runs, tmp_path, monkeypatch):
    folder = copy_run(finished_runs, "align", tmp_path)
    os.remove(os.path.join(folder, FINISHED_NAME))  # as a run killed before its end leaves it
    assert run_recipe_script("align", files["align"], "--output_dir", folder, monkeypatch=monkeypatch) == 0
    assert read_marker(folder)["steps"] == 2


def test_presentation_options_and_the_folder_name_are_not_settings():
    from hf_xalign.experiment.output_dir import IGNORED_OPTIONS, settings_differences

    saved = {"output_dir": "a", "max_steps": 2, "log_level": "error", "disable_tqdm": True, "report_to": []}
    assert settings_differences(saved, {"output_dir": "b", "max_steps": 2, "report_to": ["tensorboard"]}) == []
    assert settings_differences(saved, {"max_steps": 3, "logging_steps": 5}) == [
        "logging_steps: (default) -> 5",
        "max_steps: 2 -> 3",
    ]
    assert {"output_dir", "log_level", "disable_tqdm", "report_to"} <= IGNORED_OPTIONS
    assert "logging_steps" not in IGNORED_OPTIONS and "seed" not in IGNORED_OPTIONS


def test_a_folder_holding_other_files_is_refused_even_with_overwrite(files, tmp_path, monkeypatch, capsys):
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    for flags in ([], ["--overwrite"]):
        assert (
            run_recipe_script("align", files["align"], "--output_dir", str(tmp_path), *flags, monkeypatch=monkeypatch)
            == 2
        )
        error = capsys.readouterr().err.strip()
        assert len(error.splitlines()) == 1 and "holds no run (config.yaml is missing)" in error
    assert os.listdir(tmp_path) == ["notes.txt"]


def test_an_unfinished_experiment_with_the_same_settings_resumes_from_its_last_checkpoint(
    files, tmp_path, monkeypatch, capsys
):
    folder = str(tmp_path / "run")
    flags = ["--output_dir", folder, "--compare", "false", "--logging_steps", "1"]
    flags += ["--save_strategy", "steps", "--save_steps", "1"]
    assert run_recipe_script("pos", files["pos"], *flags, monkeypatch=monkeypatch) == 0
    # As a run interrupted after its first checkpoint leaves it: no results, no marker, no second checkpoint.
    os.remove(os.path.join(folder, RESULTS_JSONL))
    os.remove(os.path.join(folder, FINISHED_NAME))
    shutil.rmtree(os.path.join(folder, "aligned", "checkpoint-2"))
    capsys.readouterr()
    assert run_recipe_script("pos", files["pos"], *flags, monkeypatch=monkeypatch) == 0
    steps = [line.split("] step ")[1].split()[0] for line in capsys.readouterr().out.splitlines() if "] step " in line]
    assert steps == ["2/2"]  # step 1 came from checkpoint-1
    assert is_finished(folder, EXPERIMENT_KIND)


def test_an_experiment_stopped_while_it_writes_its_cards_is_not_finished(files, tmp_path, monkeypatch, capsys):
    """The marker comes after the results, the report and the cards: a run stopped while it writes a card (its
    results.jsonl already there) is not skipped as finished, and the rerun writes the cards."""
    import hf_xalign.experiment.runner as runner

    folder = str(tmp_path / "run")
    flags = ["--output_dir", folder, "--compare", "false"]
    write_card = runner.build_model_card

    def stopped_while_writing_the_card(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C during the last writes

    monkeypatch.setattr(runner, "build_model_card", stopped_while_writing_the_card)
    assert run_recipe_script("pos", files["pos"], *flags, monkeypatch=monkeypatch) == 130
    assert os.path.isfile(os.path.join(folder, RESULTS_JSONL)) and not is_finished(folder, EXPERIMENT_KIND)
    monkeypatch.setattr(runner, "build_model_card", write_card)
    capsys.readouterr()
    assert run_recipe_script("pos", files["pos"], *flags, monkeypatch=monkeypatch) == 0
    assert "skipped" not in capsys.readouterr().out
    assert is_finished(folder, EXPERIMENT_KIND) and os.path.isfile(os.path.join(folder, "aligned", "README.md"))
