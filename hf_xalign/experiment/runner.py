"""Run an experiment's grid of cells and write what it found beside the config that reruns it."""

from __future__ import annotations

import json
import os
import sys
import time
from argparse import ArgumentTypeError
from collections.abc import Mapping, Sequence
from typing import Any

from ..analysis.analyze import analyze, write_table
from ..analysis.report.build import build_report
from ..args import AlignmentTrainingArguments
from ..files import ANALYSIS_NAME, CELL_RESULT_NAME, EXPERIMENT_KIND, MODEL_CARD_NAME, WORKER_LOG_NAME, write_finished
from ..hub import load_aligned, push_aligned
from ..model_card import build_model_card, write_results_file
from ..results import CellResult
from .cells import BASELINE, add_delta_intervals, compare_cells, run_cell
from .config import ConfigError, resolved_config, save_config
from .console import time_split
from .exits import CellsInterrupted
from .report import results_markdown, write_results
from .task import ZeroShotTask
from .workers import Job, WorkerPool, parse_workers, resolve_workers

CELL_ENTRY_POINT = "hf_xalign.experiment.experiment_cell"


def run_experiment(
    task: ZeroShotTask,
    cells: Sequence[tuple[str, Mapping[str, Any]]] | None = None,
    reference: str | None = BASELINE,
) -> list[CellResult]:
    """Run every `(name, overrides)` cell on `task`; write `config.yaml`, `results.jsonl`, `results.md`, and last
    the finished marker (`finished.json`, [`~hf_xalign.files.write_finished`]).

    With `analysis` in the recipe's arguments, alignment is then measured per layer on the held-out
    pairs (the base model and every cell's: `analysis.csv`) and the report is written
    (`report.md`, [`~hf_xalign.analysis.build_report`]). Each cell's folder then gets `results.json`
    (its scores and the reference's) and its model card.
    With `push_to_hub` and `hub_model_id` in the training arguments, the first cell that is not the
    reference is pushed at the end, card and results included (the cells' trainers do not push).

    Without `cells`, the grid is the task's comparison (the aligned cell, and its baseline when
    `script_args.compare` is set: [`compare_cells`]).

    `config.yaml` is written first, so an interrupted run can be rerun as it was. The table
    shows `Δ (cell − reference)` for every other cell. Files are written, and the table printed,
    by the main process only; every process returns the results.
    """
    setup_seconds = time.perf_counter() - task.started
    output_dir = task.training_args.output_dir
    main_process = task.training_args.process_index == 0
    if main_process:
        save_config(resolved_config(task.script_args, task.training_args), output_dir, task.recipe)
    if cells is None:
        cells = compare_cells(task.script_args.compare)
    results = run_cells(task, cells)
    if main_process:
        add_delta_intervals(results, reference)
        write_results(results, output_dir, reference)
        print("\n" + results_markdown(results, reference))
        analysis_seconds = None
        if task.script_args.analysis and task.analysis_dataset is not None:
            analysis_started = time.perf_counter()
            run_analysis(task, results)
            report = build_report([output_dir], reference=reference or BASELINE)
            analysis_seconds = time.perf_counter() - analysis_started
            print(f"report: {report}")
        print(time_split(setup_seconds, results, analysis_seconds, time.perf_counter() - task.started))
        publish(results, reference, task.training_args)
        write_finished(output_dir, EXPERIMENT_KIND, {"cells": [result.name for result in results]})
    return results


