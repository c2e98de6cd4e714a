"""The study through submitit, without a cluster: submitit's local executor (real subprocesses, the pickles and
result files of a Slurm run), and stand-in `sbatch`, `srun`, `squeue`, `sacct`, `scancel` and `scontrol` on PATH
(tests/fake_slurm/) that run each submitted script as local processes with Slurm's variables set.

The study is test_study.py's tiny one (a base, a sequential and a joint POS cell; one alignment).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time

import pytest
from test_study import (  # noqa: F401 (study_files, uninterrupted: the shared fixtures)
    ROOT,
    cell_scores,
    read_report,
    study_files,
    uninterrupted,
    write_study,
)

from hf_xalign.experiment.study.runner import prepare_study_dir, run_study
from hf_xalign.experiment.study.spec import read_study_config
from hf_xalign.files import ERROR_NAME

sys.path.insert(0, os.path.join(ROOT, "recipes"))
import study as study_recipe  # noqa: E402

submitit = pytest.importorskip("submitit")
from hf_xalign.experiment.study.slurm import SubmititExecutor  # noqa: E402 (after the skip without submitit)


@pytest.fixture
def job_environment(monkeypatch):
    """Jobs import this checkout's hf_xalign, offline."""
    monkeypatch.setenv("PYTHONPATH", ROOT)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_submitit_local_jobs_give_each_cell_the_scores_of_a_local_run(
    study_files,  # noqa: F811
    uninterrupted,  # noqa: F811
    job_environment,
    tmp_path,
):
    config = read_study_config(write_study(tmp_path, study_files, tmp_path / "study"))

    outcome = run_study(config, executor=SubmititExecutor(cluster="local"))

    assert outcome.failed == [] and len(outcome.ran) == 3
    # Bit for bit: a job is a fresh process with torch's default threads, as the study's own process has, and
    # every op of this tiny model runs on one thread anyway (below torch's parallel grain).
    assert cell_scores(tmp_path / "study") == cell_scores(uninterrupted)
    assert read_report(tmp_path / "study") == read_report(uninterrupted)


# A cell that checkpoints every 2 of its 8 steps, so a signal can fall between two checkpoints.
CHECKPOINTED = {"max_steps": 8, "save_strategy": "steps", "save_steps": 2}
BOUND_SECONDS = 600  # only says "does not hang" on a loaded 2-core machine
FAKE_SLURM = os.path.join(ROOT, "tests", "fake_slurm", "fake_slurm.py")
COMMANDS = ("sbatch", "srun", "sacct", "squeue", "scancel", "scontrol")


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch, job_environment) -> str:
    """The stand-in Slurm commands on PATH; returns their state folder (scripts/, tasks/)."""
    from submitit.slurm.slurm import SlurmJob

    bin_dir, state = tmp_path / "bin", tmp_path / "slurm"
    bin_dir.mkdir()
    state.mkdir()
    for command in COMMANDS:
        wrapper = bin_dir / command
        wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(FAKE_SLURM)} {command} "$@"\n')
        wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM_DIR", str(state))
    SlurmJob.watcher.clear()  # job ids start again at 1000 in each test's stand-in: no state cached from another
    return str(state)


def submitted_scripts(state: str) -> dict[str, str]:
    """Job name -> the sbatch script the stand-in got (the last one of that name)."""
    scripts = {}
    for name in sorted(os.listdir(os.path.join(state, "scripts")), key=lambda name: int(name.split(".")[0])):
        text = open(os.path.join(state, "scripts", name), encoding="utf-8").read()
        scripts[re.search(r"#SBATCH --job-name=(\S+)", text).group(1)] = text
    return scripts


def task_key(job_id: str) -> str:
    """The stand-in's name of a job's task: `1003_0` for an array's, `1003_` for a job's own."""
    return job_id if "_" in job_id else f"{job_id}_"


def task_record(state: str, key: str) -> dict:
    with open(os.path.join(state, "tasks", f"{key}.json"), encoding="utf-8") as f:
        return json.load(f)


