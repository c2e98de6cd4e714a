"""What `xalign report` reads from a run folder: cell results, per-example outcomes, gradient logs, layer tables.

A run folder is a recipe's `output_dir` (written by [`~hf_xalign.experiment.run_experiment`]):

| file | what it holds | required |
|---|---|---|
| `results.jsonl` | one [`~hf_xalign.results.CellResult`] per line | yes |
| `<cell>/outcomes.json` | language -> `{"correct": [...], "total": [...]}` per test example | no |
| `<cell>/conflict.jsonl` | one gradient measurement per measured step | no |
| `<cell>/alignment_config.json` | how the cell was aligned, with the resolved `layer` | no |
| `analysis.csv` | `model, pair, layer, measure, value, n`; model `base` or a cell name | no |

Everything is read and checked before anything is written, so a bad folder leaves no half report.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...conflict import ConflictMeasurement
from ...data.reading import DataFileError, Place, csv_records, jsonl_records, read_lines
from ...files import ALIGNMENT_CONFIG_NAME, ANALYSIS_NAME, CONFLICT_LOG_NAME, OUTCOMES_NAME, RESULTS_JSONL, read_json
from ...layers import resolve_layer
from ...results import CellResult

# The name hf_xalign.experiment gives the pretrained model. Not imported from there: the experiment runner imports
# the report, and importing any hf_xalign.experiment module runs that package's __init__ (a cycle).
BASE_MODEL = "base"  # the `model` of the pretrained model's rows in analysis.csv

_CELL_KEYS = ("name", "task", "metric", "source_language")
_CONFLICT_KEYS = ("step", "lambda", "cosine", "task_norm", "align_norm", "per_group", "per_objective")
_ANALYSIS_COLUMNS = ("model", "pair", "layer", "measure", "value")


class RunFolderError(ValueError):
    """A run folder the report cannot read: the message names the folder (or file) and what was expected."""


@dataclass
class CellInputs:
    """One cell of a run and the optional files of its folder.

    Args:
        result ([`~hf_xalign.results.CellResult`]): the cell's line of `results.jsonl`.
        folder (`str`, *optional*): the cell's folder, `None` when it is not there.
        outcomes (`dict`, *optional*): language -> `{"correct": [...], "total": [...]}`; `None` when not written.
        conflict (`list[ConflictMeasurement]`): the measured steps in order; empty when not measured.
        layer (`int`, *optional*): the layer its alignment losses read ([`hf_xalign.layers`] numbering).
    """

    result: CellResult
    folder: str | None
    outcomes: dict[str, dict[str, list[int]]] | None = None
    conflict: list[ConflictMeasurement] = field(default_factory=list)
    layer: int | None = None

    @property
    def name(self) -> str:
        return self.result.name

    @property
    def aligns(self) -> bool:
        """Whether the cell trained with an alignment objective (so a gradient conflict exists to measure)."""
        return self.result.config.get("alignment_mode") != "none"


@dataclass
class RunInputs:
    """Everything the report uses from one run folder.

    Args:
        folder (`str`): the run folder as given.
        cells (`list[CellInputs]`): the cells of `results.jsonl`, in order.
        analysis (`list[dict]`, *optional*): the rows of `analysis.csv` (`layer` int, `value` float);
            `None` when alignment was not measured.
    """

    folder: str
    cells: list[CellInputs]
    analysis: list[dict[str, Any]] | None = None

    @property
    def first(self) -> CellResult:
        return self.cells[0].result

    def cell(self, name: str) -> CellInputs | None:
        return next((cell for cell in self.cells if cell.name == name), None)


def read_run(folder: str) -> RunInputs:
    """Read and check a run folder; optional files that are absent are `None` / empty.

    Raises:
        [`RunFolderError`]: no folder, no `results.jsonl`, or one without cells.
        [`~hf_xalign.data.DataFileError`]: a malformed line, naming file and line.
    """
    if not os.path.isdir(folder):
        raise RunFolderError(f"{folder}: no such run folder (expected a recipe's output_dir with {RESULTS_JSONL})")
    results_path = Path(folder, RESULTS_JSONL)
    if not results_path.is_file():
        raise RunFolderError(f"{folder} has no {RESULTS_JSONL} (expected a recipe's output_dir; was the run finished?)")
    lines = read_lines(results_path)
    if not any(line.strip() for line in lines):
        raise RunFolderError(f"{results_path} is empty (expected one cell result per line)")
    results = [
        CellResult.from_dict(record)
        for _, record in jsonl_records(results_path, lines, _CELL_KEYS, unit="cell result", error=DataFileError)
    ]
    analysis_path = Path(folder, ANALYSIS_NAME)
    analysis = read_analysis(analysis_path) if analysis_path.is_file() else None
    num_layers = max((row["layer"] for row in analysis), default=None) if analysis else None
    return RunInputs(folder, [_read_cell(folder, result, num_layers) for result in results], analysis)


def _read_cell(run_folder: str, result: CellResult, num_layers: int | None) -> CellInputs:
    # The cell's folder inside the run comes first: `model_path` is where it was written, which a moved
    # or copied run folder no longer matches.
    candidates = [os.path.join(run_folder, result.name), result.model_path]
    folder = next((path for path in candidates if path and os.path.isdir(path)), None)
    cell = CellInputs(result, folder)
    if folder is None:
        return cell
    outcomes_path = Path(folder, OUTCOMES_NAME)
    if outcomes_path.is_file():
        cell.outcomes = read_outcomes(outcomes_path)
    conflict_path = Path(folder, CONFLICT_LOG_NAME)
    if conflict_path.is_file():
        cell.conflict = read_conflict(conflict_path)
    if cell.aligns:  # a cell trained without alignment has no alignment layer to mark or read
        cell.layer = _alignment_layer(folder, result, num_layers)
    return cell


def saved_alignment_layer(folder: str) -> int | None:
    """The resolved `layer` of the `alignment_config.json` in model folder `folder`; `None` without one."""
    layer = (read_json(folder, ALIGNMENT_CONFIG_NAME) or {}).get("layer")
    return layer if isinstance(layer, int) else None


def _alignment_layer(folder: str, result: CellResult, num_layers: int | None) -> int | None:
    """The layer the cell's losses read: `alignment_config.json`'s resolved `layer`, else the option.

    A negative option counts from the last layer; without the config file that needs the model's
    depth, taken from the deepest layer `analysis.csv` measured (all layers unless restricted).
    """
    layer = saved_alignment_layer(folder)
    if layer is not None:
        return layer
    layer = result.config.get("alignment_layer", -1)  # the option's default reads the last layer
    if not isinstance(layer, int):
        return None
    if layer >= 0:
        return layer
    return resolve_layer(layer, num_layers) if num_layers is not None else None


def read_outcomes(path: Path) -> dict[str, dict[str, list[int]]]:
    """`outcomes.json`: language -> `{"correct": [...], "total": [...]}`, checked to be lists of one length."""
    try:
        outcomes = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataFileError(Place(str(path), error.lineno), f"invalid JSON: {error.msg}", "a JSON object") from None
    expected = 'language -> {"correct": [...], "total": [...]} with lists of one length'
    if not isinstance(outcomes, Mapping):
        raise DataFileError(str(path), f"a JSON {type(outcomes).__name__}", expected)
    for language, outcome in outcomes.items():
        lists = [outcome.get(key) for key in ("correct", "total")] if isinstance(outcome, Mapping) else [None]
        if not all(isinstance(values, list) for values in lists) or len(lists[0]) != len(lists[1]):
            raise DataFileError(str(path), f"language {language!r} is malformed", expected)
    return dict(outcomes)


def read_conflict(path: Path) -> list[ConflictMeasurement]:
    """The measurements of a `conflict.jsonl` (one JSON record per measured step); empty file, none."""
    lines = read_lines(path)
    if not lines:  # created at the start of training, before a first measured step
        return []
    records = jsonl_records(path, lines, _CONFLICT_KEYS, unit="measured step", error=DataFileError)
    return [ConflictMeasurement.from_record(record) for _, record in records]


def read_analysis(path: Path) -> list[dict[str, Any]]:
    """The rows of `analysis.csv` with `layer` as int and `value` as float (an empty value is NaN)."""
    rows = []
    for place, row in csv_records(path, read_lines(path), _ANALYSIS_COLUMNS, unit="row", error=DataFileError):
        try:
            layer = int(row["layer"])
            value = float(row["value"]) if row["value"].strip() else math.nan
        except ValueError:
            raise DataFileError(
                place, f"layer {row['layer']!r}, value {row['value']!r}", "an integer layer and a number"
            ) from None
        rows.append(
            {"model": row["model"], "pair": row["pair"], "layer": layer, "measure": row["measure"], "value": value}
        )
    return rows
