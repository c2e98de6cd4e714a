"""A study's cells as Slurm jobs, submitted through `submitit` (`recipes/study.py --executor slurm`).

The study runner keeps the study's guarantees (resume, `--cells`, a failed cell stops nothing, one report) and
hands the pending cells to [`SubmititExecutor.run_cells`], as it hands them to the workers' pool:

- **One job per cell**, `cell_main STUDY_DIR CELL_ID` in a [`CellJob`]: a job past its time limit or preempted
  gets submitit's signal (USR2), is requeued with the same call, and the cell goes on from the Trainer's last
  complete checkpoint in its folder (the study empties a cell's folder only when it submits the cell anew). A
  cell of several processes runs one task per process; each exports the `torch.distributed` environment from
  Slurm's variables (`submitit.helpers.TorchDistributedEnvironment`) before the cell starts.
- **One job per alignment** that pending sequential cells need ([`AlignmentJob`]); its cells wait for it
  (`--dependency=afterok:<job>` with `--kill-on-invalid-dep=yes`): a failed alignment cancels them, and the
  study marks them failed with a line naming the alignment's job, never waits on them for ever.
- **Job arrays**: cells with equal resources (`hf_xalign.experiment.study.cluster.cell_resources`) and the same
  alignment to wait for are one array, at most `max_jobs_at_once` of its tasks running at once.
- **State**: `STUDY_DIR/slurm_jobs.json` maps each cell id (and `aligned/<encoder>__<objective>__<pair>`) to the
  job id it was last submitted as, rewritten (temp + rename) after each submission. A rerun of the same command
  leaves a cell whose job is still pending or running alone (it waits on it), skips finished cells (their
  marker) and resubmits failed or missing ones. submitit's own files (the pickled call, each job's output,
  `%j_0_log.out`/`.err`) go to `STUDY_DIR/submitit/`.

`cluster="local"` runs the same jobs through submitit's local executor (real subprocesses, the same pickles and
result files): the tests and the benchmark use it. It knows no dependencies, so there a cell is submitted once
its alignment is finished.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ... import _compat
from ...extras import missing_extra

try:
    import submitit
    from submitit.helpers import Checkpointable, TorchDistributedEnvironment
    from submitit.slurm.slurm import SlurmJob
except ModuleNotFoundError as error:
    raise missing_extra(error, "--executor slurm") from None

from ...files import ALIGNED_FOLDER, ALIGNMENT_KIND, STUDY_CONFIG_NAME, read_finished
from .cluster import JobResources, alignment_resources, cell_resources, max_jobs_at_once
from .executor import CellFailed, first_rank_error
from .spec import StudyCell, StudyConfig, cell_folder, expand_grid, finished, read_study_config

STATE_NAME = "slurm_jobs.json"  # in the study folder: cell id / aligned/<id> -> the job id it was submitted as
SUBMITIT_FOLDER = "submitit"  # in the study folder: submitit's pickles and each job's output
ALIGNMENT_PREFIX = f"{ALIGNED_FOLDER}/"  # the state file's key of an alignment job
# A job in one of these states may still run the cell (sacct's names; submitit's local jobs say RUNNING).
ACTIVE_STATES = {"PENDING", "RUNNING", "REQUEUED", "COMPLETING", "CONFIGURING", "SUSPENDED", "RESIZING", "READY"}
SLURM_POLL_SECONDS = 30.0  # one sacct call for all jobs per poll: Slurm's admins ask for no more
LOCAL_POLL_SECONDS = 0.5


def _find_cell(study_dir: str, cell_id: str) -> tuple[StudyConfig, StudyCell]:
    config = read_study_config(os.path.join(study_dir, STUDY_CONFIG_NAME))
    (cell,) = [cell for cell in expand_grid(config) if cell.cell_id == cell_id]
    return config, cell


def export_distributed_environment() -> None:
    """In a task of a job of several: `RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`/`PORT` from Slurm's
    variables, as torchrun would set them; nothing in a job of one task.

    Every GPU of the node stays visible (as under torchrun): the Trainer picks `cuda:LOCAL_RANK`.
    """
    if submitit.JobEnvironment().num_tasks > 1:
        TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)


class CellJob(Checkpointable):
    """One cell of the study in `study_dir`, as a submitit job; requeued (the same call) on its time limit.

    Args:
        study_dir (`str`): the study folder (holds `study.yaml`).
        cell_id (`str`): the cell to run.
    """

    def __init__(self, study_dir: str, cell_id: str) -> None:
        self.study_dir = study_dir
        self.cell_id = cell_id

    def __call__(self) -> None:
        from ..cell_main import main  # in the job: the study's own process needs no torch for this

        export_distributed_environment()
        main([self.study_dir, self.cell_id])


class AlignmentJob(Checkpointable):
    """The alignment that the sequential cell `cell_id` fine-tunes, as a submitit job (one process); requeued on
    its time limit, it goes on from its last complete checkpoint (`align_encoder`'s own resume).
    """

    def __init__(self, study_dir: str, cell_id: str) -> None:
        self.study_dir = study_dir
        self.cell_id = cell_id

    def __call__(self) -> None:
        from .runner import aligned_encoder

        aligned_encoder(*_find_cell(self.study_dir, self.cell_id))


@dataclass
class JobArray:
    """Cells submitted as one array: equal `resources`, the same alignment to wait for (`after`, an aligned id)."""

    resources: JobResources
    after: str | None
    cells: list[StudyCell]


def alignment_folder(config: StudyConfig, aligned_id: str) -> str:
    return os.path.join(config.output_dir, ALIGNED_FOLDER, aligned_id)


def alignment_finished(config: StudyConfig, aligned_id: str) -> bool:
    return read_finished(alignment_folder(config, aligned_id), ALIGNMENT_KIND) is not None


def alignments_to_run(config: StudyConfig, cells: Sequence[StudyCell]) -> dict[str, StudyCell]:
    """Aligned id -> a cell that needs it, for each alignment that `cells` fine-tune and that is not finished."""
    needed: dict[str, StudyCell] = {}
    for cell in cells:
        if cell.aligned_id is not None and not alignment_finished(config, cell.aligned_id):
            needed.setdefault(cell.aligned_id, cell)
    return needed


def job_arrays(config: StudyConfig, cells: Sequence[StudyCell], waiting_on: set[str]) -> list[JobArray]:
    """`cells` grouped into arrays by (resources, the alignment in `waiting_on` they wait for), in grid order."""
    arrays: dict[tuple[JobResources, str | None], JobArray] = {}
    for cell in cells:
        after = cell.aligned_id if cell.aligned_id in waiting_on else None
        resources = cell_resources(config, cell)
        arrays.setdefault((resources, after), JobArray(resources, after, [])).cells.append(cell)
    return list(arrays.values())


def read_job_ids(study_dir: str) -> dict[str, str]:
    """The state file's map (empty without one)."""
    path = os.path.join(study_dir, STATE_NAME)
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_job_ids(study_dir: str, job_ids: dict[str, str]) -> None:
    """Rewrite the state file whole (temp + rename: a study killed mid-write leaves the previous one)."""
    path = os.path.join(study_dir, STATE_NAME)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(job_ids, f, indent=2, sort_keys=True)
    os.replace(path + ".tmp", path)


def job_state(job: submitit.Job) -> str:
    """The job's state word (`RUNNING`, `COMPLETED`, `CANCELLED` of sacct's `CANCELLED by 0`, ...)."""
    state = job.state.split()
    return state[0].upper() if state else "UNKNOWN"


class SubmititExecutor:
    """Runs a study's pending cells as jobs submitted through submitit (see this module's docstring).

    Args:
        cluster (`str`, *optional*, defaults to `"slurm"`): `"slurm"`, or `"local"` (submitit's local executor:
            the same jobs as subprocesses of this machine).
        detach (`bool`, *optional*, defaults to `False`): submit, print how to follow, and return without waiting.
        poll_seconds (`float`, *optional*): between two looks at the jobs' states (one `sacct` call); by default
            30 s on Slurm, 0.5 s locally.
    """

    def __init__(self, cluster: str = "slurm", detach: bool = False, poll_seconds: float | None = None) -> None:
        self.cluster = cluster
        self.detach = detach
        self.poll_seconds = poll_seconds or (SLURM_POLL_SECONDS if cluster == "slurm" else LOCAL_POLL_SECONDS)

    def _executor(
        self, config: StudyConfig, resources: JobResources, name: str, after: str | None = None
    ) -> submitit.Executor:
        """A submitit executor for jobs of `resources` named `name`, waiting for job `after` (a job id) if given."""
        folder = os.path.join(config.output_dir, SUBMITIT_FOLDER, "%j")
        if self.cluster != "slurm":
            executor = submitit.LocalExecutor(folder)
            executor.update_parameters(
                tasks_per_node=resources.tasks_per_node,
                gpus_per_node=resources.gpus_per_node,
                timeout_min=resources.time_min,
                setup=list(resources.setup),
            )
            return executor
        executor = submitit.SlurmExecutor(folder)
        executor.update_parameters(**slurm_parameters(config, resources, name, after))
        return executor

    def _existing_job(self, config: StudyConfig, job_id: str) -> submitit.Job | None:
        """The job `job_id` of an earlier run of this study, if it may still run (Slurm only: a local job's
        process ends with the study that started it)."""
        if self.cluster != "slurm":
            return None
        job = SlurmJob(folder=os.path.join(config.output_dir, SUBMITIT_FOLDER, "%j"), job_id=job_id)
        return job if job_state(job) in ACTIVE_STATES else None

    def run_cells(
        self,
        config: StudyConfig,
        cells: Sequence[StudyCell],
        on_end: Callable[[StudyCell, CellFailed | None], None],
        on_change: Callable[[list[str]], None],
    ) -> None:
        """Submit `cells` (or wait on their jobs still pending or running), calling `on_end(cell, failure or None)`
        as each ends and `on_change(counts and running job ids)` as they move; with `detach`, return once
        submitted."""
        os.makedirs(os.path.join(config.output_dir, SUBMITIT_FOLDER), exist_ok=True)
        job_ids = read_job_ids(config.output_dir)
        jobs: dict[str, submitit.Job] = {}  # cell id or aligned/<id> -> its job
        for name in [cell.cell_id for cell in cells] + [ALIGNMENT_PREFIX + a for a in alignments_to_run(config, cells)]:
            existing = self._existing_job(config, job_ids[name]) if name in job_ids else None
            if existing is not None:
                jobs[name] = existing
        if jobs:
            print(f"study: {len(jobs)} job(s) of an earlier submission still pending or running: waiting on them")

        def submitted(names: list[str], new_jobs: list[submitit.Job]) -> None:
            for name, job in zip(names, new_jobs):
                jobs[name] = job
                job_ids[name] = job.job_id
            write_job_ids(config.output_dir, job_ids)

        for aligned_id, cell in alignments_to_run(config, cells).items():
            if ALIGNMENT_PREFIX + aligned_id not in jobs:
                executor = self._executor(config, alignment_resources(config, cell.encoder), f"align-{aligned_id}")
                job = executor.submit(AlignmentJob(config.output_dir, cell.cell_id))
                submitted([ALIGNMENT_PREFIX + aligned_id], [job])
        waiting_on = {name[len(ALIGNMENT_PREFIX) :] for name in jobs if name.startswith(ALIGNMENT_PREFIX)}
        to_submit = [cell for cell in cells if cell.cell_id not in jobs]
        deferred: list[StudyCell] = []
        if self.cluster != "slurm":  # no dependencies: a cell is submitted once its alignment is finished
            deferred = [cell for cell in to_submit if cell.aligned_id in waiting_on]
            to_submit = [cell for cell in to_submit if cell not in deferred]
        self._submit_cells(config, to_submit, jobs, submitted)
        if self.detach:
            self._print_how_to_follow(config, jobs)
            return
        self._wait(config, cells, jobs, deferred, submitted, on_end, on_change)

    def _submit_cells(
        self,
        config: StudyConfig,
        cells: Sequence[StudyCell],
        jobs: dict[str, submitit.Job],
        submitted: Callable[[list[str], list[submitit.Job]], None],
    ) -> None:
        waiting_on = {name[len(ALIGNMENT_PREFIX) :] for name in jobs if name.startswith(ALIGNMENT_PREFIX)}
        for array in job_arrays(config, cells, waiting_on):
            for cell in array.cells:  # what a failed or killed run left; a requeued job's folder is never emptied
                shutil.rmtree(cell_folder(config.output_dir, cell), ignore_errors=True)
            after = None if array.after is None else jobs[ALIGNMENT_PREFIX + array.after].job_id
            executor = self._executor(config, array.resources, "cell", after)
            with executor.batch():
                new_jobs = [executor.submit(CellJob(config.output_dir, cell.cell_id)) for cell in array.cells]
            submitted([cell.cell_id for cell in array.cells], new_jobs)

    def _wait(
        self,
        config: StudyConfig,
        cells: Sequence[StudyCell],
        jobs: dict[str, submitit.Job],
        deferred: list[StudyCell],
        submitted: Callable[[list[str], list[submitit.Job]], None],
        on_end: Callable[[StudyCell, CellFailed | None], None],
        on_change: Callable[[list[str]], None],
    ) -> None:
        ended: set[str] = set()
        last_shown: list[str] = []
        while len(ended) < len(cells):
            ready = [cell for cell in deferred if alignment_finished(config, cell.aligned_id)]
            if ready:
                deferred[:] = [cell for cell in deferred if cell not in ready]
                self._submit_cells(config, ready, jobs, submitted)
            if self.cluster == "slurm":
                SlurmJob.watcher.update()  # one sacct call for every job; the states below read its answer
            states = {name: job_state(job) for name, job in jobs.items()}
            for cell in cells:
                if cell.cell_id in ended:
                    continue
                failure = self._failure(config, cell, jobs, states, deferred)
                if failure is not False:
                    ended.add(cell.cell_id)
                    if cell in deferred:
                        deferred.remove(cell)
                    on_end(cell, failure)
            shown = progress_postfix(cells, jobs, states, ended, config)
            if shown != last_shown:
                on_change(shown)
                last_shown = shown
            if len(ended) < len(cells):
                time.sleep(self.poll_seconds)

    def _failure(
        self,
        config: StudyConfig,
        cell: StudyCell,
        jobs: dict[str, submitit.Job],
        states: dict[str, str],
        deferred: list[StudyCell],
    ) -> CellFailed | None | bool:
        """`None` when `cell` finished, its [`CellFailed`] when it ended otherwise, `False` while it may still run."""
        alignment = ALIGNMENT_PREFIX + str(cell.aligned_id)
        if (
            alignment in jobs
            and states[alignment] not in ACTIVE_STATES
            and not alignment_finished(config, cell.aligned_id)
        ):
            job = jobs[alignment]
            if cell.cell_id in jobs and states[cell.cell_id] in ACTIVE_STATES:
                # Its dependency can never be met (a cluster that ignores --kill-on-invalid-dep keeps it pending).
                jobs[cell.cell_id].cancel(check=False)
            return CellFailed(
                f"not run: the alignment {cell.aligned_id} it fine-tunes failed (job {job.job_id}, "
                f"{states[alignment]}): see {job.paths.stderr}"
            )
        if cell in deferred or states.get(cell.cell_id) in ACTIVE_STATES:
            return False
        if finished(config.output_dir, cell):
            return None
        job = jobs[cell.cell_id]
        first = first_rank_error(cell_folder(config.output_dir, cell))
        if first is not None:
            return CellFailed(f"rank {first['rank']} of {first['world_size']} failed first:\n{first['error']}")
        return CellFailed(
            f"job {job.job_id} ended {states[cell.cell_id]} without finishing the cell, and no rank recorded an "
            f"error (killed, out of memory or time, or a crash below Python): see {job.paths.stderr}"
        )

    def _print_how_to_follow(self, config: StudyConfig, jobs: dict[str, submitit.Job]) -> None:
        ids = sorted({job.job_id.split("_")[0] for job in jobs.values()})
        command = shlex.join([sys.argv[0], *[a for a in sys.argv[1:] if a != "--detach"]])  # as the user typed it
        print(f"study: {len(jobs)} job(s) submitted or still queued; follow them with: squeue -j {','.join(ids)}")
        print(f"study: wait for them and write the report with: python {command}")
        print(f"study: the jobs' output: {os.path.join(config.output_dir, SUBMITIT_FOLDER)}/<job id>/")


def progress_postfix(
    cells: Sequence[StudyCell],
    jobs: dict[str, submitit.Job],
    states: dict[str, str],
    ended: set[str],
    config: StudyConfig,
) -> list[str]:
    """What the progress bar shows: counts of pending, running, finished and failed cells, and the running cells'
    job ids."""
    done = [cell for cell in cells if cell.cell_id in ended and finished(config.output_dir, cell)]
    running = [c for c in cells if c.cell_id not in ended and states.get(c.cell_id) == "RUNNING"]
    pending = len(cells) - len(ended) - len(running)
    counts = [f"pending {pending}", f"running {len(running)}", f"finished {len(done)}"]
    counts.append(f"failed {len(ended) - len(done)}")
    return counts + [f"{cell.cell_id}={jobs[cell.cell_id].job_id}" for cell in running]


def slurm_parameters(config: StudyConfig, resources: JobResources, name: str, after: str | None = None) -> dict:
    """`SlurmExecutor.update_parameters`'s keyword arguments for a job (or array) of `resources` named `name`,
    waiting for job `after` if given; an array runs at most the study's `max_jobs` at once."""
    parameters = {"job_name": name, **resources.submitit_parameters()}
    extra = dict(parameters.pop("additional_parameters", {}))
    if after is not None:
        extra.update({"dependency": f"afterok:{after}", "kill-on-invalid-dep": "yes"})
    if extra:
        parameters["additional_parameters"] = extra
    cap = max_jobs_at_once(config)
    if cap is not None:
        parameters["array_parallelism"] = cap
    return parameters


def sbatch_script(
    config: StudyConfig, resources: JobResources, name: str, after: str | None = None, array_size: int = 1
) -> str:
    """The sbatch script submitit writes for one job of `resources` (`after`: the job id it waits for), or for an
    array of `array_size` jobs."""
    parameters = slurm_parameters(config, resources, name, after)
    if array_size > 1:
        parameters["map_count"] = array_size
    folder = os.path.join(config.output_dir, SUBMITIT_FOLDER, "%j")
    command = " ".join([shlex.quote(sys.executable), "-u -m submitit.core._submit", shlex.quote(folder)])
    return _compat.submitit_sbatch_text(command, folder, **parameters)


def describe(resources: JobResources) -> str:
    """One line: what a job asks for."""
    parts = [f"nodes={resources.nodes}", f"tasks/node={resources.tasks_per_node}"]
    parts += [f"gpus/node={resources.gpus_per_node}", f"cpus/task={resources.cpus_per_task}"]
    parts.append(f"mem={resources.mem_gb:g}GB" if resources.mem_gb is not None else "mem=default")
    parts.append(f"time={resources.time_min}min")
    for key in ("partition", "account", "qos", "constraint"):
        if getattr(resources, key) is not None:
            parts.append(f"{key}={getattr(resources, key)}")
    return " ".join(parts)


def print_dry_run(config: StudyConfig, cells: Sequence[StudyCell]) -> None:
    """Print the jobs a study would submit for its pending `cells` (nothing submitted, no folder written): each
    job's id, kind, resources, dependency and array, then the sbatch script of one job of each kind."""
    pending = [cell for cell in cells if not finished(config.output_dir, cell)]
    alignments = alignments_to_run(config, pending)
    cap = max_jobs_at_once(config)
    print(
        f"dry run: {len(pending)} cells to run ({len(cells) - len(pending)} finished), {len(alignments)} alignment(s)"
    )
    for aligned_id, cell in alignments.items():
        print(f"alignment {aligned_id}: {describe(alignment_resources(config, cell.encoder))}; dependency: none")
    arrays = job_arrays(config, pending, set(alignments))
    for number, array in enumerate(arrays, 1):
        after = f"afterok:<job of alignment {array.after}>" if array.after else "none"
        at_once = f", at most {cap} at once" if cap is not None else ""
        print(f"array {number} ({len(array.cells)} cells{at_once}): {describe(array.resources)}; dependency: {after}")
        for cell in array.cells:
            print(f"  cell {cell.cell_id}")
    if alignments:
        aligned_id, cell = next(iter(alignments.items()))
        print(f"\n# sbatch script of the alignment job {aligned_id}")
        print(sbatch_script(config, alignment_resources(config, cell.encoder), f"align-{aligned_id}"))
    if arrays:
        array = next((a for a in arrays if a.after is not None), arrays[0])
        after = None if array.after is None else "ALIGNMENT_JOB_ID"
        print(f"\n# sbatch script of a cell array ({len(array.cells)} cells, the first {array.cells[0].cell_id})")
        print(sbatch_script(config, array.resources, "cell", after, len(array.cells)))
