"""A study's cells as recipe arguments, and every problem of a study found before any training.

Each cell is its task's recipe config with the study's settings on top: the model (the base encoder,
or the aligned one), the cell folder, the seed, the study's parallel text, and the alignment of its
variant. [`study_errors`] builds the arguments of every task once and checks files, languages,
tasks and objectives, so a study with a typo fails at once with every problem listed.
"""

from __future__ import annotations

import dataclasses
import glob
import os
from collections.abc import Mapping
from typing import Any

from ...args import AlignmentTrainingArguments
from ...tasks import TASKS
from ..config import ConfigError, config_errors, read_config_file, unknown_option_errors
from ..objectives import resolve_objective
from .cluster import cluster_errors
from .spec import MODES, StudyCell, StudyConfig, StudyTask

# What the study sets in every cell: a task config's own values for these are replaced.
STUDY_SET = ("model_name_or_path", "output_dir", "seed", "parallel_data", "alignment_mode", "push_to_hub")
_TRAINING_FIELDS = {f.name for f in dataclasses.fields(AlignmentTrainingArguments) if f.init}


def task_values(study_task: StudyTask) -> dict[str, Any]:
    """The task's recipe config file with the study's `overrides` on top."""
    values = read_config_file(study_task.config)
    return {**values, **study_task.overrides}


def study_parallel_data(config: StudyConfig) -> list[str]:
    """Every pair's files, once each: every cell reads them all, so the analysis holds out the same
    pairs in every cell (a joint cell then aligns on its own pair only)."""
    return list(dict.fromkeys(path for files in config.pairs.values() for path in files))


def cell_values(
    config: StudyConfig, cell: StudyCell, model: str, output_dir: str, num_layers: int | None = None
) -> dict[str, Any]:
    """The recipe options of `cell`: its task's config, the study's settings, the variant's alignment.

    `model` is the encoder the cell fine-tunes (the aligned folder for a sequential cell); a joint cell
    needs `num_layers` (the encoder's) to place an objective's `middle` layer.
    """
    values = task_values(config.tasks[cell.task])
    values.update(model_name_or_path=model, output_dir=output_dir, seed=cell.seed, push_to_hub=False)
    if config.pairs:
        values["parallel_data"] = study_parallel_data(config)
    if cell.mode == "joint":
        values.update(resolve_objective(config.objectives[cell.objective], num_layers), alignment_mode="joint")
    else:  # the base, or an encoder aligned before: fine-tuning only
        values["alignment_mode"] = "none"
    return values


def cell_arguments(values: Mapping[str, Any], task_kind: str) -> tuple[Any, AlignmentTrainingArguments]:
    """`(script_args, training_args)` of a task from its options."""
    arguments_class, _ = TASKS[task_kind]
    script = {key: value for key, value in values.items() if key not in _TRAINING_FIELDS}
    training = {key: value for key, value in values.items() if key in _TRAINING_FIELDS}
    return arguments_class(**script), AlignmentTrainingArguments(**training)


def _missing_local(source: str) -> bool:
    """A local file or folder that is not there (Hub sources and globs are checked when read)."""
    return not source.startswith("hub:") and not glob.has_magic(source) and not os.path.exists(source)


def _task_errors(config: StudyConfig, name: str, study_task: StudyTask, evaluated: set[str]) -> list[str]:
    """The problems of one task; adds the languages it evaluates (source included) to `evaluated`."""
    where = f"tasks.{name}"
    if study_task.task not in TASKS:
        return [f"{where}: unknown task {study_task.task!r} (known: {', '.join(TASKS)})"]
    if not os.path.isfile(study_task.config):
        return [f"{where}: config file {study_task.config!r} not found"]
    arguments_class, _ = TASKS[study_task.task]
    values = {**task_values(study_task), "output_dir": os.devnull, "alignment_mode": "none"}
    values.setdefault("model_name_or_path", "encoder")
    values.update(parallel_data=study_parallel_data(config) or values.get("parallel_data", []))
    errors = config_errors(values, (arguments_class, AlignmentTrainingArguments), f"{where} ({study_task.config})")
    if errors:
        return errors
    script_args, _ = cell_arguments(values, study_task.task)
    languages = script_args.eval_languages
    for language, source in languages.items():
        if _missing_local(source):
            errors.append(f"{where}: no evaluation data for {language!r}: {source!r} not found")
    evaluated.update(languages, [script_args.source_language])
    return errors


def _pair_language_errors(config: StudyConfig, evaluated: set[str]) -> list[str]:
    """A pair language no task evaluates: aligning on it could show no transfer to it. (A task need not
    evaluate every pair's language: the POS demo cannot score French, whose test text is the French side
    of the en-fr pairs, yet its other languages still show what en-fr alignment does.)"""
    return [
        f"pairs.{pair}: no evaluation data for {language!r} in any task (they evaluate {', '.join(sorted(evaluated))})"
        for pair in config.pairs
        for language in pair.split("-")
        if language not in evaluated
    ]


def _objective_errors(config: StudyConfig) -> list[str]:
    errors = unknown_option_errors(config.align, sorted(_TRAINING_FIELDS), "align")
    for name, objective in config.objectives.items():
        try:  # 12 layers stand in for the encoder's: only the names and values are checked here
            options = resolve_objective(objective, num_layers=12)
            AlignmentTrainingArguments(output_dir=os.devnull, **{**config.align, **options})
        except (TypeError, ValueError) as error:
            errors.append(f"objectives.{name}: {error}")
    if config.objectives and not config.pairs:
        errors.append("objectives: aligned variants need at least one language pair under pairs")
    if "sequential" in config.modes and config.objectives and not config.align.get("max_steps"):
        errors.append("align: the sequential mode needs max_steps (the length of the alignment stage)")
    return errors


def study_errors(config: StudyConfig) -> list[str]:
    """Every problem of `config` that would stop a cell, each one line naming the option."""
    errors = [f"modes: unknown mode {mode!r} (known: {', '.join(MODES)})" for mode in config.modes if mode not in MODES]
    for pair, files in config.pairs.items():
        if not files:
            errors.append(f"pairs.{pair}: no parallel file")
        errors += [f"pairs.{pair}: {path!r} not found" for path in files if _missing_local(path)]
    for name, path in config.encoders.items():
        if path.startswith((".", os.sep)) and not os.path.isdir(path):
            errors.append(f"encoders.{name}: folder {path!r} not found")
    evaluated: set[str] = set()
    for name, study_task in config.tasks.items():
        errors += _task_errors(config, name, study_task, evaluated)
    if evaluated:  # else every task is broken, and said so
        errors += _pair_language_errors(config, evaluated)
    return errors + _objective_errors(config) + cluster_errors(config)


def check_study(config: StudyConfig) -> None:
    """Raise one [`ConfigError`] listing every problem of `config`, if it has any."""
    errors = study_errors(config)
    if errors:
        raise ConfigError("the study cannot run:\n" + "\n".join(f"  - {error}" for error in errors))
