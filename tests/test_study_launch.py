"""A study with 2 processes per cell (each cell its own torchrun launch): a rank that raises fails its cell
with its own error, the other rank is stopped within seconds, the study goes on, and a rerun redoes
exactly the failed cell.

The study is test_study.py's tiny POS task from the base encoder with two seeds (two cells); the fault
comes from tests/faulty_cell_main.py, the cell entry point with one rank raising at one step.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from faulty_cell_main import FAULT
from test_study import ROOT, study_files, write_study  # noqa: F401 (study_files: the shared fixture)

from hf_xalign.files import ERROR_NAME, RANK_ERROR_NAME, STUDY_CELL_KIND, is_finished

TESTS = os.path.dirname(os.path.abspath(__file__))
FAILING, FOLLOWING = "pos__tiny__base__seed1", "pos__tiny__base__seed2"
RANK, STEP = 1, 2
# From the failing rank's exception to the end of its cell's launch: torchrun's agent sees the failed
# process within 0.1 s and stops the other one (SIGTERM); without that, the other rank waits in the
# step's gradient all-reduce for gloo's timeout (30 minutes).
CELL_END_BOUND_SECONDS = 30
# The driver, its two 2-process cells: a bound that only says "does not hang", on a loaded 2-core machine.
STUDY_BOUND_SECONDS = 900
# The study driver with the faulty entry point (a real study runs `recipes/study.py`, which uses cell_main).
DRIVER = (
    "import sys\n"
    "from hf_xalign.experiment.study.spec import read_study_config\n"
    "from hf_xalign.experiment.study.executor import TorchrunExecutor\n"
    "from hf_xalign.experiment.study.runner import run_study\n"
    "outcome = run_study(read_study_config(sys.argv[1]), executor=TorchrunExecutor(2, 'faulty_cell_main'))\n"
    "print('failed:', outcome.failed, 'ran:', outcome.ran)\n"
)


def test_a_rank_that_raises_fails_its_cell_alone_and_a_rerun_redoes_that_cell(study_files, tmp_path):  # noqa: F811
    options = {
        **study_files,
        "tasks": {"pos": {**study_files["tasks"]["pos"], "overrides": {"analysis": False}}},  # time
        "objectives": {},
        "seeds": [1, 2],
        "nproc_per_cell": 2,
    }
    config_path = write_study(tmp_path, options, tmp_path / "study")
    cells = tmp_path / "study" / "cells"
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([ROOT, TESTS, os.environ.get("PYTHONPATH", "")]),
        "HF_HUB_OFFLINE": "1",
        "XALIGN_TEST_FAULT": f"{FAILING}:{RANK}:{STEP}",
    }

    first = subprocess.run(
        [sys.executable, "-c", DRIVER, config_path],
        env=environment,
        capture_output=True,
        text=True,
        timeout=STUDY_BOUND_SECONDS,
    )

    assert first.returncode == 0, first.stderr[-4000:]
    assert f"failed: ['{FAILING}'] ran: ['{FOLLOWING}']" in first.stdout
    error = (cells / FAILING / ERROR_NAME).read_text(encoding="utf-8")
    assert error.startswith(f"rank {RANK} of 2 failed first:\n")
    assert FAULT.format(rank=RANK, step=STEP) in error
    assert not is_finished(str(cells / FAILING), STUDY_CELL_KIND)
    raised = json.loads((cells / FAILING / RANK_ERROR_NAME.format(rank=RANK)).read_text(encoding="utf-8"))["time"]
    # error.txt is written as soon as the cell's launch has ended: its time bounds the other rank's wait
    assert os.stat(cells / FAILING / ERROR_NAME).st_mtime - raised < CELL_END_BOUND_SECONDS
    assert is_finished(str(cells / FOLLOWING), STUDY_CELL_KIND)
    following_files = {path: os.stat(path).st_mtime_ns for path in (cells / FOLLOWING).rglob("*")}

    rerun = subprocess.run(
        [sys.executable, os.path.join(ROOT, "recipes", "study.py"), config_path],
        env={key: value for key, value in environment.items() if key != "XALIGN_TEST_FAULT"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=STUDY_BOUND_SECONDS,
    )

    assert rerun.returncode == 0, rerun.stderr[-4000:]
    assert "cells run: 1, finished before: 1, failed: 0" in rerun.stdout
    assert is_finished(str(cells / FAILING), STUDY_CELL_KIND) and not (cells / FAILING / ERROR_NAME).exists()
    assert {path: os.stat(path).st_mtime_ns for path in (cells / FOLLOWING).rglob("*")} == following_files


def test_a_study_launched_as_several_processes_is_refused_with_the_option_to_use(study_files, tmp_path):  # noqa: F811
    config_path = write_study(tmp_path, study_files, tmp_path / "study")
    environment = {**os.environ, "PYTHONPATH": ROOT, "WORLD_SIZE": "2", "RANK": "0"}
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "recipes", "study.py"), config_path],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "study.py: error: the study was launched as 2 processes: run it as one (python recipes/study.py ...) "
        "with --nproc_per_cell 2, which launches each cell with that many"
    ]
    assert not os.path.exists(tmp_path / "study")
