"""Run an experiment's grid of cells and write what it found beside the config that reruns it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .cells import BASELINE, CellResult, compare_cells, run_cell
from .config import resolved_config, save_config
from .report import results_markdown, write_results
from .task import ZeroShotTask


def run_experiment(
    task: ZeroShotTask,
    cells: Sequence[tuple[str, Mapping[str, Any]]] | None = None,
    reference: str | None = BASELINE,
) -> list[CellResult]:
    """Run every `(name, overrides)` cell on `task`; write `config.yaml`, `results.jsonl`, `results.md`.

    Without `cells`, the grid is the task's comparison (the aligned cell, and its baseline when
    `script_args.compare` is set: [`compare_cells`]).

    `config.yaml` is written first, so an interrupted run can be rerun as it was. The table
    shows `Δ (cell − reference)` for every other cell. Files are written, and the table printed,
    by the main process only; every process returns the results.
    """
    output_dir = task.training_args.output_dir
    main_process = task.training_args.process_index == 0
    if main_process:
        save_config(resolved_config(task.script_args, task.training_args), output_dir, task.recipe)
    if cells is None:
        cells = compare_cells(task.script_args.compare)
    results = [run_cell(task, name, overrides) for name, overrides in cells]
    if main_process:
        write_results(results, output_dir, reference)
        print("\n" + results_markdown(results, reference))
    return results
