"""One run of the crash-resume tests (tests/test_crash_resume.py), in a process of its own so that it can be SIGKILLed.

    python tests/_crash_run.py OUTPUT_DIR [--kill-at-step K | --kill-saving K] [--resume]

Trains the tiny tagger of conftest.py for `STEPS` steps with a contrastive + MLM alignment (the MLM
head is a loss-owned parameter), a checkpoint every `SAVE_STEPS` steps and the gradient measurement
on every step. `--kill-at-step K` kills the process with SIGKILL as optimizer step K begins;
`--kill-saving K` kills it while it writes `checkpoint-K`, after the model and before the optimizer
and trainer state. `--resume` resumes with `resume_from_checkpoint=True`. A run that finishes writes
its parameters to `OUTPUT_DIR/final_parameters.safetensors`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
import datasets  # noqa: E402
import transformers  # noqa: E402
from conftest import make_model, synthetic_sentences, tag_dataset  # noqa: E402
from distributed_worker import build_parallel, build_tokenizer  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from test_trainer import _params, make_args  # noqa: E402
from transformers import DataCollatorForTokenClassification, TrainerCallback  # noqa: E402

from hf_xalign import AlignmentTrainer  # noqa: E402

STEPS, SAVE_STEPS = 6, 2
FINAL_PARAMETERS = "final_parameters.safetensors"


class KillAtStep(TrainerCallback):
    def __init__(self, step: int | None) -> None:
        self.step = step

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class KilledWhileSaving(AlignmentTrainer):
    """Dies while writing `checkpoint-<kill_saving>`: the model is written, the optimizer and trainer state are not."""

    kill_saving: int | None = None

    def _save_optimizer_and_scheduler(self, output_dir):
        if self.state.global_step == self.kill_saving:
            os.kill(os.getpid(), signal.SIGKILL)
        super()._save_optimizer_and_scheduler(output_dir)


def build_trainer(output_dir: str, kill_at_step: int | None = None, kill_saving: int | None = None):
    """The trainer of the run; the same in the test's own process (the uninterrupted run) and in a subprocess."""
    tokenizer = build_tokenizer()
    args = make_args(
        Path(output_dir),
        output_dir=output_dir,
        max_steps=STEPS,
        save_strategy="steps",
        save_steps=SAVE_STEPS,
        alignment_loss=["contrastive", "mlm"],
    )
    trainer = KilledWhileSaving(
        model=make_model(tokenizer),
        args=args,
        train_dataset=tag_dataset(tokenizer, synthetic_sentences(32, seed=2)),
        alignment_dataset=build_parallel(),
        processing_class=tokenizer,
        data_collator=DataCollatorForTokenClassification(tokenizer),
        callbacks=[KillAtStep(kill_at_step)],
    )
    trainer.kill_saving = kill_saving
    return trainer


def save_final_parameters(trainer: AlignmentTrainer) -> None:
    parameters = {name: value.contiguous() for name, value in _params(trainer).items()}
    save_file(parameters, os.path.join(trainer.args.output_dir, FINAL_PARAMETERS))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("output_dir")
    parser.add_argument("--kill-at-step", type=int)
    parser.add_argument("--kill-saving", type=int)
    parser.add_argument("--resume", action="store_true")
    options = parser.parse_args()
    transformers.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    trainer = build_trainer(options.output_dir, options.kill_at_step, options.kill_saving)
    trainer.train(resume_from_checkpoint=True if options.resume else None)
    save_final_parameters(trainer)


if __name__ == "__main__":
    main()