@pytest.mark.parametrize(
    "nproc, expected",
    [
        (1, ["--nodes=1", "--ntasks-per-node=1", "--gpus-per-node=1"]),
        (2, ["--nodes=1", "--ntasks-per-node=2", "--gpus-per-node=2"]),
        (4, ["--nodes=2", "--ntasks-per-node=2", "--gpus-per-node=2"]),
    ],
    ids=["1-gpu", "2-gpu", "2-node"],
)
def test_the_sbatch_script_asks_for_the_cells_gpus_and_nodes(
    study_files,  # noqa: F811
    fake_slurm,
    monkeypatch,
    capsys,
    tmp_path,
    nproc,
    expected,
):
    monkeypatch.setenv("FAKE_SLURM_HOLD", "1")  # recorded, never run: no GPU here
    monkeypatch.setattr(sys, "argv", ["recipes/study.py", "study.yaml", "--executor", "slurm", "--detach"])
    cluster = {"gpus_per_node": 2, "partition": "gpu", "time": "1:30:00", "mem_gb": 32, "sbatch": ["--exclusive"]}
    config = read_study_config(
        write_study(tmp_path, {**study_files, "cluster": cluster, "nproc_per_cell": nproc}, tmp_path / "study")
    )

    run_study(config, ["*__base__*"], executor=SubmititExecutor(detach=True))

    # --detach says how to follow: the user's own command (its path as typed), without --detach
    assert "write the report with: python recipes/study.py study.yaml --executor slurm\n" in capsys.readouterr().out

    script = submitted_scripts(fake_slurm)["cell"]
    directives = set(re.findall(r"^#SBATCH (\S+)$", script, flags=re.MULTILINE))
    assert {*expected, "--partition=gpu", "--time=90", "--mem=32GB", "--exclusive"} <= directives
    assert not any(d.startswith(("--dependency", "--array")) for d in directives)  # one cell, no alignment
    assert "srun --unbuffered" in script and "-m submitit.core._submit" in script


def test_a_failed_alignment_fails_its_cells_and_a_rerun_resubmits_only_them_after_it(
    study_files,  # noqa: F811
    uninterrupted,  # noqa: F811
    fake_slurm,
    tmp_path,
):
    study_dir = tmp_path / "study"
    config = read_study_config(write_study(tmp_path, study_files, study_dir))
    cells = ["*__base__*", "*__sequential__*"]
    assert prepare_study_dir(config)
    blocker = study_dir / "aligned" / "tiny__contrastive__en-xx"  # a file where the alignment writes its folder
    blocker.parent.mkdir()
    blocker.write_text("not a folder")
    executor = SubmititExecutor(poll_seconds=0.5)

    first = run_study(config, cells, executor=executor)

    base, sequential = "pos__tiny__base__seed7", "pos__tiny__contrastive__en-xx__sequential__seed7"
    assert first.ran == [base] and first.failed == [sequential]
    job_ids = json.loads((study_dir / "slurm_jobs.json").read_text())
    error = (study_dir / "cells" / sequential / ERROR_NAME).read_text()
    assert (
        f"alignment tiny__contrastive__en-xx it fine-tunes failed (job {job_ids['aligned/tiny__contrastive__en-xx']}"
        in error
    )
    assert task_record(fake_slurm, task_key(job_ids[sequential]))["runs"] == []  # cancelled before it ran
    scripts_before = len(os.listdir(os.path.join(fake_slurm, "scripts")))
    blocker.unlink()

    second = run_study(config, cells, executor=executor)

    assert second.skipped == [base] and second.ran == [sequential] and second.failed == []
    new_scripts = sorted(os.listdir(os.path.join(fake_slurm, "scripts")), key=lambda n: int(n.split(".")[0]))
    assert len(new_scripts) == scripts_before + 2  # the alignment and its cell, nothing else
    job_ids = json.loads((study_dir / "slurm_jobs.json").read_text())
    alignment_job = job_ids["aligned/tiny__contrastive__en-xx"]
    cell_script = open(os.path.join(fake_slurm, "scripts", new_scripts[-1]), encoding="utf-8").read()
    assert f"#SBATCH --dependency=afterok:{alignment_job}" in cell_script
    assert "#SBATCH --kill-on-invalid-dep=yes" in cell_script
    (alignment_run,) = task_record(fake_slurm, task_key(alignment_job))["runs"]
    (cell_run,) = task_record(fake_slurm, task_key(job_ids[sequential]))["runs"]
    assert cell_run[0] >= alignment_run[1]  # the cell started once the alignment had ended
    expected = {key: value for key, value in cell_scores(uninterrupted).items() if key.startswith((base, sequential))}
    assert cell_scores(study_dir) == expected


