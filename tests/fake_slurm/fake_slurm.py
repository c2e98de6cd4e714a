"""Stand-in Slurm commands for tests: `sbatch`, `srun`, `sacct`, `squeue`, `scancel`, `scontrol`, on one machine.

    python fake_slurm.py COMMAND ARGS...      (tests/conftest-style fixtures write one wrapper per COMMAND on PATH)

State lives in `$FAKE_SLURM_DIR`: `next_id` (the job counter), `scripts/<id>.sh` (each script sbatch got, as
submitted), `tasks/<id>_<index>.json` (one per array task; `<id>_.json` for a job that is not an array) holding
the task's state, pids, whether it was asked to requeue, and each run's start, end and exit status. With
`$FAKE_SLURM_HOLD` set, no job starts (a queue that never moves: the scripts alone are checked).

- `sbatch SCRIPT`: records the script, answers `Submitted batch job <id>`, and starts a detached runner that waits
  for an `--dependency=afterok:<id>` (cancels the job when that one ends otherwise and `--kill-on-invalid-dep=yes`
  is set), then runs the script with bash once per array task (at most `%N` at once), with SLURM_JOB_ID,
  SLURM_ARRAY_JOB_ID/TASK_ID, SLURM_NTASKS, SLURM_JOB_NUM_NODES, SLURM_JOB_NODELIST set. A task asked to requeue
  (`scontrol requeue`) is run again when its script ends.
- `srun [--output F] [--error F] [--unbuffered] COMMAND`: SLURM_NTASKS processes of COMMAND, each with
  SLURM_PROCID, SLURM_LOCALID, SLURM_NODEID (tasks per node: SLURM_NTASKS_PER_NODE); `%j %A %a %t` expanded in the
  output names; signals it gets go to its tasks; its status is the worst of theirs.
- `sacct -j ID ... --parsable2` and `squeue -j ID`: the tasks' states; `scancel ID [--signal SIG]`: cancel, or send
  SIG to the job's tasks (through its srun); `scontrol requeue ID`.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

STATE_DIR = os.environ.get("FAKE_SLURM_DIR", "")
POLL_SECONDS = 0.2
ENDED_BADLY = {"FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL"}


def path(*parts: str) -> str:
    return os.path.join(STATE_DIR, *parts)


@contextmanager
def locked():
    with open(path("lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def task_file(key: str) -> str:
    return path("tasks", f"{key}.json")


def read_task(key: str) -> dict:
    with open(task_file(key)) as f:
        return json.load(f)


def update_task(key: str, **values) -> dict:
    with locked():
        task = read_task(key)
        task.update(values)
        with open(task_file(key) + ".tmp", "w") as f:
            json.dump(task, f)
        os.replace(task_file(key) + ".tmp", task_file(key))
    return task


def job_tasks(job_id: str) -> list[str]:
    """Task keys of `job_id` (`123`: all its tasks; `123_4`: that one)."""
    main, _, index = job_id.partition("_")
    keys = sorted(name[: -len(".json")] for name in os.listdir(path("tasks")) if name.split("_")[0] == main)
    return [key for key in keys if not index or key == f"{main}_{index}"]


def directives(script: str) -> dict[str, str]:
    found = {}
    for line in script.splitlines():
        match = re.match(r"#SBATCH --([\w-]+)(?:=(.*))?$", line.strip())
        if match:
            found[match.group(1)] = (match.group(2) or "").strip("'\"")
    return found


def sbatch(args: list[str]) -> int:
    (script_path,) = [arg for arg in args if not arg.startswith("-")]
    with open(script_path) as f:
        script = f.read()
    options = directives(script)
    os.makedirs(path("scripts"), exist_ok=True)
    os.makedirs(path("tasks"), exist_ok=True)
    with locked():
        counter = path("next_id")
        job_id = int(open(counter).read()) if os.path.exists(counter) else 1000
        with open(counter, "w") as f:
            f.write(str(job_id + 1))
    with open(path("scripts", f"{job_id}.sh"), "w") as f:
        f.write(script)
    array = options.get("array")
    indices = [""]
    if array:
        first, last = re.match(r"(\d+)-(\d+)", array).groups()
        indices = [str(index) for index in range(int(first), int(last) + 1)]
    for index in indices:
        with open(task_file(f"{job_id}_{index}"), "w") as f:
            json.dump({"state": "PENDING", "requeue": False, "srun_pid": None, "pgid": None, "runs": []}, f)
    if os.environ.get("FAKE_SLURM_HOLD"):  # a held queue: jobs are recorded, none starts
        print(f"Submitted batch job {job_id}")
        return 0
    subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "_run", str(job_id)],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(path(f"runner.{job_id}.log"), "w"),
    )
    print(f"Submitted batch job {job_id}")
    return 0


def job_state(job_id: str) -> str:
    """A whole job's state: COMPLETED when every task is, the first bad end otherwise, else still going."""
    states = [read_task(key)["state"] for key in job_tasks(job_id)]
    if all(state == "COMPLETED" for state in states):
        return "COMPLETED"
    bad = [state for state in states if state in ENDED_BADLY]
    return bad[0] if bad and all(s == "COMPLETED" or s in ENDED_BADLY for s in states) else "RUNNING"


