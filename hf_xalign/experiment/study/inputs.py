"""What the study report reads: the finished cells of one or more study folders, and the grid they belong to.

A study folder ([`hf_xalign.experiment.study.spec`]) holds `study.yaml` and one run folder per cell,
`cells/<cell_id>/`, finished once its finished marker (kind `study_cell`) is there. Several folders merge (a study spread over
machines with `--cells`): they must hold the same grid, and a cell finished in two of them must have
the same scores in both. Everything is read and checked before the report writes anything.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

from ...analysis.report.inputs import (
    BASE_MODEL,
    CellInputs,
    RunFolderError,
    RunInputs,
    read_run,
    saved_alignment_layer,
)
from ...files import ALIGNED_FOLDER, CELLS_FOLDER, FINISHED_NAME, STUDY_CELL_KIND, STUDY_CONFIG_NAME
from ...results import CellResult
from .spec import StudyCell, expand_grid, read_study_config

MeasureKey = tuple[str, int, str]  # (language pair, layer, measure) of an analysis.csv row
_MARKER_KEYS = [f.name for f in dataclasses.fields(StudyCell)]


@dataclass
class FinishedCell:
    """A finished cell: its marker, its run folder as the run report reads it, its alignment layer.

    Args:
        study_cell ([`~hf_xalign.experiment.study.spec.StudyCell`]): the grid coordinates from its marker.
        seconds (`float`): the cell's wall-clock time, from its marker.
        run ([`~hf_xalign.analysis.report.inputs.RunInputs`]): the cell's run folder (one cell result).
        layer (`int`, *optional*): the layer the variant aligned ([`hf_xalign.layers`] numbering); `None` for
            the base variant, or when no `alignment_config.json` says it.
    """

    study_cell: StudyCell
    seconds: float
    run: RunInputs
    layer: int | None

    @property
    def cell(self) -> CellInputs:
        return self.run.cells[0]

    @property
    def result(self) -> CellResult:
        return self.run.cells[0].result

    def measures(self) -> dict[MeasureKey, float]:
        """The fine-tuned model's alignment measures from the cell's `analysis.csv` (empty without one).

        The rows of the cell's own model are those named after its variant. The base variant's cell
        shares the name `base` with the model it started from, which the runner measures first: its
        own rows are then the later ones, so the last row of each key is taken.
        """
        rows = self.run.analysis or []
        return {(r["pair"], r["layer"], r["measure"]): r["value"] for r in rows if r["model"] == self.result.name}

    def measures_before(self) -> dict[MeasureKey, float]:
        """The measures of the model the cell started from (the runner's first `base` rows)."""
        before: dict[MeasureKey, float] = {}
        for row in self.run.analysis or []:
            if row["model"] == BASE_MODEL:
                before.setdefault((row["pair"], row["layer"], row["measure"]), row["value"])
        return before


@dataclass
class StudyInputs:
    """A study as the report sees it.

    Args:
        grid (`list[StudyCell]`): every cell `study.yaml` names, in running order.
        cells (`dict[str, FinishedCell]`): cell id -> the finished cell, in grid order.
        unfinished (`list[str]`): cells of the grid with a folder but no finished marker (failed, killed, running).
        not_started (`list[str]`): cells of the grid without a folder in any study folder.
        outside_grid (`list[str]`): finished cells that `study.yaml` does not name (left out of the report).
    """

    grid: list[StudyCell]
    cells: dict[str, FinishedCell]
    unfinished: list[str]
    not_started: list[str]
    outside_grid: list[str]

    @property
    def missing(self) -> list[str]:
        """Every cell of the grid without a finished folder, in grid order."""
        return [cell.cell_id for cell in self.grid if cell.cell_id not in self.cells]


def is_study_dir(path: str) -> bool:
    """Whether `path` is a study folder (it holds `study.yaml`)."""
    return os.path.isfile(os.path.join(path, STUDY_CONFIG_NAME))


def read_study(study_dirs: Sequence[str]) -> StudyInputs:
    """Read and merge study folders: the grid of their `study.yaml`, their finished and unfinished cells.

    Raises:
        [`~hf_xalign.analysis.report.inputs.RunFolderError`]: a folder without `study.yaml`, folders whose
            grids differ, a malformed cell marker, or one cell finished twice with different scores.
    """
    if not study_dirs:
        raise ValueError("the study report needs at least one study folder")
    grid = _common_grid(study_dirs)
    grid_ids = {cell.cell_id: cell for cell in grid}
    found: dict[str, FinishedCell] = {}
    started: set[str] = set()
    outside: set[str] = set()
    for study_dir in study_dirs:
        cells_dir = os.path.join(study_dir, CELLS_FOLDER)
        for name in sorted(os.listdir(cells_dir)) if os.path.isdir(cells_dir) else []:
            folder = os.path.join(cells_dir, name)
            if not os.path.isdir(folder):
                continue
            started.add(name)
            cell = _read_cell(study_dir, folder)
            if cell is None:
                continue
            if cell.study_cell.cell_id not in grid_ids:
                outside.add(cell.study_cell.cell_id)
            elif cell.study_cell != grid_ids[cell.study_cell.cell_id]:
                raise RunFolderError(f"{folder}/{FINISHED_NAME} does not match the cell study.yaml names {name!r}")
            else:
                _merge(found, cell, folder)
    return StudyInputs(
        grid=grid,
        cells={cell.cell_id: found[cell.cell_id] for cell in grid if cell.cell_id in found},
        unfinished=[cell.cell_id for cell in grid if cell.cell_id in started and cell.cell_id not in found],
        not_started=[cell.cell_id for cell in grid if cell.cell_id not in started],
        outside_grid=sorted(outside),
    )


def _common_grid(study_dirs: Sequence[str]) -> list[StudyCell]:
    """The grid of the folders' `study.yaml` files, which must agree (their `output_dir`s may differ)."""
    grids = []
    for study_dir in study_dirs:
        path = os.path.join(study_dir, STUDY_CONFIG_NAME)
        if not os.path.isfile(path):
            raise RunFolderError(f"{study_dir}: not a study folder (no {STUDY_CONFIG_NAME})")
        grids.append((path, expand_grid(read_study_config(path))))
    (first_path, first), *others = grids
    for path, grid in others:
        if grid != first:
            only = sorted({c.cell_id for c in grid} ^ {c.cell_id for c in first})[:3]
            raise RunFolderError(
                f"{path} and {first_path} hold different studies (cells in one grid only, e.g. {', '.join(only)})"
                if only
                else f"{path} and {first_path} hold different studies (their cells differ)"
            )
    return first


def _read_cell(study_dir: str, folder: str) -> FinishedCell | None:
    """The finished cell in `folder`; `None` without a cell marker (none, or the experiment's own: the cell ran
    but the study had not recorded it)."""
    path = os.path.join(folder, FINISHED_NAME)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            marker = json.load(f)
    except json.JSONDecodeError as error:
        raise RunFolderError(f"{path}:{error.lineno}: invalid JSON ({error.msg})") from None
    if isinstance(marker, dict) and marker.get("kind") != STUDY_CELL_KIND:
        return None
    absent = [key for key in _MARKER_KEYS if not isinstance(marker, dict) or key not in marker]
    if absent:
        raise RunFolderError(f"{path}: missing {', '.join(absent)} (expected the study runner's cell marker)")
    study_cell = StudyCell(**{key: marker[key] for key in _MARKER_KEYS})
    if study_cell.cell_id != os.path.basename(folder):
        raise RunFolderError(f"{path}: names cell {study_cell.cell_id!r}, but its folder is {folder}")
    run = read_run(folder)
    if len(run.cells) != 1 or run.cells[0].name != study_cell.variant:
        names = ", ".join(cell.name for cell in run.cells)
        raise RunFolderError(f"{folder}: expected one cell result named {study_cell.variant!r}, found {names}")
    seconds = marker.get("seconds")
    seconds = float(seconds) if isinstance(seconds, (int, float)) else math.nan
    return FinishedCell(study_cell, seconds, run, _variant_layer(study_dir, study_cell, run.cells[0]))


def _variant_layer(study_dir: str, study_cell: StudyCell, cell: CellInputs) -> int | None:
    """The layer the variant aligned: the cell's own when it aligned while fine-tuning (joint), else the
    `alignment_config.json` of the aligned encoder it fine-tuned (sequential)."""
    if study_cell.objective is None:
        return None
    if cell.layer is not None:
        return cell.layer
    candidates = [
        os.path.join(study_dir, ALIGNED_FOLDER, study_cell.aligned_id or ""),
        cell.result.config.get("model_name_or_path"),
    ]
    for folder in candidates:
        layer = saved_alignment_layer(folder) if isinstance(folder, str) else None
        if layer is not None:
            return layer
    return None


def _merge(found: dict[str, FinishedCell], cell: FinishedCell, folder: str) -> None:
    """Keep one copy of a cell finished in several folders; refuse copies whose scores differ."""
    cell_id = cell.study_cell.cell_id
    if cell_id not in found:
        found[cell_id] = cell
        return
    if _comparable(found[cell_id].result.scores) != _comparable(cell.result.scores):
        raise RunFolderError(
            f"cell {cell_id} is finished in {found[cell_id].run.folder} and in {folder} with different scores: "
            "keep one of the two folders"
        )


def _comparable(scores: dict[str, dict[str, float]]) -> dict:
    """Scores with NaN as `None`, so that two unscored languages compare equal."""
    return {lang: {k: None if math.isnan(v) else v for k, v in s.items()} for lang, s in scores.items()}
