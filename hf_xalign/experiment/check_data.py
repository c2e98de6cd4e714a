"""`--check-data` for the recipes and the study: resolve and read every data source of a config, train nothing.

    python recipes/pos.py recipes/configs/pos.yaml --check-data
    python recipes/study.py recipes/configs/study_xlmr.yaml --check-data
    python recipes/xnli.py my_xnli.yaml --check-data --pin

One line per source (see [`~hf_xalign.data.check`]); the exit status is 0 only when every source is ok, 1 when one
is not, 2 when the config itself is wrong (as for a run). With `--pin`, the config file's unpinned `hub:` sources
are first pinned to the commit they read today, in the file itself (see [`~hf_xalign.data.pin`]), and then checked.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..data.check import check_sources, recipe_sources
from .option_names import certainly_unknown_flag, dataclass_fields

if TYPE_CHECKING:
    from .study.spec import StudyConfig

CHECK_DATA_FLAG = "--check-data"
PIN_FLAG = "--pin"


def wants_check_data(argv: Sequence[str] | None = None) -> bool:
    """Whether the command line (`sys.argv` by default) asks for `--check-data`."""
    return CHECK_DATA_FLAG in (sys.argv[1:] if argv is None else argv)


def check_recipe_data(task: str, dataclass_types: Sequence[type | str], argv: Sequence[str] | None = None) -> int:
    """Check the sources of a recipe config (`argv`: the recipe's command line, `--check-data` in it); the exit
    status. `task`: `pos`, `classification` or `align`. `dataclass_types`: the recipe's argument dataclasses, or
    where each is defined (`"package.module:ClassName"`), imported only once the command line is known to be
    worth parsing: a mistyped flag is told from their source (`option_names.py`), with no torch."""
    from .config import config_path, parse_config

    argv = list(sys.argv[1:] if argv is None else argv)
    pin = PIN_FLAG in argv
    argv = [arg for arg in argv if arg not in (CHECK_DATA_FLAG, PIN_FLAG)]
    program = os.path.basename(sys.argv[0])
    try:
        if pin and not pin_config_sources(config_path(list(argv)), program):
            return 1
        refuse_certainly_unknown_flag(dataclass_types, argv)
        script_args = parse_config(dataclass_types, argv)[0]
    except (ValueError, FileNotFoundError) as error:  # as run_recipe reports a bad config
        print(f"{program}: error: {error}", file=sys.stderr)
        return 2
    return 0 if check_sources(recipe_sources(task, vars(script_args))) else 1


def refuse_certainly_unknown_flag(dataclass_types: Sequence[type | str], argv: Sequence[str]) -> None:
    """Raise the full parser's error for a mistyped flag of `argv`, when the dataclasses' source shows for certain
    that it is one and that nothing the full parser checks first is wrong; otherwise return, and let it parse."""
    from .config import CommandLineError, ConfigError, config_path, read_config_file, unknown_flag_message

    fields = dataclass_fields(dataclass_types)
    rest = list(argv)
    path = config_path(rest)
    if fields is None or path is None:
        return
    try:
        values = read_config_file(path)
    except (ConfigError, FileNotFoundError):
        return  # the full parser names the file's problem first
    names = [field.name for field in fields]
    if not set(values) <= set(names):
        return  # the full parser names the unknown keys first
    if any(field.required and field.name not in values for field in fields):
        return  # a required option missing: argparse says so first
    flag = certainly_unknown_flag(rest, names)
    if flag is not None:
        raise CommandLineError(unknown_flag_message(flag, names))


def pin_config_sources(path: str | None, program: str) -> bool:
    """`--pin`: pin the config file's unpinned `hub:` sources (one line each); `False` when one could not be."""
    from ..data.pin import pin_config
    from .config import ConfigError

    if path is None:
        raise ConfigError(
            f"{PIN_FLAG} rewrites a config file: name one ({program} CONFIG.yaml {CHECK_DATA_FLAG} {PIN_FLAG})"
        )
    return pin_config(path)


def check_study_data(config: StudyConfig) -> int:
    """Check every task's sources and the study's parallel text (each once); the exit status."""
    from .study.checks import study_parallel_data, task_values

    all_ok = True
    for name, study_task in config.tasks.items():
        values = {key: value for key, value in task_values(study_task).items() if key != "parallel_data"}
        all_ok &= check_sources(recipe_sources(study_task.task, values), prefix=f"{name}: ")
    parallel = {"parallel_data": study_parallel_data(config)} if config.pairs else {}
    all_ok &= check_sources(recipe_sources("align", parallel), prefix="study: ")
    return 0 if all_ok else 1