def run_cells(task: ZeroShotTask, cells: Sequence[tuple[str, Mapping[str, Any]]]) -> list[CellResult]:
    """Run `cells` one after the other in this process, or side by side as `script_args.workers` asks.

    Side by side, each cell is a process of its own ([`~hf_xalign.experiment.experiment_cell`]) that rebuilds
    the task from the experiment's `config.yaml` (written before), with its share of the machine
    ([`~hf_xalign.experiment.workers.WorkerPool`]); its output goes to `worker.log` in its folder. A launch of
    several processes (`WORLD_SIZE` > 1) runs its cells one after the other, all processes together.
    """
    try:
        workers = resolve_workers(
            parse_workers(str(task.script_args.workers)), threads=task.script_args.worker_threads or None
        )
    except ArgumentTypeError as error:
        raise ConfigError(f"workers: {error}") from None
    if workers == 1 or len(cells) == 1 or task.training_args.world_size > 1:
        return [run_cell(task, name, overrides) for name, overrides in cells]
    from ..tasks import TASKS  # the task kinds a cell's process can rebuild from config.yaml

    if TASKS.get(task.name, (None, None))[1] is not type(task):
        raise ConfigError(
            f"workers: {task.script_args.workers}: only the tasks of hf_xalign.tasks.TASKS can run their cells "
            f"side by side (each rebuilds its task from config.yaml), not {type(task).__name__}; set workers: 1"
        )
    output_dir = task.training_args.output_dir
    jobs = [
        Job(
            name=name,
            command=[sys.executable, "-m", CELL_ENTRY_POINT, task.name, output_dir, name, json.dumps(dict(overrides))],
            log_path=os.path.join(output_dir, name, WORKER_LOG_NAME),
        )
        for name, overrides in cells
    ]
    pool = WorkerPool(workers, threads=task.script_args.worker_threads or None)
    print(f"cells side by side: {pool.share(len(jobs))}; their output: {output_dir}/<cell>/{WORKER_LOG_NAME}")
    failed = []

    def ended(job: Job, status: int) -> None:
        if status != 0:
            failed.append(f"{job.name} (exit status {status}, its output: {job.log_path})")

    try:
        pool.run(jobs, ended)
    except KeyboardInterrupt:  # the pool stopped every cell: each rerun goes on from the cell's checkpoint
        raise CellsInterrupted([os.path.join(output_dir, name) for name, _ in cells]) from None
    if failed:
        raise RuntimeError(f"cells failed: {', '.join(failed)}")
    results = []
    for name, _ in cells:
        with open(os.path.join(output_dir, name, CELL_RESULT_NAME), encoding="utf-8") as f:
            results.append(CellResult.from_dict(json.load(f)))
    return results


def run_analysis(task: ZeroShotTask, results: Sequence[CellResult]) -> str:
    """Measure alignment per layer on the held-out pairs, for the base model and each cell's; write
    `analysis.csv` into the experiment folder and return its path."""
    script_args, training_args = task.script_args, task.training_args
    models = [("base", script_args.model_name_or_path)] + [(result.name, result.model_path) for result in results]
    rows = []
    for name, path in models:
        model, tokenizer, _ = load_aligned(path, task="encoder")
        rows += analyze(
            model,
            tokenizer,
            task.analysis_dataset,
            layers=script_args.analysis_layers or None,
            pooling=training_args.alignment_pooling,
            max_length=training_args.alignment_max_length,
            model_name=name,
        )
    return str(write_table(rows, os.path.join(training_args.output_dir, ANALYSIS_NAME)))


def publish(results: Sequence[CellResult], reference: str | None, args: AlignmentTrainingArguments) -> None:
    """Give every cell's model folder `results.json` and a card; push the first non-reference cell if asked."""
    by_name = {result.name: result for result in results}
    for result in results:
        write_results_file(result.model_path, result, by_name.get(reference) if result.name != reference else None)
        build_model_card(result.model_path, args.hub_model_id).save(os.path.join(result.model_path, MODEL_CARD_NAME))
    pushed = [result for result in results if result.name != reference][:1]
    if args.push_to_hub and args.hub_model_id and pushed:
        url = push_aligned(
            pushed[0].model_path,
            args.hub_model_id,
            token=args.hub_token,
            private=args.hub_private_repo,
            revision=args.hub_revision,
            include_loss_heads=args.hub_push_loss_heads,
        )
        print(f"pushed {pushed[0].name!r} to {url}")
