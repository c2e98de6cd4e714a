"""Console output of a recipe: one short line per log instead of the Trainer's dump of every log dict."""

from __future__ import annotations

from transformers import PrinterCallback, ProgressCallback, Trainer, TrainerCallback


class ConsoleLogCallback(TrainerCallback):
    """One short line per log on the console: the losses, λ and the global gradient cosine.

    The full logs (per layer, per loss, per evaluation language) still reach `report_to` targets
    and `state.log_history`; the Trainer's own printer would dump all of them as one long dict.
    """

    KEYS = ("loss", "task_loss", "align_loss", "align_lambda", "conflict/cosine", "conflict/norm_ratio")

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs and "loss" in logs:
            shown = "  ".join(f"{key}={logs[key]:.4g}" for key in self.KEYS if key in logs)
            print(f"[{args.output_dir}] step {state.global_step}/{state.max_steps}  {shown}", flush=True)


class _ProgressBarOnly(ProgressCallback):
    """The Trainer's progress bar without its dump of every log dict."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        pass


def use_console_log(trainer: Trainer) -> None:
    """Swap the Trainer's log printing (the long dicts) for [`ConsoleLogCallback`]."""
    trainer.remove_callback(PrinterCallback)
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(_ProgressBarOnly())
    trainer.add_callback(ConsoleLogCallback())