def run_job(job_id: str) -> int:
    with open(path("scripts", f"{job_id}.sh")) as f:
        options = directives(f.read())
    dependency = options.get("dependency", "")
    if dependency:
        after = dependency.removeprefix("afterok:")
        while (state := job_state(after)) not in {"COMPLETED", *ENDED_BADLY}:
            time.sleep(POLL_SECONDS)
        if state != "COMPLETED":
            if options.get("kill-on-invalid-dep") == "yes":
                for key in job_tasks(job_id):
                    update_task(key, state="CANCELLED")
                return 0
            return 0  # a real Slurm keeps it PENDING (DependencyNeverSatisfied): the study must cancel it
    parallel = int(options["array"].split("%")[1]) if "%" in options.get("array", "") else 1_000_000
    slots = threading.Semaphore(parallel)
    threads = [threading.Thread(target=run_task, args=(job_id, key, options, slots)) for key in job_tasks(job_id)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return 0


def run_task(job_id: str, key: str, options: dict, slots: threading.Semaphore) -> None:
    index = key.partition("_")[2]
    nodes, per_node = int(options.get("nodes", "1")), int(options.get("ntasks-per-node", "1"))
    environment = {
        **os.environ,
        "SLURM_JOB_ID": str(int(job_id) * 1000 + int(index or 0)) if index else job_id,
        "SLURM_JOB_NUM_NODES": str(nodes),
        "SLURM_NNODES": str(nodes),
        "SLURM_NTASKS": str(nodes * per_node),
        "SLURM_NTASKS_PER_NODE": str(per_node),
        "SLURM_JOB_NODELIST": "localhost",
        "SLURM_JOB_NAME": options.get("job-name", ""),
    }
    if index:
        environment.update(SLURM_ARRAY_JOB_ID=job_id, SLURM_ARRAY_TASK_ID=index)
    with slots:
        while read_task(key)["state"] == "PENDING":
            update_task(key, state="RUNNING", requeue=False)
            process = subprocess.Popen(
                ["bash", path("scripts", f"{job_id}.sh")], env=environment, start_new_session=True
            )
            update_task(key, pgid=process.pid)
            started = time.time()
            status = process.wait()
            task = update_task(key, runs=read_task(key)["runs"] + [[started, time.time(), status]])
            if task["state"] == "CANCELLED":
                return
            if task["requeue"]:
                update_task(key, state="PENDING")
                continue
            update_task(key, state="COMPLETED" if status == 0 else "FAILED")


def srun(args: list[str]) -> int:
    outputs = {}
    while args and args[0].startswith("-"):
        flag = args.pop(0)
        if flag in ("--output", "--error"):
            outputs[flag] = args.pop(0)
    ntasks, per_node = int(os.environ.get("SLURM_NTASKS", "1")), int(os.environ.get("SLURM_NTASKS_PER_NODE", "1"))
    job_key = (
        f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
        if "SLURM_ARRAY_JOB_ID" in os.environ
        else f"{os.environ['SLURM_JOB_ID']}_"
    )
    processes = []
    for rank in range(ntasks):
        names = {
            "%j": os.environ["SLURM_JOB_ID"],
            "%A": os.environ.get("SLURM_ARRAY_JOB_ID", ""),
            "%a": os.environ.get("SLURM_ARRAY_TASK_ID", ""),
            "%t": str(rank),
        }
        files = {}
        for flag, pattern in outputs.items():
            for name, value in names.items():
                pattern = pattern.replace(name, value)
            os.makedirs(os.path.dirname(pattern), exist_ok=True)
            files[flag] = open(pattern, "a")
        environment = {
            **os.environ,
            "SLURM_PROCID": str(rank),
            "SLURM_LOCALID": str(rank % per_node),
            "SLURM_NODEID": str(rank // per_node),
        }
        processes.append(
            subprocess.Popen(args, env=environment, stdout=files.get("--output"), stderr=files.get("--error"))
        )

    def forward(signal_number, frame) -> None:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal_number)

    for signal_number in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM, signal.SIGINT):
        signal.signal(signal_number, forward)
    update_task(job_key, srun_pid=os.getpid())
    statuses = [process.wait() for process in processes]
    return max(statuses, key=abs)


