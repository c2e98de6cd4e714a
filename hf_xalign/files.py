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
  config.yaml, results.jsonl (finished marker), results.md, analysis.csv, <cell>/
ALIGNMENT FOLDER (recipes/align.py)
  config.yaml, aligned.json (finished marker), the model folder's files
STUDY FOLDER (recipes/study.py)
  study.yaml, aligned/<id>/ (alignment folders), cells/<cell_id>/ (experiment folders + cell.json, finished
  marker; error.txt and error.rank<r>.json for a failed cell), report/
REPORT FOLDER (xalign report; a study's report/)
  report.md, report_table.csv, plots/
```

A finished marker is the file a run writes last, whole or not at all ([`write_finished`]): a folder that has it
holds a finished run, one without it an unfinished one, whatever else it holds. Each kind of run folder has one
(`results.jsonl`, `aligned.json`, `cell.json`); they keep the names finished folders already have on disk.
`cell_result.json` is not one: it is written again after the Δ intervals, and nothing reads it to decide.
"""

from __future__ import annotations

import json
import math
import os
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
RESULTS_NAME = "results.json"  # a published model's scores (and its baseline's), for the card

# Experiment and alignment folders.
CONFIG_NAME = "config.yaml"  # the resolved settings, written first: a rerun compares against it
RESULTS_JSONL = "results.jsonl"  # one CellResult per line; written last: the experiment is finished
RESULTS_MARKDOWN = "results.md"
ANALYSIS_NAME = "analysis.csv"  # per-layer alignment measures: model, pair, layer, measure, value, n
ALIGNED_MARKER = "aligned.json"  # what was aligned; written last: the alignment is finished

# Study folder.
STUDY_CONFIG_NAME = "study.yaml"
CELLS_FOLDER, ALIGNED_FOLDER = "cells", "aligned"
CELL_MARKER = "cell.json"  # the study's cell and its seconds; written last into a cell's folder: the cell is finished
ERROR_NAME = "error.txt"  # a failed cell's traceback, in its folder
RANK_ERROR_NAME = "error.rank{rank}.json"  # one per rank that raised, in the cell's folder

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


def write_finished(folder: str, name: str, text: str) -> str:
    """Write finished marker `name` into `folder` atomically, as the run's last file; returns its path.

    The text goes to `name.tmp` first and is renamed over `name`: a run killed while writing leaves no
    marker (its folder reads as unfinished and the run resumes), never half of one.

    Args:
        folder (`str`): the run's folder.
        name (`str`): the folder's marker ([`RESULTS_JSONL`], [`ALIGNED_MARKER`], [`CELL_MARKER`]).
        text (`str`): the marker's whole content.
    """
    path = os.path.join(folder, name)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".tmp", path)
    return path


def is_finished(folder: str, name: str) -> bool:
    """Whether `folder` holds its finished marker `name`."""
    return os.path.isfile(os.path.join(folder, name))
