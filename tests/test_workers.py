"""The pool that runs jobs side by side: each job's share of the cores, a failed job stops nothing, a group
waits for its first job, and no job outlives the pool's process (SIGTERM, SIGKILL).

The jobs are small Python commands (no torch): they write what they saw into files the test reads.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from hf_xalign.experiment.workers import THREADS_VARIABLE, Job, WorkerPool, resolve_workers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# How long a killed pool's children may take to go: only says "they do go" (PR_SET_PDEATHSIG is immediate).
ORPHAN_BOUND_SECONDS = 10


def python_job(name: str, code: str, **options) -> Job:
    return Job(name=name, command=[sys.executable, "-c", code], **options)


def test_each_job_gets_its_share_of_the_cores_and_a_failed_job_stops_nothing(tmp_path):
    seen = tmp_path / "{name}.json"
    report = (
        "import json, os, sys; json.dump({{v: os.environ.get(v) for v in ('OMP_NUM_THREADS', '{threads}')}}, "
        "open(r'{path}', 'w')); sys.exit({status})"
    )
    jobs = [
        python_job(name, report.format(threads=THREADS_VARIABLE, path=str(seen).format(name=name), status=status))
        for name, status in (("a", 0), ("b", 3), ("c", 0))
    ]
    ended = {}

    WorkerPool(2, devices=[], cores=8).run(jobs, lambda job, status: ended.update({job.name: status}))

    assert ended == {"a": 0, "b": 3, "c": 0}  # b's failure did not stop c
    for name in "abc":  # 8 cores, 2 side by side: 4 threads each
        assert json.loads((tmp_path / f"{name}.json").read_text()) == {"OMP_NUM_THREADS": "4", THREADS_VARIABLE: "4"}


def test_a_single_job_gets_every_core_and_gpu_jobs_get_their_own_devices(tmp_path):
    pool = WorkerPool(4, devices=[], cores=8)
    assert pool.threads_per_process(jobs=1, nproc=1) == 8  # no idle worker takes a share
    assert pool.threads_per_process(jobs=9, nproc=2) == 1
    assert WorkerPool(2, devices=[], cores=2, threads=2).threads_per_process(jobs=2, nproc=1) == 2  # asked for
    code = "import os; open(r'{path}', 'w').write(os.environ['CUDA_VISIBLE_DEVICES'])"
    jobs = [python_job(name, code.format(path=tmp_path / name), nproc=nproc) for name, nproc in (("x", 2), ("y", 1))]
    WorkerPool(2, devices=["4", "5", "6"]).run(jobs, lambda job, status: None)
    assert (tmp_path / "x").read_text() == "4,5" and (tmp_path / "y").read_text() == "6"


def test_a_group_runs_one_job_at_a_time_until_it_is_ready(tmp_path):
    """Jobs of a group (cells sharing an alignment) do not overlap while the group is not ready."""
    log = tmp_path / "log"
    code = (
        "import time; open(r'{log}', 'a').write('start {name}\\n'); time.sleep(0.5); "
        "open(r'{log}', 'a').write('end {name}\\n')"
    )
    jobs = [python_job(name, code.format(log=log, name=name), group="aligned") for name in ("first", "second")]

    WorkerPool(2, devices=[], cores=2).run(jobs, lambda job, status: None, ready=lambda group: False)

    assert log.read_text().split("\n")[:4] == ["start first", "end first", "start second", "end second"]


# A pool of two jobs that sleep; the test signals the driver and looks for the jobs afterwards.
DRIVER = (
    "import sys\n"
    "from hf_xalign.experiment.workers import Job, WorkerPool\n"
    "sleep = [sys.executable, '-c', 'import time; time.sleep(600)', sys.argv[1] + '-job']\n"
    "jobs = [Job(name=str(n), command=sleep) for n in range(2)]\n"
    "try:\n"
    "    WorkerPool(2, devices=[], cores=2).run(jobs, lambda job, status: None)\n"
    "except KeyboardInterrupt:\n"
    "    sys.exit(130)\n"
)


def processes_with(marker: str) -> list[int]:
    """The ids of the live processes whose command line holds `marker`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                command = f.read().decode(errors="replace")
            with open(f"/proc/{pid}/stat") as f:
                zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            continue
        if marker in command and not zombie:
            found.append(int(pid))
    return found


def start_driver(marker: str) -> subprocess.Popen:
    """The driver, once both its jobs (command lines holding `marker`-job) run."""
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, marker], env={**os.environ, "PYTHONPATH": ROOT}, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while len(processes_with(f"{marker}-job")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(processes_with(f"{marker}-job")) == 2, driver.stderr.read().decode() if driver.poll() is not None else ""
    return driver


def gone_within(marker: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not processes_with(marker)


def test_sigterm_to_the_pool_stops_every_job(tmp_path):
    marker = f"pool-sigterm-{tmp_path.name}"
    driver = start_driver(marker)

    driver.send_signal(signal.SIGTERM)

    assert driver.wait(timeout=ORPHAN_BOUND_SECONDS) == 130
    assert gone_within(f"{marker}-job", ORPHAN_BOUND_SECONDS)


def test_no_job_outlives_a_sigkilled_pool(tmp_path):
    marker = f"pool-sigkill-{tmp_path.name}"
    driver = start_driver(marker)

    driver.send_signal(signal.SIGKILL)
    driver.wait()

    assert gone_within(f"{marker}-job", ORPHAN_BOUND_SECONDS)


def test_auto_counts_the_jobs_the_machine_holds_at_the_threads_each_asks_for():
    # Hand-counted: 2 cores hold 2 one-thread jobs, 1 two-thread job (the demo's reference thread count);
    # 8 cores hold 4 two-thread jobs, 2 two-process jobs of 2 threads; GPUs count devices, not threads.
    assert resolve_workers("auto", devices=[], cores=2) == 2
    assert resolve_workers("auto", devices=[], cores=2, threads=2) == 1
    assert resolve_workers("auto", devices=[], cores=8, threads=2) == 4
    assert resolve_workers("auto", nproc=2, devices=[], cores=8, threads=2) == 2
    assert resolve_workers("auto", devices=[], cores=1, threads=4) == 1  # at least one
    assert resolve_workers("auto", nproc=2, devices=["0", "1", "2", "3"], threads=8) == 2
    assert resolve_workers(3, devices=[], cores=2, threads=2) == 3  # a number is taken as given