def sacct(args: list[str]) -> int:
    job_ids = [args[i + 1] for i, arg in enumerate(args) if arg == "-j"]
    print("JobID|State|NodeList")
    for job_id in job_ids:
        for key in job_tasks(job_id):
            main, _, index = key.partition("_")
            print(f"{key if index else main}|{read_task(key)['state']}|localhost")
    return 0


def squeue(args: list[str]) -> int:
    job_ids = [arg for i, arg in enumerate(args) if i > 0 and args[i - 1] == "-j"]
    ids = [job for value in job_ids for job in value.split(",")] or sorted(
        {name.split("_")[0] for name in os.listdir(path("tasks"))}
    )
    print("JOBID STATE")
    for job_id in ids:
        for key in job_tasks(job_id):
            state = read_task(key)["state"]
            if state in ("PENDING", "RUNNING"):
                print(f"{key.rstrip('_')} {state}")
    return 0


def scancel(args: list[str]) -> int:
    sent = [args[i + 1] for i, arg in enumerate(args) if arg == "--signal"]
    job_ids = [arg for i, arg in enumerate(args) if not arg.startswith("-") and (i == 0 or args[i - 1] != "--signal")]
    for job_id in job_ids:
        for key in job_tasks(job_id):
            task = read_task(key)
            if sent:  # to the job's tasks, through its srun (not to the batch shell), as scancel --signal does
                if task["srun_pid"] is not None:
                    os.kill(task["srun_pid"], getattr(signal, "SIG" + sent[0].removeprefix("SIG")))
            elif task["state"] in ("PENDING", "RUNNING"):
                update_task(key, state="CANCELLED")
                if task["pgid"] is not None:
                    try:
                        os.killpg(task["pgid"], signal.SIGKILL)
                    except ProcessLookupError:
                        pass
    return 0


def scontrol(args: list[str]) -> int:
    assert args[0] == "requeue", args
    for key in job_tasks(args[1]):
        update_task(key, requeue=True)
    return 0


COMMANDS = {"sbatch": sbatch, "srun": srun, "sacct": sacct, "squeue": squeue, "scancel": scancel}
COMMANDS["scontrol"] = scontrol

if __name__ == "__main__":
    command, arguments = sys.argv[1], sys.argv[2:]
    if command == "_run":
        raise SystemExit(run_job(arguments[0]))
    raise SystemExit(COMMANDS[command](arguments))
