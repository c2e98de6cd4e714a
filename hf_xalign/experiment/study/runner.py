"""Run a study's cells: resumable, a subset at a time, a failed cell reported without stopping the rest.

Each cell is an ordinary experiment run ([`run_experiment`] with one cell) in its own folder,
`cells/<cell_id>/`, and gets its finished marker (kind `study_cell`) last. A rerun skips the cells
that have it, wipes and redoes the others (a killed run leaves a folder without it). A sequential cell fine-tunes an encoder
aligned once per (encoder, objective, pair) into `aligned/` ([`align_encoder`], resumable the same
way) and shared by every task and seed. At the end, the combined report of every finished cell
([`build_study_report`]). The study runs in one process; an executor runs each cell, in that process
or as a launch of `nproc_per_cell` processes, or `workers` cells side by side (`executor.py`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from tqdm.auto import tqdm
from transformers import AutoConfig

from ...args import AlignmentTrainingArguments
from ...files import (
    ALIGNED_FOLDER,
    ERROR_NAME,
    REPORT_FOLDER,
    REPORT_MARKDOWN,
    STUDY_CELL_KIND,
    STUDY_CONFIG_NAME,
    write_finished,
)
from ...tasks import TASKS
from ..align import AlignArguments, align_encoder, read_marker, select_language_pairs
from ..config import ConfigError
from ..objectives import resolve_objective
from ..output_dir import prepare_output_dir
from ..runner import run_experiment
from ..workers import resolve_workers
from .checks import cell_arguments, cell_values, check_study
from .executor import CellExecutor, CellFailed, CellsExecutor, WorkersExecutor, executor_for
from .report import build_study_report
from .spec import (
    StudyCell,
    StudyConfig,
    cell_folder,
    expand_grid,
    finished,
    read_study_config,
    select_cells,
    write_study_config,
)


@dataclass
class StudyRun:
    """What a call of [`run_study`] did: cell ids run, skipped (finished before) and failed."""

    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    report: str | None = None


def main_process() -> bool:
    """Whether this is the main process of its launch (`RANK`, as `accelerate launch` and torchrun set it)."""
    return os.environ.get("RANK", "0") == "0"


def _num_layers(model: str) -> int:
    return AutoConfig.from_pretrained(model).num_hidden_layers


def held_out_texts(config: StudyConfig, encoder: str) -> set[str]:
    """What no alignment stage may see: every task's evaluation texts and analysis pairs, for every seed.

    Read through the tasks themselves (as their base cells read them), so the texts are exactly those
    the cells hold out.
    """
    texts: set[str] = set()
    for cell in expand_grid(config):
        if cell.encoder == encoder and cell.objective is None:
            values = cell_values(config, cell, config.encoders[encoder], os.devnull)
            task_kind = config.tasks[cell.task].task
            texts.update(TASKS[task_kind][1](*cell_arguments(values, task_kind)).held_out_texts)
    return texts


def aligned_encoder(config: StudyConfig, cell: StudyCell) -> str:
    """The folder of the encoder `cell` fine-tunes, aligned first if no finished alignment is there."""
    folder = os.path.join(config.output_dir, ALIGNED_FOLDER, cell.aligned_id)
    base, objective = config.encoders[cell.encoder], config.objectives[cell.objective]
    preset = objective if isinstance(objective, str) else None  # align_encoder applies (and records) a preset
    options = {
        "output_dir": folder,
        "seed": config.seeds[0],  # one alignment serves every seed; `align: {seed: ...}` sets its own
        "report_to": [],
        "conflict_every": 0,  # no task gradient to compare with
        **config.align,
        **(resolve_objective(objective, _num_layers(base)) if preset is None else {}),
    }
    script_args = AlignArguments(
        model_name_or_path=base, parallel_data=config.pairs[cell.pair], language_pairs=[cell.pair], objective=preset
    )
    os.makedirs(os.path.dirname(folder), exist_ok=True)
    with alignment_lock(folder):
        if read_marker(folder) is not None:  # finished: no need to read the tasks' held-out texts
            return folder
        # An interrupted alignment goes on from its last complete checkpoint (align_encoder's own resume).
        return align_encoder(script_args, AlignmentTrainingArguments(**options), held_out_texts(config, cell.encoder))


@contextlib.contextmanager
def alignment_lock(folder: str) -> Iterator[None]:
    """Held while an alignment is checked and made: two cells of a job array that need the same aligned
    encoder at once align it once, the second waits and finds it finished.

    Only for one process per cell: in a multi-process launch every process must enter the alignment
    together, so there the cells of an array should not share an alignment (run one first).
    """
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        yield
        return
    with open(folder + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def run_study_cell(config: StudyConfig, cell: StudyCell) -> None:
    """Run one cell into its folder (removed by [`run_study`] before) and write its finished marker last.

    Every process of a cell's launch calls it; the main process writes the files (the others write
    nothing there, as in any recipe run).
    """
    folder = cell_folder(config.output_dir, cell)
    started = time.perf_counter()
    base = config.encoders[cell.encoder]
    model = aligned_encoder(config, cell) if cell.mode == "sequential" else base
    num_layers = _num_layers(base) if cell.mode == "joint" else None
    task_kind = config.tasks[cell.task].task
    task = TASKS[task_kind][1](*cell_arguments(cell_values(config, cell, model, folder, num_layers), task_kind))
    if cell.mode == "joint":  # the task read every pair (for the analysis); the cell aligns on its own
        task.alignment_dataset = select_language_pairs(task.alignment_dataset, [cell.pair])
    run_experiment(task, cells=[(cell.variant, {})], reference=None)
    if not main_process():
        return
    write_finished(folder, STUDY_CELL_KIND, {**cell.marker(), "seconds": time.perf_counter() - started})


def prepare_study_dir(config: StudyConfig, overwrite: bool = False) -> bool:
    """Apply the output-folder rule ([`prepare_output_dir`]) to the study folder and write `study.yaml` there;
    returns whether the study runs.

    The study is finished when every cell of its grid is and its report is written: the same study is then
    skipped. A folder holding another study is refused; `overwrite` empties it first. An unfinished study
    with the same `study.yaml` resumes (its finished cells are skipped).
    """
    path = os.path.join(config.output_dir, STUDY_CONFIG_NAME)
    in_folder = read_study_config(path) if os.path.isfile(path) else config  # the study there, finished or not
    report = os.path.join(config.output_dir, REPORT_FOLDER, REPORT_MARKDOWN)
    done = os.path.isfile(report) and all(finished(config.output_dir, cell) for cell in expand_grid(in_folder))
    if not prepare_output_dir(
        config.output_dir,
        config.to_dict(),
        settings_name=STUDY_CONFIG_NAME,
        finished=done,
        results=report,
        overwrite=overwrite,
    ):
        return False
    os.makedirs(config.output_dir, exist_ok=True)  # the study is one process (run_study refuses several)
    write_study_config(config, path)
    return True


def run_study(
    config: StudyConfig,
    patterns: Iterable[str] = (),
    keep_going: bool = True,
    overwrite: bool = False,
    executor: CellExecutor | CellsExecutor | None = None,
    workers: int | str = 1,
    worker_threads: int | None = None,
) -> StudyRun | None:
    """Run the cells of `config` that match `patterns` (all without any) and are not finished yet.

    Every problem of the config is raised first, as one [`ConfigError`]. The study folder follows the
    output-folder rule ([`prepare_study_dir`]): `None` when it holds the same finished study (skipped).
    Each pending cell's folder is emptied, then `executor` runs the cell (by default the one
    `config.nproc_per_cell` asks for, [`executor_for`]). A failing cell leaves its error (the traceback of
    the rank that failed first) in `error.txt` in its folder and the next cell starts, unless `keep_going`
    is off. With `workers` > 1 (or `"auto"`, [`~hf_xalign.experiment.workers.resolve_workers`]) that many
    cells run side by side, each in its own process ([`WorkersExecutor`]), on CPU with `worker_threads` torch
    threads each if given, else its share of the cores. An `executor` that runs many cells at once
    ([`CellsExecutor`]: the workers', Slurm's through submitit) gets every pending cell and empties the folders of
    those it starts anew (a Slurm job still running from an earlier call is waited on, its cell's folder kept).
    The report is written once every pending cell has ended: not after a detached submission.

    The study itself is one process: launched with several (`WORLD_SIZE` > 1), it is refused, since a
    cell run by all of them together could not fail on one without the others waiting for it in a
    collective; `nproc_per_cell` gives each cell its processes instead.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size > 1:
        raise ConfigError(
            f"the study was launched as {world_size} processes: run it as one (python recipes/study.py ...) "
            f"with --nproc_per_cell {world_size}, which launches each cell with that many"
        )
    check_study(config)
    cells = select_cells(expand_grid(config), patterns)
    if not prepare_study_dir(config, overwrite):
        return None
    outcome = StudyRun(skipped=[cell.cell_id for cell in cells if finished(config.output_dir, cell)])
    pending = [cell for cell in cells if not finished(config.output_dir, cell)]
    print(f"study {config.output_dir}: {len(pending)} cells to run, {len(outcome.skipped)} finished before")
    progress = tqdm(pending, desc="study", unit="cell", dynamic_ncols=True)
    side_by_side = resolve_workers(workers, config.nproc_per_cell, threads=worker_threads)
    if not isinstance(executor, CellsExecutor) and side_by_side > 1 and len(pending) > 1:
        executor = WorkersExecutor(side_by_side, config.nproc_per_cell, threads=worker_threads)
    if isinstance(executor, CellsExecutor):

        def ended(cell: StudyCell, failure: CellFailed | None) -> None:
            progress.update()
            record_outcome(config, cell, failure, outcome, keep_going)

        def running(cell_ids: list[str]) -> None:
            progress.set_postfix_str(", ".join(cell_ids))

        executor.run_cells(config, pending, ended, running)
        progress.close()
    else:
        executor = executor or executor_for(config)
        for cell in progress:
            progress.set_postfix_str(cell.cell_id)
            shutil.rmtree(cell_folder(config.output_dir, cell), ignore_errors=True)  # what a killed or failed run left
            try:
                executor.run_cell(config, cell)
                failure = None
            except CellFailed as error:
                failure = error
            record_outcome(config, cell, failure, outcome, keep_going)
    if len(outcome.ran) + len(outcome.failed) == len(pending):  # not after a detached submission
        outcome.report = build_study_report([config.output_dir])
    return outcome


def record_outcome(
    config: StudyConfig, cell: StudyCell, failure: CellFailed | None, outcome: StudyRun, keep_going: bool
) -> None:
    """Count `cell` as run, or as failed with its error in `error.txt` (raised again without `keep_going`)."""
    if failure is None:
        outcome.ran.append(cell.cell_id)
        return
    outcome.failed.append(cell.cell_id)
    folder = cell_folder(config.output_dir, cell)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, ERROR_NAME), "w", encoding="utf-8") as f:
        f.write(failure.error)
    tqdm.write(f"cell {cell.cell_id} failed: see {os.path.join(folder, ERROR_NAME)}")
    if not keep_going:
        raise failure
