"""Jobs side by side: a pool that runs up to N commands as subprocesses at once, each with its share of the machine.

The study (`recipes/study.py --workers N`) and an experiment's cells (`workers: N` in a recipe config) both
run through [`WorkerPool`]; nothing else starts jobs side by side.

- **Its share.** On CPU each running job gets `cores // N` torch threads (`OMP_NUM_THREADS`,
  `MKL_NUM_THREADS` and [`THREADS_VARIABLE`], which the job's entry point applies with
  [`apply_thread_share`]); a job of `nproc` processes splits its share between them. On CUDA each job
  gets `nproc` devices of its own through `CUDA_VISIBLE_DEVICES`, and waits while fewer are free.
- **Its output** goes to its `log_path`, named to the job in [`OUTPUT_FILE_VARIABLE`]: a recipe's console
  ([`~hf_xalign.experiment.console.quiet_console`]) then draws no progress bars, whose redraws would fill the file.
- **A failed job stops nothing**: its exit status goes to `on_end`, the others go on.
- **Ctrl-C / SIGTERM** to the pool's process stops every job (SIGTERM to each job's process group, SIGKILL
  after a grace period), then raises `KeyboardInterrupt`.
- **SIGKILL** of the pool's process: each job gets `PR_SET_PDEATHSIG` (Linux), so it is killed with its
  parent and no orphan goes on writing into a folder a resumed run has emptied; a job's own children
  (torchrun's ranks) do the same through [`die_with_parent`].
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

THREADS_VARIABLE = "XALIGN_NUM_THREADS"  # torch threads of each process of a job (torch.set_num_threads)
OUTPUT_FILE_VARIABLE = "XALIGN_OUTPUT_FILE"  # the file a job's output goes to: no progress bars there
AUTO = "auto"
POLL_SECONDS = 0.1  # how often the pool looks at its jobs: a finished one frees its slot within this
STOP_GRACE_SECONDS = 30  # from SIGTERM to SIGKILL when the pool stops its jobs (as torchrun's agent waits)
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclass
class Job:
    """One command to run in the pool.

    Args:
        name (`str`): what the progress display and the messages call it (a cell id).
        command (`list[str]`): the command line; its output goes to `log_path` (or the pool's own output).
        log_path (`str`, *optional*): a file for the job's stdout and stderr (its folder is created).
        nproc (`int`, *optional*, defaults to `1`): processes the job starts (devices it needs on CUDA).
        group (`str`, *optional*): jobs of one group that is not yet `ready` run one at a time (cells
            that share an alignment: the first aligns, the others start once it is finished).
    """

    name: str
    command: list[str]
    log_path: str | None = None
    nproc: int = 1
    group: str | None = None


def available_cores() -> int:
    """The cores this process may run on (its affinity mask, which a container or `taskset` narrows)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cuda_devices() -> list[str]:
    """The CUDA devices this process sees (`CUDA_VISIBLE_DEVICES` respected); empty without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        return [device.strip() for device in visible.split(",") if device.strip()][: torch.cuda.device_count()]
    return [str(index) for index in range(torch.cuda.device_count())]


def resolve_workers(
    workers: int | str,
    nproc: int = 1,
    devices: Sequence[str] | None = None,
    threads: int | None = None,
    cores: int | None = None,
) -> int:
    """The number of jobs side by side that `workers` (a number, or `"auto"`) means for jobs of `nproc` processes.

    `auto`: on GPUs, as many jobs as the devices hold (`devices // nproc`); on CPU, as many as the cores hold
    at `threads` torch threads per process (one thread without it): `cores // (nproc * threads)`, so a run
    that asks for the thread count of its reference runs side by side only where there are cores for it.
    At least 1.
    """
    if workers != AUTO:
        return int(workers)
    devices = cuda_devices() if devices is None else devices
    if devices:
        return max(1, len(devices) // nproc)
    return max(1, (available_cores() if cores is None else cores) // (nproc * (threads or 1)))


def parse_count(value: str, what: str, allow_auto: bool = False) -> int | str:
    """A count from the command line: a number >= 1, or `auto` where `allow_auto`; else argparse's type error."""
    import argparse

    if allow_auto and value == AUTO:
        return AUTO
    if value.isdigit() and int(value) >= 1:
        return int(value)
    alternatives = " or 'auto'" if allow_auto else ""
    raise argparse.ArgumentTypeError(f"expected a number of {what} >= 1{alternatives}, got {value!r}")


def parse_workers(value: str) -> int | str:
    """`--workers`'s value: a number >= 1 or `auto` (argparse `type`)."""
    return parse_count(value, "workers", allow_auto=True)


def parse_threads(value: str) -> int:
    """`--worker_threads`'s value: a number of torch threads >= 1 (argparse `type`)."""
    return int(parse_count(value, "torch threads"))


def apply_thread_share() -> None:
    """In a job's process: use the torch threads the pool gave it ([`THREADS_VARIABLE`]); nothing outside a pool."""
    threads = os.environ.get(THREADS_VARIABLE)
    if threads:
        import torch

        torch.set_num_threads(int(threads))


def die_with_parent(parent_pid: int | None = None) -> None:
    """Ask Linux to SIGKILL this process when its parent dies (`PR_SET_PDEATHSIG`); nothing elsewhere.

    With `parent_pid` (the parent before the fork), a parent already gone by then kills this process at once.
    """
    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if parent_pid is not None and os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGKILL)


