"""The study through submitit, without a cluster: submitit's local executor (real subprocesses, the pickles and
result files of a Slurm run), and stand-in `sbatch`, `srun`, `squeue`, `sacct`, `scancel` and `scontrol` on PATH
(tests/fake_slurm/) that run each submitted script as local processes with Slurm's variables set.

The study is test_study.py's tiny one (a base, a sequential and a joint POS cell; one alignment).
"""

from __future__ import annotations

import pytest
from test_study import (  # noqa: F401 (study_files, uninterrupted: the shared fixtures)
    ROOT,
    cell_scores,
    read_report,
    study_files,
    uninterrupted,
    write_study,
)

from hf_xalign.experiment.study.runner import run_study
from hf_xalign.experiment.study.spec import read_study_config

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
