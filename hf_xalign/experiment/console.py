"""Console output of a recipe: one short line per log instead of the Trainer's dump of every log dict."""

from __future__ import annotations

import os
from collections.abc import Sequence

import datasets
import transformers
from transformers import PrinterCallback, ProgressCallback, Trainer, TrainerCallback, TrainingArguments

from ..results import CellResult
from .workers import OUTPUT_FILE_VARIABLE


class ConsoleLogCallback(TrainerCallback):
    """One short line per log on the console: the losses, λ and the global gradient cosine.

    The full logs (per layer, per loss, per evaluation language) still reach `report_to` targets
    and `state.log_history`; the Trainer's own printer would dump all of them as one long dict.
    """

    KEYS = ("loss", "task_loss", "align_loss", "align_lambda", "conflict/cosine", "conflict/norm_ratio")
    # `(output_dir, global_step)` of the last step this process finished, in any trainer: what a recipe's Ctrl-C
    # line reports (hf_xalign.experiment.exits), without holding the trainer that was running.
    last_progress: tuple[str, int] | None = None

    def on_step_end(self, args, state, control, **kwargs):
        ConsoleLogCallback.last_progress = (args.output_dir, state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs and "loss" in logs:
            shown = "  ".join(f"{key}={logs[key]:.4g}" for key in self.KEYS if key in logs)
            print(f"[{args.output_dir}] step {state.global_step}/{state.max_steps}  {shown}", flush=True)


class _ProgressBarOnly(ProgressCallback):
    """The Trainer's progress bar without its dump of every log dict."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        pass


def process_log_level(training_args: TrainingArguments) -> int:
    """This process's transformers log level: `get_process_log_level()`, as HF's examples set it, except that a
    replica is never louder than the main process.

    transformers gives replicas `log_level_replica` (default `"warning"`) whatever `log_level` says, so with
    `log_level: error` under `accelerate launch` the other processes still printed warnings, the model's load
    report (its missing and unexpected keys) among them. A quieter `log_level` now quiets them too; a
    `log_level_replica` quieter than `log_level` still applies.
    """
    level = training_args.get_process_log_level()
    main_level = transformers.utils.logging.get_log_levels_dict().get(training_args.log_level)  # None: passive
    if not training_args.should_log and main_level is not None:
        level = max(level, main_level)  # higher is quieter
    return level


def quiet_console(training_args: TrainingArguments) -> None:
    """The console as `training_args` asks: its log level ([`process_log_level`]), and with `disable_tqdm` no
    bars at all (not the Trainer's, not tokenizing, loading or saving a model).

    A cell run by a worker, whose output goes to a file (`OUTPUT_FILE_VARIABLE` of `hf_xalign.experiment.workers`),
    gets `disable_tqdm` set here: a bar's redraws would fill the file. It changes nothing else of the run.
    """
    if os.environ.get(OUTPUT_FILE_VARIABLE):
        training_args.disable_tqdm = True
    transformers.utils.logging.set_verbosity(process_log_level(training_args))
    if training_args.disable_tqdm:
        datasets.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()


def use_console_log(trainer: Trainer) -> None:
    """Swap the Trainer's log printing (the long dicts) for [`ConsoleLogCallback`]."""
    trainer.remove_callback(PrinterCallback)
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(_ProgressBarOnly())
    trainer.add_callback(ConsoleLogCallback())


def time_split(
    setup_seconds: float,
    results: Sequence[CellResult],
    analysis_seconds: float | None = None,
    wall_seconds: float | None = None,
) -> str:
    """Where an experiment's wall time went, as one line: setup, each cell's training and scoring, analysis,
    their total, and (`wall_seconds`) the wall time they took, less than the total when cells ran side by side."""
    parts = [f"setup (data, tokenizer, metric) {setup_seconds:.0f} s"]
    parts += [
        f"{result.name}: train {result.seconds['train']:.0f} s, evaluate {result.seconds['evaluate']:.0f} s"
        for result in results
    ]
    if analysis_seconds is not None:
        parts.append(f"analysis and report {analysis_seconds:.0f} s")
    total = setup_seconds + sum(sum(result.seconds.values()) for result in results) + (analysis_seconds or 0.0)
    wall = "" if wall_seconds is None else f" | wall time {wall_seconds:.0f} s"
    return "time: " + " | ".join(parts) + f" | total {total:.0f} s" + wall