class WorkerPool:
    """Runs [`Job`]s, up to `workers` at once, each a subprocess with its share of the machine.

    Args:
        workers (`int`): jobs side by side (see [`resolve_workers`] for `auto`).
        devices (`list[str]`, *optional*): the CUDA devices to hand out; by default those this process sees
            ([`cuda_devices`]), none on a CPU machine.
        cores (`int`, *optional*): the cores to split on CPU; by default [`available_cores`].
        threads (`int`, *optional*): torch threads of each process on CPU instead of its share of `cores`
            (more than the share oversubscribes the cores: a run that must reproduce the float sums of one
            made with that many threads).
    """

    def __init__(
        self,
        workers: int,
        devices: Sequence[str] | None = None,
        cores: int | None = None,
        threads: int | None = None,
    ) -> None:
        self.workers = workers
        self.devices = list(cuda_devices() if devices is None else devices)
        self.cores = available_cores() if cores is None else cores
        self.threads = threads

    def threads_per_process(self, jobs: int, nproc: int) -> int:
        """Torch threads of each process of a job when `jobs` run side by side (at least 1)."""
        if self.threads:
            return self.threads
        return max(1, self.cores // (min(self.workers, max(jobs, 1)) * nproc))

    def share(self, jobs: int, nproc: int = 1) -> str:
        """One line: what each job gets."""
        side_by_side = min(self.workers, max(jobs, 1))
        if self.devices:
            return f"{side_by_side} workers, each job {nproc} of the CUDA devices {','.join(self.devices)}"
        threads = self.threads_per_process(jobs, nproc)
        return (
            f"{side_by_side} workers on {self.cores} cores, each job {nproc} process(es) of {threads} torch thread(s)"
        )

    def environment(self, job: Job, threads: int, devices: Sequence[str]) -> dict[str, str]:
        environment = dict(os.environ)
        if job.log_path is not None:
            environment[OUTPUT_FILE_VARIABLE] = job.log_path
        if devices:
            environment["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
        else:
            environment.update({name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")})
            environment[THREADS_VARIABLE] = str(threads)
        return environment

    def run(
        self,
        jobs: Sequence[Job],
        on_end: Callable[[Job, int], None],
        ready: Callable[[str], bool] = lambda group: True,
        on_change: Callable[[list[str]], None] = lambda running: None,
    ) -> None:
        """Run `jobs` (in their order, as slots and devices free up); call `on_end(job, exit_status)` for each.

        `ready(group)` says whether a group's shared step is done: until it is, its jobs run one at a time.
        `on_change(names)` gets the names of the running jobs whenever they change. On Ctrl-C or SIGTERM
        every running job is stopped, and `KeyboardInterrupt` raised; jobs not started are not started.
        """
        threads = {nproc: self.threads_per_process(len(jobs), nproc) for nproc in {job.nproc for job in jobs}}
        waiting, running = list(jobs), {}  # running: Popen -> (job, its devices)
        free_devices = list(self.devices)
        with _sigterm_as_interrupt():
            try:
                while waiting or running:
                    for job in self._startable(waiting, running, free_devices, ready):
                        taken = job.nproc if self.devices else 0
                        devices, free_devices = free_devices[:taken], free_devices[taken:]
                        running[self._start(job, threads[job.nproc], devices)] = (job, devices)
                        waiting.remove(job)
                        on_change([job.name for job, _ in running.values()])
                    for process in [process for process in running if process.poll() is not None]:
                        job, devices = running.pop(process)
                        free_devices += devices
                        on_end(job, process.returncode)
                        on_change([job.name for job, _ in running.values()])
                    time.sleep(POLL_SECONDS)
            except BaseException:
                stop(list(running))
                raise

    def _startable(self, waiting: list[Job], running: dict, free_devices: list[str], ready) -> Iterator[Job]:
        busy_groups = {job.group for job, _ in running.values() if job.group is not None}
        slots, devices = self.workers - len(running), len(free_devices)
        for job in list(waiting):
            if slots == 0:
                return
            if job.group is not None and job.group in busy_groups and not ready(job.group):
                continue
            if self.devices and job.nproc > devices:
                continue
            busy_groups.add(job.group)
            slots -= 1
            devices -= job.nproc if self.devices else 0
            yield job

    def _start(self, job: Job, threads: int, devices: Sequence[str]) -> subprocess.Popen:
        if job.log_path is not None:
            os.makedirs(os.path.dirname(os.path.abspath(job.log_path)), exist_ok=True)
            output = open(job.log_path, "ab")
        parent = os.getpid()
        try:
            return subprocess.Popen(
                job.command,
                env=self.environment(job, threads, devices),
                stdout=output if job.log_path is not None else None,
                stderr=subprocess.STDOUT if job.log_path is not None else None,
                start_new_session=True,  # its own process group: stopped as one (torchrun and its ranks)
                preexec_fn=lambda: die_with_parent(parent),
            )
        finally:
            if job.log_path is not None:
                output.close()  # the child holds its own copy


def stop(processes: Sequence[subprocess.Popen], grace_seconds: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM each process's group, then SIGKILL the groups still there after `grace_seconds`."""
    for signal_number in (signal.SIGTERM, signal.SIGKILL):
        for process in processes:
            if process.poll() is None:
                with _gone_is_fine():
                    os.killpg(process.pid, signal_number)
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline and any(process.poll() is None for process in processes):
            time.sleep(POLL_SECONDS)
    for process in processes:
        process.wait()


@contextmanager
def _gone_is_fine() -> Iterator[None]:
    try:
        yield
    except ProcessLookupError:  # it ended between poll() and the signal
        pass


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises `KeyboardInterrupt` here (as Ctrl-C does), so the jobs are stopped either way."""

    def interrupt(signal_number: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: the caller handles its signals
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
