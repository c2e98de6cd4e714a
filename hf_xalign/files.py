"""The files a run leaves in its folders, the one way a run marks itself finished, and the JSON helpers they share.

Every name a run writes or reads is defined here once, so that the writer and every reader (the recipes, the
study, the reports, the card, `xalign`) agree by construction. transformers' own checkpoint names
(`trainer_state.json`, `checkpoint-N`) are read through `_compat` where they are used (`checkpoints.py`). The folders:

```
MODEL FOLDER (AlignmentTrainer.save_model; a cell's folder)
  config.json, model.safetensors, tokenizer files      transformers' own
  alignment_config.json                                 how it was aligned (the card reads it)
  alignment_losses.safetensors                          the loss-owned heads
  adapter_config.json, adapter_model.safetensors        PEFT's, for an adapter
  conflict.jsonl, conflict_summary.json                 the gradient measurements and their summary
  skipped_nonfinite_steps.json                          steps skipped for a non-finite loss or gradient
  gradient_combination_state.json                       the combining rule's state (in checkpoints: exact resume)
  _alignment_stage/                                     the alignment stage of sequential training
  outcomes.json, cell_result.json, results.json         a recipe cell's outcomes, result, and published scores
  README.md                                             the model card
EXPERIMENT FOLDER (recipes/pos.py, recipes/xnli.py)
  config.yaml, results.jsonl, results.md, analysis.csv, report/, <cell>/, finished.json (kind "experiment")
ALIGNMENT FOLDER (recipes/align.py)
  config.yaml, the model folder's files, finished.json (kind "alignment": what was aligned)
STUDY FOLDER (recipes/study.py)
  study.yaml, aligned/<id>/ (alignment folders), cells/<cell_id>/ (experiment folders whose finished.json the
  study replaces with kind "study_cell": the cell and its seconds; error.txt and error.rank<r>.json for a failed
  cell), report/
REPORT FOLDER (xalign report; a study's report/)
  report.md, report_table.csv, plots/
```

Every run folder has the one finished marker, [`FINISHED_NAME`]: the file a run writes last, whole or not at all
([`write_finished`]). A folder that has it holds a finished run, one without it an unfinished one, whatever else it
holds (an experiment's `results.jsonl` is written before its report and cards, a cell's `cell_result.json` again
after the Δ intervals: neither says the run is finished). The marker is a JSON object whose `kind` says what
finished there ([`EXPERIMENT_KIND`], [`ALIGNMENT_KIND`], [`STUDY_CELL_KIND`]) beside what that run records. A study's cell folder
is an experiment folder: the study replaces the experiment's marker with its own once it has recorded the cell,
so a cell killed in between reads as unfinished to the study.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

# Model folder.
MODEL_CONFIG_NAME = "config.json"  # transformers' `PretrainedConfig.save_pretrained`
MODEL_CARD_NAME = "README.md"
ALIGNMENT_CONFIG_NAME = "alignment_config.json"
ALIGNMENT_LOSSES_NAME = "alignment_losses.safetensors"
ADAPTER_CONFIG_NAME = "adapter_config.json"  # written by PEFT's `save_pretrained`
ADAPTER_WEIGHTS_NAME = "adapter_model.safetensors"  # PEFT's `save_pretrained` (safe_serialization, its default)
CONFLICT_LOG_NAME = "conflict.jsonl"
CONFLICT_SUMMARY_NAME = "conflict_summary.json"
SKIPPED_STEPS_NAME = "skipped_nonfinite_steps.json"
COMBINATION_STATE_NAME = "gradient_combination_state.json"
# The sequential mode's alignment stage writes its checkpoints (optimizer state included) here, inside
# output_dir. Trainer's pushes upload output_dir with `ignore_patterns=["_*", "checkpoint-*"]`: the
# leading underscore keeps the stage out of every push, as "checkpoint-*" does for the task's own.
ALIGNMENT_STAGE_DIR = "_alignment_stage"
OUTCOMES_NAME = "outcomes.json"  # per-example outcomes of a cell's main metric, per language, in its folder
CELL_RESULT_NAME = "cell_result.json"  # the cell's `CellResult`, in its folder
WORKER_LOG_NAME = "worker.log"  # a cell's output when it runs beside others (`workers`), in its folder
RESULTS_NAME = "results.json"  # a published model's scores (and its baseline's), for the card

# Experiment and alignment folders.
CONFIG_NAME = "config.yaml"  # the resolved settings, written first: a rerun compares against it
RESULTS_JSONL = "results.jsonl"  # one CellResult per line
RESULTS_MARKDOWN = "results.md"
ANALYSIS_NAME = "analysis.csv"  # per-layer alignment measures: model, pair, layer, measure, value, n

# Study folder.
STUDY_CONFIG_NAME = "study.yaml"
CELLS_FOLDER, ALIGNED_FOLDER = "cells", "aligned"
ERROR_NAME = "error.txt"  # a failed cell's traceback, in its folder
RANK_ERROR_NAME = "error.rank{rank}.json"  # one per rank that raised, in the cell's folder

# Every run folder: the finished marker, and the kinds of run it marks.
FINISHED_NAME = "finished.json"
EXPERIMENT_KIND, ALIGNMENT_KIND, STUDY_CELL_KIND = "experiment", "alignment", "study_cell"

# Report folder (`xalign report`, a study's report).
REPORT_FOLDER, REPORT_MARKDOWN, REPORT_TABLE = "report", "report.md", "report_table.csv"
PLOTS_FOLDER = "plots"


def json_safe(value: Any) -> Any:
    """`value` with NaN floats replaced by `None`, so that `json.dump` writes standard JSON."""
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    return None if isinstance(value, float) and math.isnan(value) else value


def read_json(folder: str, name: str) -> Any:
    """The content of JSON file `name` in `folder`; `None` when the folder has no such file."""
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_finished(folder: str, kind: str, record: Mapping[str, Any] | None = None) -> str:
    """Mark `folder` finished: write [`FINISHED_NAME`] atomically, as the run's last file; returns its path.

    The marker goes to a temporary file first and is renamed over [`FINISHED_NAME`]: a run killed while writing
    leaves no marker (its folder reads as unfinished and the run resumes), never half of one.

    Args:
        folder (`str`): the run's folder.
        kind (`str`): what finished ([`EXPERIMENT_KIND`], [`ALIGNMENT_KIND`], [`STUDY_CELL_KIND`]).
        record (`Mapping[str, Any]`, *optional*): what the run records beside its kind (JSON values).
    """
    path = os.path.join(folder, FINISHED_NAME)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump({"kind": kind, **(record or {})}, f, indent=2)
    os.replace(path + ".tmp", path)
    return path


def read_finished(folder: str, kind: str) -> dict[str, Any] | None:
    """The marker of `folder` (its `kind` and record) when it holds a finished run of `kind`; `None` otherwise."""
    marker = read_json(folder, FINISHED_NAME)
    return marker if isinstance(marker, dict) and marker.get("kind") == kind else None


def is_finished(folder: str, kind: str) -> bool:
    """Whether `folder` holds a finished run of `kind` ([`read_finished`])."""
    return read_finished(folder, kind) is not None
