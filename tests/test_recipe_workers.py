"""A recipe's cells side by side (`workers: 2`): each cell a process of its own, rebuilt from config.yaml, gives
the results and the table of the same cells run one after the other in the recipe's process.

The experiment is test_study.py's tiny POS task (2-layer XLM-R, synthetic `xx`) with its aligned and baseline
cells.
"""

from __future__ import annotations

import json
import sys

from test_study import study_files  # noqa: F401 (the shared fixture)

from hf_xalign import AlignmentTrainingArguments
from hf_xalign.experiment import run_experiment
from hf_xalign.experiment.config import parse_config
from hf_xalign.experiment.exits import CellsInterrupted, interrupted_line
from hf_xalign.tasks.pos import PosArguments, PosTask


def run_pos(study_files, output_dir, workers: str) -> list:  # noqa: F811
    script_args, training_args = parse_config(
        [PosArguments, AlignmentTrainingArguments],
        [
            study_files["tasks"]["pos"]["config"],
            "--model_name_or_path",
            study_files["encoders"]["tiny"],
            "--parallel_data",
            *study_files["pairs"]["en-xx"],
            "--alignment_loss",
            "contrastive",
            "--output_dir",
            str(output_dir),
            "--workers",
            workers,
        ],
    )
    return run_experiment(PosTask(script_args, training_args))


def read(path, folder=None) -> str:
    """The file's text, with its experiment's folder (the report names it) replaced by `RUN`."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return text if folder is None else text.replace(str(folder), "RUN")


def test_cells_side_by_side_give_the_results_of_one_after_the_other(study_files, tmp_path):  # noqa: F811
    one, two = tmp_path / "one" / "run", tmp_path / "two" / "run"  # one name: the report's plots are named by it
    one_after_the_other = run_pos(study_files, one, "1")
    side_by_side = run_pos(study_files, two, "2")

    assert [result.name for result in side_by_side] == ["aligned", "baseline"]
    for name in ("aligned", "baseline"):
        with open(two / name / "worker.log", encoding="utf-8", newline="") as f:  # "\r" kept: a bar's redraw
            log = f.read()
        assert f"[{two / name}] step " in log  # the cell's console lines are there, its progress bars are not:
        assert "%|" not in log and "it/s]" not in log and "\r" not in log  # tqdm's "50%|#####     | 2/4 [...it/s]"
    # Bit for bit: this tiny model's ops run on one thread whatever the share (below torch's parallel grain).
    assert [result.scores for result in side_by_side] == [result.scores for result in one_after_the_other]
    assert [result.delta_intervals for result in side_by_side] == [r.delta_intervals for r in one_after_the_other]
    assert read(two / "results.md") == read(one / "results.md")
    assert read(two / "report" / "report.md", two) == read(one / "report" / "report.md", one)


def test_ctrl_c_of_cells_side_by_side_names_where_each_cell_goes_on(tmp_path, monkeypatch):
    # The cells trained in their own processes: the recipe's process saw no step. As the cells left their folders:
    aligned, baseline = tmp_path / "run" / "aligned", tmp_path / "run" / "baseline"
    for step in (2, 4):
        (aligned / f"checkpoint-{step}").mkdir(parents=True)
        (aligned / f"checkpoint-{step}" / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    (aligned / "checkpoint-6").mkdir()  # stopped while saving it: no trainer_state.json, which is written last
    baseline.mkdir()  # no checkpoint saved
    monkeypatch.setattr(sys, "argv", ["pos.py", "pos.yaml"])

    line = interrupted_line("pos.py", ["pos.yaml"], CellsInterrupted([str(aligned), str(baseline)]))

    assert line == (
        f"pos.py: interrupted with cells side by side; each goes on (aligned from {aligned / 'checkpoint-4'}, "
        "baseline from its start (no checkpoint saved)) with: python pos.py pos.yaml"
    )
