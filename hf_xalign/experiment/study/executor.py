"""How a study's cells are run: an executor runs one cell into its emptied folder, or says why it failed.

The study runner (`hf_xalign.experiment.study.runner.run_study`) keeps the study's guarantees (resume,
`--cells`, a failed cell stops nothing, one report) and hands each cell to an executor through one
method, [`CellExecutor.run_cell`]:

- [`InProcessExecutor`] (`nproc_per_cell: 1`): the cell runs in the study's own process.
- [`TorchrunExecutor`] (`nproc_per_cell: N > 1`): the cell is its own launch, `python -m
  torch.distributed.run --standalone --nproc_per_node N -m hf_xalign.experiment.cell_main STUDY_DIR
  CELL_ID`. When one rank raises, it records its traceback (`error.rank<r>.json` in the cell's folder,
  [`record_rank_error`]) and exits; the others either fail too (their collective's peer is gone) or
  are stopped by torchrun's agent (SIGTERM within its 0.1 s monitor interval, SIGKILL 30 s later), so
  none waits in a collective for the failed one. The executor reports the rank that failed first.
- [`WorkersExecutor`] (`--workers N > 1`): N cells side by side, each its own process (or torchrun launch),
  through the pool of `hf_xalign.experiment.workers`; each cell's output goes to `worker.log` in its folder.
  Cells that share an aligned encoder start one at a time until that alignment is finished.
- `slurm.SubmititExecutor` (`--executor slurm`): each cell, and each alignment cells share, a Slurm job
  submitted through submitit (`hf_xalign/experiment/study/slurm.py`).

The last two run many cells at once ([`CellsExecutor.run_cells`]).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from ...files import ALIGNED_FOLDER, RANK_ERROR_NAME, WORKER_LOG_NAME
from ..align import read_marker
from ..workers import Job, WorkerPool
from .spec import StudyCell, StudyConfig, cell_folder, finished

CELL_ENTRY_POINT = "hf_xalign.experiment.cell_main"


class CellFailed(Exception):
    """A cell did not finish; `error` is the text for its `error.txt` (the failing rank's traceback)."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class CellExecutor(Protocol):
    """What the study runner needs from an engine: run one cell to its end."""

    def run_cell(self, config: StudyConfig, cell: StudyCell) -> None:
        """Run `cell` of `config` into its folder (the runner removed what an earlier run left there).

        Returns once the cell has written its finished marker; raises [`CellFailed`] otherwise.
        """


@runtime_checkable
class CellsExecutor(Protocol):
    """An engine that runs many cells at once ([`WorkersExecutor`], `slurm.SubmititExecutor`)."""

    def run_cells(
        self,
        config: StudyConfig,
        cells: Sequence[StudyCell],
        on_end: Callable[[StudyCell, CellFailed | None], None],
        on_change: Callable[[list[str]], None],
    ) -> None:
        """Run `cells`, emptying the folder of each it starts anew; call `on_end(cell, failure or None)` as each
        ends and `on_change(what to show)` as the running cells change. May return before every cell ended
        (a detached submission): the study then writes no report."""


class InProcessExecutor:
    """Runs each cell in the calling process (one process per cell)."""

    def run_cell(self, config: StudyConfig, cell: StudyCell) -> None:
        from .runner import run_study_cell  # the runner imports this module

        try:
            run_study_cell(config, cell)
        except Exception as error:
            raise CellFailed(traceback.format_exc()) from error


class TorchrunExecutor:
    """Runs each cell as its own `torchrun` launch of `nproc_per_node` processes on this machine.

    Args:
        nproc_per_node (`int`): processes per cell (`torchrun --nproc_per_node`).
        entry_point (`str`, *optional*, defaults to `"hf_xalign.experiment.cell_main"`): the module each
            process runs with `STUDY_DIR CELL_ID`; a module of your own can register custom tasks and then
            call [`~hf_xalign.experiment.cell_main.main`].
    """

    def __init__(self, nproc_per_node: int, entry_point: str = CELL_ENTRY_POINT) -> None:
        self.nproc_per_node = nproc_per_node
        self.entry_point = entry_point

    def command(self, config: StudyConfig, cell: StudyCell) -> list[str]:
        """The launch of one cell (each process reads the rest from the study folder's `study.yaml`)."""
        return cell_command(config, cell, self.nproc_per_node, self.entry_point)

    def run_cell(self, config: StudyConfig, cell: StudyCell) -> None:
        command = self.command(config, cell)
        status = subprocess.run(command).returncode  # the cell's output goes where the study's goes
        failure = launch_failure(config, cell, command, status, "see the cell's output above")
        if failure is not None:
            raise CellFailed(failure)


class WorkersExecutor:
    """Runs `workers` cells side by side, each its own process (`nproc_per_cell` 1) or torchrun launch.

    Args:
        workers (`int`): cells at once ([`~hf_xalign.experiment.workers.WorkerPool`] gives each its share of
            the cores, or its own CUDA devices).
        nproc_per_cell (`int`, *optional*, defaults to `1`): processes per cell.
        entry_point (`str`, *optional*, defaults to `"hf_xalign.experiment.cell_main"`): as [`TorchrunExecutor`]'s.
        threads (`int`, *optional*): on CPU, torch threads of each cell's process instead of its share of the
            cores (`recipes/study.py --worker_threads`).
    """

    def __init__(
        self,
        workers: int,
        nproc_per_cell: int = 1,
        entry_point: str = CELL_ENTRY_POINT,
        threads: int | None = None,
    ) -> None:
        self.pool = WorkerPool(workers, threads=threads)
        self.nproc_per_cell = nproc_per_cell
        self.entry_point = entry_point

    def run_cells(
        self,
        config: StudyConfig,
        cells: Sequence[StudyCell],
        on_end: Callable[[StudyCell, CellFailed | None], None],
        on_change: Callable[[list[str]], None],
    ) -> None:
        """Run `cells` (their folders emptied first), calling `on_end(cell, failure or None)` as each ends.

        A sequential cell waits while another cell of its aligned encoder runs and that alignment is not
        finished: the encoder is aligned once, and no worker waits on the alignment's lock.
        """
        for cell in cells:
            shutil.rmtree(cell_folder(config.output_dir, cell), ignore_errors=True)  # what a killed or failed run left
        print(f"study: {self.pool.share(len(cells), self.nproc_per_cell)}")
        by_name = {cell.cell_id: cell for cell in cells}
        jobs = [
            Job(
                name=cell.cell_id,
                command=cell_command(config, cell, self.nproc_per_cell, self.entry_point),
                log_path=os.path.join(cell_folder(config.output_dir, cell), WORKER_LOG_NAME),
                nproc=self.nproc_per_cell,
                group=cell.aligned_id,
            )
            for cell in cells
        ]

        def ended(job: Job, status: int) -> None:
            cell = by_name[job.name]
            failure = launch_failure(config, cell, job.command, status, f"see {job.log_path}")
            on_end(cell, None if failure is None else CellFailed(failure))

        def aligned(group: str) -> bool:
            return read_marker(os.path.join(config.output_dir, ALIGNED_FOLDER, group)) is not None

        self.pool.run(jobs, ended, ready=aligned, on_change=on_change)


def cell_command(config: StudyConfig, cell: StudyCell, nproc: int, entry_point: str = CELL_ENTRY_POINT) -> list[str]:
    """The command that runs one cell: `python -m ENTRY STUDY_DIR CELL_ID`, under torchrun when `nproc` > 1."""
    launcher = ["torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc), "-m"] if nproc > 1 else []
    return [sys.executable, "-m", *launcher, entry_point, config.output_dir, cell.cell_id]


def launch_failure(config: StudyConfig, cell: StudyCell, command: list[str], status: int, output: str) -> str | None:
    """Why the launch of `cell` by `command` that ended with `status` failed (for `error.txt`); `None` if it did not.

    `output` says where the cell's output is.
    """
    if status == 0 and finished(config.output_dir, cell):
        return None
    first = first_rank_error(cell_folder(config.output_dir, cell))
    if first is not None:
        return f"rank {first['rank']} of {first['world_size']} failed first:\n{first['error']}"
    return (
        f"{' '.join(command)} exited with status {status} without finishing the cell, and no rank recorded an error "
        f"(killed, or a crash below Python): {output}"
    )


def executor_for(config: StudyConfig) -> CellExecutor:
    """The executor `config.nproc_per_cell` asks for."""
    return InProcessExecutor() if config.nproc_per_cell == 1 else TorchrunExecutor(config.nproc_per_cell)


def record_rank_error(folder: str, rank: int, world_size: int, error: str) -> str:
    """Write this rank's `error` (a traceback) with the time it failed into `folder`; return the file's path."""
    path = os.path.join(folder, RANK_ERROR_NAME.format(rank=rank))
    os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"rank": rank, "world_size": world_size, "time": time.time(), "error": error}, f, indent=2)
    return path


def first_rank_error(folder: str) -> dict | None:
    """The earliest error a rank recorded in `folder` ([`record_rank_error`]); `None` if none did.

    The first one is the cause: the others are ranks that saw it (a collective whose peer is gone).
    """
    records = []
    for path in glob.glob(os.path.join(glob.escape(folder), RANK_ERROR_NAME.format(rank="*"))):
        with open(path, encoding="utf-8") as f:
            records.append(json.load(f))
    return min(records, key=lambda record: record["time"], default=None)
