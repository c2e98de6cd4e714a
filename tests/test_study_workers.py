"""A study with `--workers 2`: cells side by side in their own processes give the scores and the report of one
after the other; a failing cell leaves the others' results; a SIGKILLed study leaves no cell running, and its
rerun redoes exactly the cells that had not finished.

The study is test_study.py's tiny one (base, sequential and joint POS cells; a classification cell beside a
failing one).
"""

from __future__ import annotations

import functools
import os
import shlex
import signal
import subprocess
import sys
import time

import pytest
import yaml
from test_study import (  # noqa: F401 (classification, study_files, uninterrupted: the shared fixtures)
    ROOT,
    cell_scores,
    classification,
    read_report,
    study_files,
    study_recipe,
    uninterrupted,
    write_study,
)
from test_workers import ORPHAN_BOUND_SECONDS, processes_with

from hf_xalign.experiment.study import runner
from hf_xalign.experiment.study.executor import WorkersExecutor
from hf_xalign.experiment.study.runner import run_study
from hf_xalign.experiment.study.spec import expand_grid, finished, read_study_config
from hf_xalign.files import ERROR_NAME

# The killed study and its rerun: a bound that only says "does not hang", on a loaded 2-core machine.
STUDY_BOUND_SECONDS = 900


def test_two_workers_give_the_scores_and_the_report_of_one(study_files, uninterrupted, tmp_path):  # noqa: F811
    config = read_study_config(write_study(tmp_path, study_files, tmp_path / "study"))

    outcome = run_study(config, workers=2)

    assert outcome.failed == [] and len(outcome.ran) == 3
    # Bit for bit, though one after the other each cell had the machine's threads and side by side one
    # each: every op of this tiny model is below torch's parallel grain, so it runs on one thread anyway.
    assert cell_scores(tmp_path / "study") == cell_scores(uninterrupted)
    assert read_report(tmp_path / "study") == read_report(uninterrupted)
    logs = sorted((tmp_path / "study" / "cells").glob("*/worker.log"))
    assert len(logs) == 3
    for log_path in logs:
        with open(log_path, encoding="utf-8", newline="") as f:  # "\r" kept: a bar's redraw
            log = f.read()
        assert "] step " in log  # the cell's console lines are there, its progress bars are not
        assert "%|" not in log and "it/s]" not in log and "\r" not in log, log_path


def test_a_failing_cell_beside_others_leaves_their_results(study_files, classification, tmp_path, capsys):  # noqa: F811
    broken = tmp_path / "broken.conllu"
    broken.write_text("# sent_id = 1\n1\tthe\t_\tDET\n\n", encoding="utf-8")  # 4 fields, not 10
    with open(study_files["tasks"]["pos"]["config"], encoding="utf-8") as f:
        pos_config = yaml.safe_load(f)
    (tmp_path / "pos.yaml").write_text(
        yaml.safe_dump({**pos_config, "train_treebank": [str(broken)]}), encoding="utf-8"
    )
    options = {
        **study_files,
        "tasks": {"pos": {"task": "pos", "config": str(tmp_path / "pos.yaml")}, "cls": classification},
        "seeds": [7, 8],  # 3 cells that finish beside the one that fails
    }
    config_path = write_study(tmp_path, options, tmp_path / "study")

    status = study_recipe.main([config_path, "--cells", "*__base__*", "--workers", "2"])

    assert status == 1
    printed = capsys.readouterr().out
    assert "failed: pos__tiny__base__seed7" in printed and "failed: 2" in printed
    cells_dir = tmp_path / "study" / "cells"
    finished_ids = [
        c.cell_id for c in expand_grid(read_study_config(config_path)) if finished(str(tmp_path / "study"), c)
    ]
    assert finished_ids == ["cls__tiny__base__seed7", "cls__tiny__base__seed8"]
    assert str(broken) in (cells_dir / "pos__tiny__base__seed7" / ERROR_NAME).read_text(encoding="utf-8")
    assert (tmp_path / "study" / "report" / "report.md").is_file()


