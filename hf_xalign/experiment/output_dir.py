"""One rule for the output folder of every recipe (pos, xnli, align, study), as `overwrite_output_dir` once was.

A run writes its resolved settings first (`config.yaml`; a study's `study.yaml`) and, last, what marks it
finished (`finished.json`, [`~hf_xalign.files.write_finished`]; a study's report once no cell is left). Before a run starts,
[`prepare_output_dir`] looks at its folder:

- missing or empty: the run starts;
- a finished run with the same settings: skipped, with one line saying so and where its results are;
- an unfinished run with the same settings: the run goes on (it resumes where the recipe can);
- a run with other settings, finished or not: refused, naming what differs and the way out
  (`--overwrite`, or another `--output_dir`);
- files but no settings file: refused, even with `--overwrite` (it would delete a folder that holds no run);
- with `--overwrite`, a folder holding a run is emptied first: old and new files are never mixed.

"Same settings" compares the settings file with what the run would write now, all of it but
[`IGNORED_OPTIONS`]: what only changes the console or the log destinations, the folder's own name, and where a
study's jobs run (its `cluster:` resources: a longer time limit after a failed job resumes the study).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from ..files import EXPERIMENT_KIND, RESULTS_MARKDOWN
from .config import resolved_config

# Options that change no result of a run, so a rerun that changes only them is the same run: `output_dir` is the
# folder itself (a moved folder is still its run); the others only change what the console shows (`log_level*`,
# `log_on_each_node`, `disable_tqdm`) or where the logs are also sent (`report_to`, `run_name`: a TensorBoard
# folder, a W&B run). `logging_steps` is not among them: it changes `log_history`, the card's training table and
# the logged losses an alignment records.
IGNORED_OPTIONS = frozenset(
    {
        "output_dir",
        "log_level",
        "log_level_replica",
        "log_on_each_node",
        "disable_tqdm",
        "report_to",
        "run_name",
        "cluster",
    }
)
OVERWRITE_FLAG = "--overwrite"
_SHOWN_DIFFERENCES = 3


class OutputDirError(ValueError):
    """An output folder that a run may not write into; the message names it and the way out."""


@dataclass(frozen=True)
class RecipeOutput:
    """What a recipe's run leaves in its folder, for the rule: its settings are `config.yaml` in every recipe.

    Args:
        finished_kind (`str`): the kind of run its finished marker names ([`~hf_xalign.files.write_finished`]).
        results_name (`str`): the file the line of a skipped run points to.
        settings (`Callable`): the settings the run writes into `config.yaml`, from the parsed arguments.
    """

    finished_kind: str
    results_name: str
    settings: Callable[..., Mapping[str, Any]] = resolved_config


# pos.py and xnli.py: finished once every cell is trained, scored, reported and carded.
EXPERIMENT_FILES = RecipeOutput(finished_kind=EXPERIMENT_KIND, results_name=RESULTS_MARKDOWN)


def _comparable(settings: Mapping[str, Any]) -> dict[str, Any]:
    """`settings` as its YAML file reads back (tuples as lists, ...), without [`IGNORED_OPTIONS`]."""
    plain = yaml.safe_load(yaml.safe_dump(dict(settings), allow_unicode=True)) or {}
    return {key: value for key, value in plain.items() if key not in IGNORED_OPTIONS}


def settings_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """`"option: saved -> current"` for every option that differs (unset: the option's default), sorted."""
    saved, current = _comparable(saved), _comparable(current)
    return [
        f"{key}: {saved.get(key, '(default)')} -> {current.get(key, '(default)')}"
        for key in sorted(saved.keys() | current.keys())
        if saved.get(key) != current.get(key)
    ]


def _empty(folder: str) -> None:
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def prepare_output_dir(
    output_dir: str,
    settings: Mapping[str, Any],
    *,
    settings_name: str,
    finished: bool,
    results: str,
    overwrite: bool = False,
    main_process: bool = True,
) -> bool:
    """Apply the output-folder rule (this module's docstring) before a run writes anything; returns whether it runs.

    Args:
        output_dir (`str`): the run's folder.
        settings (`Mapping[str, Any]`): what the run would write into `settings_name` now.
        settings_name (`str`): the file of the folder that holds the settings of the run there (`config.yaml`).
        finished (`bool`): whether the folder holds a finished run (the recipe knows its own marker).
        results (`str`): where the finished run's results are, for the line that says it is skipped.
        overwrite (`bool`, *optional*, defaults to `False`): empty a folder holding any run, and run.
        main_process (`bool`, *optional*, defaults to `True`): only the main process empties the folder and
            prints; the others decide the same from the same files (with `overwrite` they go on: a folder the
            main process refuses ends the launch).

    Raises:
        [`OutputDirError`]: a run with other settings (without `overwrite`), or files that are no run.
    """
    if not os.path.isdir(output_dir) or not os.listdir(output_dir):
        return True
    if overwrite and not main_process:  # the main process checks and empties it, maybe at this very moment
        return True
    settings_path = os.path.join(output_dir, settings_name)
    if not os.path.isfile(settings_path):
        raise OutputDirError(
            f"{output_dir} is not empty and holds no run ({settings_name} is missing): give another --output_dir"
        )
    if overwrite:
        _empty(output_dir)
        return True
    with open(settings_path, encoding="utf-8") as f:
        saved = yaml.safe_load(f) or {}
    differences = settings_differences(saved, settings)
    if differences:
        shown = "; ".join(differences[:_SHOWN_DIFFERENCES])
        more = f"; {len(differences) - _SHOWN_DIFFERENCES} more" if len(differences) > _SHOWN_DIFFERENCES else ""
        raise OutputDirError(
            f"{output_dir} holds a run ({'finished' if finished else 'unfinished'}) with other settings "
            f"({shown}{more}): add {OVERWRITE_FLAG} to replace it, or give another --output_dir"
        )
    if finished:
        if main_process:
            print(
                f"{output_dir} holds a finished run with these settings: skipped "
                f"(results: {results}; {OVERWRITE_FLAG} runs it again)"
            )
        return False
    return True
