"""What every recipe shares: configs, cells and their results, the per-language table.

A recipe (recipes/pos.py, recipes/xnli.py) tells the story of one experiment: it reads the data
into a [`ZeroShotTask`] and runs a grid of cells on it; the pieces it reuses live here.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    ".files": ["CELL_RESULT_NAME", "CONFIG_NAME", "FINISHED_NAME", "RESULTS_JSONL", "RESULTS_MARKDOWN"],
    ".results": ["CellResult"],
    "align": ["AlignArguments", "align_encoder", "alignment_summary", "read_marker"],
    "cells": ["ALIGNED", "BASELINE", "compare_cells", "evaluate_languages", "run_cell"],
    "config": [
        "ConfigError",
        "config_errors",
        "parse_config",
        "parse_language_paths",
        "resolved_config",
        "save_config",
    ],
    "console": ["ConsoleLogCallback", "use_console_log"],
    "exits": ["EXIT_INTERRUPTED", "EXIT_USER_ERROR", "run_recipe"],
    ".hub": ["check_model_path"],
    "objectives": ["OBJECTIVES", "objective_arguments", "resolve_objective"],
    "output_dir": ["OutputDirError", "RecipeOutput", "prepare_output_dir"],
    "report": [
        "conflict_markdown",
        "read_results",
        "results_markdown",
        "write_results",
    ],
    "runner": ["run_experiment"],
    "task": ["ZeroShotArguments", "ZeroShotTask", "predicted_ids"],
}

__all__ = [
    "ALIGNED",
    "BASELINE",
    "CELL_RESULT_NAME",
    "CONFIG_NAME",
    "FINISHED_NAME",
    "EXIT_INTERRUPTED",
    "EXIT_USER_ERROR",
    "OBJECTIVES",
    "RESULTS_JSONL",
    "RESULTS_MARKDOWN",
    "AlignArguments",
    "CellResult",
    "ConfigError",
    "ConsoleLogCallback",
    "OutputDirError",
    "RecipeOutput",
    "ZeroShotArguments",
    "ZeroShotTask",
    "align_encoder",
    "alignment_summary",
    "check_model_path",
    "compare_cells",
    "config_errors",
    "conflict_markdown",
    "evaluate_languages",
    "objective_arguments",
    "parse_config",
    "parse_language_paths",
    "prepare_output_dir",
    "predicted_ids",
    "read_marker",
    "read_results",
    "resolve_objective",
    "resolved_config",
    "results_markdown",
    "run_cell",
    "run_experiment",
    "run_recipe",
    "save_config",
    "use_console_log",
    "write_results",
]

if TYPE_CHECKING:
    from ..files import CELL_RESULT_NAME, CONFIG_NAME, FINISHED_NAME, RESULTS_JSONL, RESULTS_MARKDOWN
    from ..hub import check_model_path
    from ..results import CellResult
    from .align import AlignArguments, align_encoder, alignment_summary, read_marker
    from .cells import ALIGNED, BASELINE, compare_cells, evaluate_languages, run_cell
    from .config import (
        ConfigError,
        config_errors,
        parse_config,
        parse_language_paths,
        resolved_config,
        save_config,
    )
    from .console import ConsoleLogCallback, use_console_log
    from .exits import EXIT_INTERRUPTED, EXIT_USER_ERROR, run_recipe
    from .objectives import OBJECTIVES, objective_arguments, resolve_objective
    from .output_dir import OutputDirError, RecipeOutput, prepare_output_dir
    from .report import conflict_markdown, read_results, results_markdown, write_results
    from .runner import run_experiment
    from .task import ZeroShotArguments, ZeroShotTask, predicted_ids

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