def test_a_sigkilled_study_leaves_no_cell_running_and_its_rerun_redoes_exactly_the_unfinished(
    study_files,  # noqa: F811
    uninterrupted,  # noqa: F811
    tmp_path,
):
    study_dir = tmp_path / "study"
    config_path = write_study(tmp_path, study_files, study_dir)
    config = read_study_config(config_path)
    cells = expand_grid(config)
    process = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "recipes", "study.py"), config_path, "--workers", "2"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT, "HF_HUB_OFFLINE": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    # Killed once a first cell is finished, while the others run or wait.
    deadline = time.monotonic() + STUDY_BOUND_SECONDS
    while (
        process.poll() is None and time.monotonic() < deadline and not any(finished(str(study_dir), c) for c in cells)
    ):
        time.sleep(0.05)
    assert process.poll() is None, process.stderr.read().decode()
    cell_processes = f"{study_dir}\0"  # a cell's command line: cell_main STUDY_DIR CELL_ID
    assert processes_with(cell_processes), "no cell process was running"

    process.send_signal(signal.SIGKILL)
    process.wait()
    done = {cell.cell_id for cell in cells if finished(str(study_dir), cell)}

    deadline = time.monotonic() + ORPHAN_BOUND_SECONDS
    while processes_with(cell_processes) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with(cell_processes) == []  # no orphan writes on into the folders the rerun empties
    assert 0 < len(done) < len(cells)

    outcome = run_study(config, workers=2)

    assert set(outcome.skipped) == done and set(outcome.ran) == {cell.cell_id for cell in cells} - done
    assert outcome.failed == []
    assert cell_scores(study_dir) == cell_scores(uninterrupted)
    assert read_report(study_dir) == read_report(uninterrupted)


def test_worker_threads_gives_each_cell_that_many_torch_threads(study_files, tmp_path, monkeypatch):  # noqa: F811
    # Each cell is tests/thread_probe_cell.py: it records the torch threads its process got and fails.
    monkeypatch.setattr(runner, "WorkersExecutor", functools.partial(WorkersExecutor, entry_point="thread_probe_cell"))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([ROOT, os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")])
    )
    options = {**study_files, "objectives": {}, "seeds": [1, 2]}  # two cells of the base encoder

    config_path = write_study(tmp_path, options, tmp_path / "study")

    status = study_recipe.main([config_path, "--workers", "2", "--worker_threads", "3"])

    assert status == 1  # the probes do not finish
    threads = [int(path.read_text()) for path in sorted((tmp_path / "study").glob("cells/*/threads.txt"))]
    assert threads == [3, 3]  # not their share of the cores (test_workers.py checks the share)


def test_worker_threads_below_1_is_refused_in_one_line(study_files, tmp_path, capsys):  # noqa: F811
    config_path = write_study(tmp_path, study_files, tmp_path / "study")

    with pytest.raises(SystemExit) as exit_status:
        study_recipe.main([config_path, "--workers", "2", "--worker_threads", "0"])

    error = capsys.readouterr().err.strip()
    assert exit_status.value.code == 2 and len(error.splitlines()) == 1
    assert "--worker_threads" in error and "expected a number of torch threads >= 1, got '0'" in error
    assert not (tmp_path / "study").exists()


# The study of recipes/study.py, its cells run by tests/stall_cell.py (argv: recipes folder, then study.py's own).
STALL_DRIVER = (
    "import functools, sys\n"
    "sys.path.insert(0, sys.argv.pop(1))\n"
    "import study\n"
    "from hf_xalign.experiment.study import runner\n"
    "from hf_xalign.experiment.study.executor import WorkersExecutor\n"
    "runner.WorkersExecutor = functools.partial(WorkersExecutor, entry_point='stall_cell')\n"
    "raise SystemExit(study.main())\n"
)


def test_ctrl_c_of_cells_side_by_side_says_which_stay_finished_and_the_command(study_files, tmp_path):  # noqa: F811
    config_path = write_study(tmp_path, {**study_files, "objectives": {}, "seeds": [1, 2]}, tmp_path / "study")
    config = read_study_config(config_path)
    done, stalled = expand_grid(config)
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([ROOT, os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")]),
        "XALIGN_TEST_FINISH": done.cell_id,
    }
    process = subprocess.Popen(
        [sys.executable, "-c", STALL_DRIVER, os.path.join(ROOT, "recipes"), config_path, "--workers", "2"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A background shell starts children with SIGINT ignored; a user's terminal does not.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    started = tmp_path / "study" / "cells" / stalled.cell_id / "started"
    deadline = time.monotonic() + STUDY_BOUND_SECONDS
    while not (started.exists() and finished(config.output_dir, done)) and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)  # what Ctrl-C sends
    _, stderr = process.communicate(timeout=STUDY_BOUND_SECONDS)

    assert process.returncode == 130, stderr[-3000:]
    assert finished(config.output_dir, done) and not finished(config.output_dir, stalled)
    (line,) = [line for line in stderr.splitlines() if line.startswith("study.py:")]  # beside the study's bar
    assert line == (
        "study.py: interrupted; 1 of 2 cells finished and stay finished, the other 1 start again from their "
        f"beginning on resume: python -c {shlex.join([config_path, '--workers', '2'])}"
    )
