"""Crash-safe resume: a run SIGKILLed while writing a checkpoint, then mid-run, resumes to the uninterrupted result.

The runs are subprocesses (tests/_crash_run.py), so the kill is a real one: nothing of the process
gets to clean up. `transformers` writes checkpoints in place and its `get_last_checkpoint` takes the
highest-numbered folder, complete or not; `AlignmentTrainer` resumes from the last complete one
(hf_xalign/checkpoints.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import torch
from _crash_run import FINAL_PARAMETERS, SAVE_STEPS, STEPS, build_trainer, save_final_parameters
from safetensors.torch import load_file
from test_trainer import make_args, make_trainer
from transformers.trainer_utils import get_last_checkpoint

from hf_xalign.checkpoints import last_complete_checkpoint
from hf_xalign.files import CONFLICT_LOG_NAME

SCRIPT = os.path.join(os.path.dirname(__file__), "_crash_run.py")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_script(output_dir: str, *flags: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
    return subprocess.run(
        [sys.executable, SCRIPT, output_dir, *flags], env=env, capture_output=True, text=True, timeout=600
    )


def measured_cosines(output_dir: str) -> list[tuple[int, float]]:
    with open(os.path.join(output_dir, CONFLICT_LOG_NAME), encoding="utf-8") as f:
        return [(record["step"], record["cosine"]) for record in map(json.loads, f)]


def test_a_run_killed_while_saving_then_mid_run_resumes_to_the_uninterrupted_run(tmp_path):
    assert (STEPS, SAVE_STEPS) == (6, 2)
    output_dir = str(tmp_path / "killed")
    checkpoint = lambda step: os.path.join(output_dir, f"checkpoint-{step}")  # noqa: E731

    # 1. Killed while writing checkpoint-4: the model is there, the optimizer and trainer state are not.
    killed = run_script(output_dir, "--kill-saving", "4")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert os.path.isfile(os.path.join(checkpoint(4), "model.safetensors"))
    assert not os.path.exists(os.path.join(checkpoint(4), "trainer_state.json"))
    assert get_last_checkpoint(output_dir) == checkpoint(4)  # transformers alone would resume from it
    assert last_complete_checkpoint(output_dir) == checkpoint(2)
    assert [step for step, _ in measured_cosines(output_dir)] == [0, 1, 2, 3]

    # 2. Resumed (from checkpoint-2), then killed as step 5 begins: step 4 was measured after checkpoint-4.
    killed = run_script(output_dir, "--resume", "--kill-at-step", "5")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert last_complete_checkpoint(output_dir) == checkpoint(4)
    assert [step for step, _ in measured_cosines(output_dir)] == [0, 1, 2, 3, 4]
    assert not os.path.exists(os.path.join(output_dir, FINAL_PARAMETERS))

    # 3. Resumed again (from checkpoint-4) to the end.
    resumed = run_script(output_dir, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    # Oracle: the same run, uninterrupted, in this process.
    uninterrupted = build_trainer(str(tmp_path / "uninterrupted"))
    uninterrupted.train()
    save_final_parameters(uninterrupted)
    expected = load_file(os.path.join(uninterrupted.args.output_dir, FINAL_PARAMETERS))
    got = load_file(os.path.join(output_dir, FINAL_PARAMETERS))
    assert got.keys() == expected.keys() and any(name.startswith("losses.") for name in got)  # the MLM head too
    for name, value in expected.items():
        torch.testing.assert_close(got[name], value, atol=1e-6, rtol=0, msg=name)
    measured, expected_measured = measured_cosines(output_dir), measured_cosines(uninterrupted.args.output_dir)
    assert [step for step, _ in measured] == list(range(STEPS))  # one line per step
    for (step, cosine), (_, expected_cosine) in zip(measured, expected_measured):
        assert cosine == pytest.approx(expected_cosine, abs=1e-6), step


def write_checkpoint(folder: str, trainer_state: str | None) -> str:
    os.makedirs(folder)
    with open(os.path.join(folder, "config.json"), "w", encoding="utf-8") as f:
        f.write("{}")
    if trainer_state is not None:
        with open(os.path.join(folder, "trainer_state.json"), "w", encoding="utf-8") as f:
            f.write(trainer_state)
    return folder


def test_last_complete_checkpoint_passes_over_cut_short_and_mislabelled_states(tmp_path):
    complete = write_checkpoint(str(tmp_path / "checkpoint-2"), '{"global_step": 2}')
    write_checkpoint(str(tmp_path / "checkpoint-4"), '{"global_step": 4, "log_hi')  # killed while writing it
    write_checkpoint(str(tmp_path / "checkpoint-6"), '{"global_step": 5}')
    write_checkpoint(str(tmp_path / "checkpoint-8"), None)
    write_checkpoint(str(tmp_path / "checkpoint-10-old"), '{"global_step": 10}')  # not a checkpoint name
    assert last_complete_checkpoint(str(tmp_path)) == complete
    assert last_complete_checkpoint(str(tmp_path / "missing")) is None


def test_resuming_from_a_named_incomplete_checkpoint_is_refused_before_any_step(
    tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator
):
    args = make_args(tmp_path)
    half_written = write_checkpoint(os.path.join(args.output_dir, "checkpoint-3"), None)
    trainer = make_trainer(tokenizer, task_dataset, parallel_dataset, task_collator, args)
    with pytest.raises(ValueError, match=r"checkpoint-3: it was not written completely \(trainer_state\.json"):
        trainer.train(resume_from_checkpoint=half_written)
    assert trainer.state.global_step == 0
    with pytest.raises(ValueError, match=r"No valid checkpoint found in output directory"):
        trainer.train(resume_from_checkpoint=True)