def test_a_job_past_its_time_limit_is_requeued_and_resumes_from_its_checkpoint(study_files, fake_slurm, tmp_path):  # noqa: F811
    options = {**study_files, "tasks": {"pos": {**study_files["tasks"]["pos"], "overrides": CHECKPOINTED}}}
    # A 1-minute limit: submitit then reads the signal as the time limit (not a preemption, which it requeues
    # whatever the job), and requeues only a job that can checkpoint.
    options["cluster"] = {"time": 1}
    oracle = run_study(read_study_config(write_study(tmp_path, options, tmp_path / "oracle")), ["*__base__*"])
    assert oracle.failed == []
    study_dir = tmp_path / "study"
    config = read_study_config(write_study(tmp_path, options, study_dir))
    cell_dir = study_dir / "cells" / "pos__tiny__base__seed7" / "base"
    run_study(config, ["*__base__*"], executor=SubmititExecutor(detach=True))
    (job_id,) = json.loads((study_dir / "slurm_jobs.json").read_text()).values()

    # Slurm's warning before the time limit (sbatch --signal=USR2@90), once the first checkpoint is complete.
    first_checkpoint = cell_dir / "checkpoint-2" / "trainer_state.json"
    deadline = time.monotonic() + BOUND_SECONDS
    while not first_checkpoint.is_file() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first_checkpoint.is_file(), "the cell saved no checkpoint"
    saved = first_checkpoint.stat().st_mtime_ns
    subprocess.run(["scancel", job_id, "--signal", "USR2"], check=True)
    outcome = run_study(config, ["*__base__*"], executor=SubmititExecutor(poll_seconds=0.5))  # waits on the job

    assert outcome.ran == ["pos__tiny__base__seed7"] and outcome.failed == []
    assert os.listdir(os.path.join(fake_slurm, "scripts")) == [f"{job_id}.sh"]  # the rerun waited, submitted nothing
    runs = task_record(fake_slurm, task_key(job_id))["runs"]
    assert len(runs) == 2, runs  # requeued once: the first run ended on the signal, before the cell's end
    assert first_checkpoint.stat().st_mtime_ns == saved  # resumed after step 2, not trained again from step 0
    assert cell_scores(study_dir) == cell_scores(tmp_path / "oracle")


def test_dry_run_prints_the_jobs_and_their_scripts_and_writes_nothing(study_files, tmp_path, capsys):  # noqa: F811
    cluster = {"partition": "cpu", "gpus": False, "max_jobs": 4, "alignment": {"time": 30}}
    config_path = write_study(tmp_path, {**study_files, "cluster": cluster, "seeds": [7, 8]}, tmp_path / "study")

    status = study_recipe.main([config_path, "--executor", "slurm", "--dry-run"])

    assert status == 0 and not (tmp_path / "study").exists()
    printed = capsys.readouterr().out
    assert (
        "alignment tiny__contrastive__en-xx: nodes=1 tasks/node=1 gpus/node=0 cpus/task=1 mem=default time=30min"
        in printed
    )
    # base and joint cells (4) wait for nothing, the sequential ones (2) for the alignment: two arrays.
    assert "array 1 (4 cells, at most 4 at once)" in printed and "dependency: none" in printed
    assert "array 2 (2 cells, at most 4 at once)" in printed
    assert "dependency: afterok:<job of alignment tiny__contrastive__en-xx>" in printed
    assert "#SBATCH --dependency=afterok:ALIGNMENT_JOB_ID" in printed and "#SBATCH --array=0-1%2" in printed
    assert "#SBATCH --partition=cpu" in printed and "#SBATCH --time=30" in printed


def test_without_submitit_the_slurm_executor_is_one_line_naming_the_extra(study_files, tmp_path):  # noqa: F811
    from test_core_install import INSTALL_LINE, run_without

    config_path = write_study(tmp_path, study_files, tmp_path / "study")

    completed = run_without(tmp_path, ("submitit",), ["recipes/study.py", config_path, "--executor", "slurm"])

    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1 and INSTALL_LINE in completed.stderr and "submitit" in completed.stderr


def test_a_two_process_cell_runs_as_two_tasks_with_the_scores_of_its_torchrun_launch(study_files, fake_slurm, tmp_path):  # noqa: F811
    options = {**study_files, "nproc_per_cell": 2, "cluster": {"gpus": False}}  # 2 processes on CPU, one node
    oracle = run_study(read_study_config(write_study(tmp_path, options, tmp_path / "torchrun")), ["*__base__*"])
    assert oracle.failed == []  # the study's own launch: torchrun --nproc_per_node 2

    outcome = run_study(
        read_study_config(write_study(tmp_path, options, tmp_path / "study")),
        ["*__base__*"],
        executor=SubmititExecutor(poll_seconds=0.5),
    )

    assert outcome.failed == [] and outcome.ran == ["pos__tiny__base__seed7"]
    assert "#SBATCH --ntasks-per-node=2" in submitted_scripts(fake_slurm)["cell"]
    # Each task exported RANK, WORLD_SIZE and MASTER_ADDR/PORT from Slurm's variables: the same 2-process run.
    assert cell_scores(tmp_path / "study") == cell_scores(tmp_path / "torchrun")
