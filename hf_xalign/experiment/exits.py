"""How a recipe or an `xalign` command ends: 0 done, 1 a bug (its traceback), 2 a user error (one line), 130 Ctrl-C.

[`run_recipe`] is every recipe's `__main__`: it parses the config, checks the model path, applies the
output-folder rule (`output_dir.py`), runs the recipe and ends it with one of these codes.

A user error is one the user can fix from its message alone: a flag, a value, a data file, a model path, an
output folder, a Hub refusal. It prints one line, `PROGRAM: error: ...`, naming the flag, file, value or path
and what to do. An unexpected exception is a bug: it keeps its traceback. Ctrl-C prints one line saying
where training stopped, which checkpoint is complete, and the command that goes on from there.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from ..files import CONFIG_NAME, is_finished
from .config import CommandLineError, ConfigError, parse_config
from .output_dir import EXPERIMENT_FILES, OVERWRITE_FLAG, OutputDirError, RecipeOutput, prepare_output_dir

EXIT_USER_ERROR, EXIT_INTERRUPTED = 2, 130  # and 1: a bug, with its traceback (Python's own)


def user_errors() -> tuple[type[Exception], ...]:
    """The errors whose message is the whole story (FileNotFoundError: an input the user named is not there).

    A function, for `except user_errors():`, which Python evaluates only when an exception arrives: the data
    readers and the Hub helpers these errors live beside import datasets and torch, which a command that only
    lists or checks never needs.
    """
    from ..data.hub import HubSourceError
    from ..data.reading import DataFileError
    from ..extras import MissingExtraError
    from ..hub import HubError

    return (ConfigError, DataFileError, HubSourceError, OutputDirError, HubError, FileNotFoundError, MissingExtraError)


def resume_command(argv: Sequence[str]) -> str:
    """The command that reruns this process's script with `argv`, without `--overwrite` (it would start over)."""
    command = shlex.join([sys.argv[0], *(item for item in argv if item != OVERWRITE_FLAG)])
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return f"the same launch of {command}"
    return f"python {command}"


class CellsInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) while an experiment's cells ran side by side, each in a process of its own.

    Args:
        cell_folders (`list[str]`): the cells' folders, where each keeps its checkpoints for the rerun.
    """

    def __init__(self, cell_folders: list[str]) -> None:
        super().__init__()
        self.cell_folders = cell_folders


def interrupted_line(program: str, argv: Sequence[str], interruption: KeyboardInterrupt | None = None) -> str:
    """One line for Ctrl-C: the step reached, the last complete checkpoint, and the command that goes on.

    Cells side by side ([`CellsInterrupted`]) trained in their own processes: the line names where each cell
    goes on when the command reruns it (its last complete checkpoint, or its start).
    """
    from ..checkpoints import last_complete_checkpoint  # its names are looked up in transformers
    from .console import ConsoleLogCallback

    resume = resume_command(argv)
    if isinstance(interruption, CellsInterrupted):
        where = [
            f"{os.path.basename(folder)} from {checkpoint}"
            if (checkpoint := last_complete_checkpoint(folder)) is not None
            else f"{os.path.basename(folder)} from its start (no checkpoint saved)"
            for folder in interruption.cell_folders
        ]
        return f"{program}: interrupted with cells side by side; each goes on ({', '.join(where)}) with: {resume}"
    progress = ConsoleLogCallback.last_progress
    if progress is None:
        return f"{program}: interrupted before the first training step; rerun with: {resume}"
    folder, step = progress
    checkpoint = last_complete_checkpoint(folder)
    if checkpoint is None:
        return f"{program}: interrupted at step {step} in {folder}, no checkpoint saved; start again with: {resume}"
    return f"{program}: interrupted at step {step}; resume from {checkpoint} with: {resume}"


class OneLineParser(argparse.ArgumentParser):
    """`ArgumentParser` whose errors are one line (no usage block) with exit status 2, and which takes no
    abbreviated flags (`--max_step` is refused, not guessed)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _usage(program: str) -> str:
    return f"usage: {program} [CONFIG.yaml] [--option value ...] [{OVERWRITE_FLAG}]; {program} --help lists the options"


def run_recipe(
    main: Callable[..., Any],
    dataclass_types: Sequence[type | str],
    argv: Sequence[str] | None = None,
    run_files: RecipeOutput = EXPERIMENT_FILES,
) -> Any:
    """Parse the recipe's config and run `main(*arguments)` under the output-folder rule; end as this module says.

    Args:
        main (`Callable`): the recipe, called with one instance of each of `dataclass_types`.
        dataclass_types (`Sequence[type | str]`): the recipe's argument dataclasses, `AlignmentTrainingArguments`
            among them, or where each is defined (`"package.module:ClassName"`, imported only to parse).
        argv (`Sequence[str]`, *optional*): the command line without the program; defaults to `sys.argv[1:]`.
        run_files ([`RecipeOutput`], *optional*): what marks the recipe's run finished, where its results are, and
            its settings; defaults to an experiment's.

    A mistyped option (`--max_stepz 3`), an abbreviated one (`--max_step`) or a bad value (`--max_steps abc`,
    `--alignment_loss contrastiv`) prints `recipe.py: error: ...` with the closest known names and exits
    with status 2, as do a broken data file, a model path that does not exist, an output folder the rule
    refuses and a push the Hub refuses (the run's files stay as they are). A folder holding the same
    finished run is skipped (status 0, `main` is not called). Ctrl-C prints the step reached and the
    command that resumes, and exits with status 130. Anything else is a bug and keeps its traceback.
    """
    from transformers import TrainingArguments

    from ..hub import check_model_path

    program = os.path.basename(sys.argv[0])
    argv = list(sys.argv[1:] if argv is None else argv)
    overwrite = OVERWRITE_FLAG in argv
    try:
        arguments = parse_config(dataclass_types, [item for item in argv if item != OVERWRITE_FLAG])
    except CommandLineError as error:
        print(f"{program}: error: {error} ({_usage(program)})", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR) from None
    except (ValueError, FileNotFoundError) as error:  # ConfigError, and the dataclasses' own checks
        print(f"{program}: error: {error}", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR) from None
    training_args = next(instance for instance in arguments if isinstance(instance, TrainingArguments))
    output_dir = training_args.output_dir
    try:
        for instance in arguments:
            if hasattr(instance, "model_name_or_path"):
                check_model_path(instance.model_name_or_path)
        goes_on = prepare_output_dir(
            output_dir,
            run_files.settings(*arguments),
            settings_name=CONFIG_NAME,
            finished=is_finished(output_dir, run_files.finished_kind),
            results=os.path.join(output_dir, run_files.results_name),
            overwrite=overwrite,
            main_process=training_args.process_index == 0,
        )
        return main(*arguments) if goes_on else None
    except KeyboardInterrupt as interruption:
        if training_args.process_index == 0:
            print(interrupted_line(program, argv, interruption), file=sys.stderr)
        raise SystemExit(EXIT_INTERRUPTED) from None
    except user_errors() as error:  # after Ctrl-C's clause: building the tuple imports the readers
        print(f"{program}: error: {error}", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR) from None
