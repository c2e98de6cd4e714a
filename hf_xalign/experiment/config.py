"""Recipe configs: YAML files with command-line overrides, validated all at once, saved back resolved.

`script.py [config.yaml | --config config.yaml] [--option value ...]`: the YAML file gives the
values, flags on the command line override them (the TRL convention). [`resolved_config`] turns the
parsed arguments back into the smallest YAML that reruns the same experiment (`config.yaml`
beside the results).
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import importlib
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import yaml

from .._compat import parser_actions
from ..files import CONFIG_NAME

if TYPE_CHECKING:
    from transformers import HfArgumentParser


class ConfigError(ValueError):
    """A config or command line that cannot be run; the message says which option and what to do."""


class CommandLineError(ConfigError):
    """A command line argparse refuses (a bad value, an ambiguous or unknown flag)."""


def _recipe_parser(dataclass_types: Sequence[type]) -> HfArgumentParser:
    """`HfArgumentParser` that raises [`CommandLineError`] instead of printing its usage (about 220 lines for a
    recipe) and exiting: the recipe prints one line. Built on call: transformers is imported only to parse."""
    from transformers import HfArgumentParser

    class RecipeParser(HfArgumentParser):
        def error(self, message: str) -> NoReturn:
            raise CommandLineError(message)

    return RecipeParser(dataclass_types, allow_abbrev=False)


def config_path(argv: list[str]) -> str | None:
    """Take the config file out of `argv`: a first positional `*.yaml`, or `--config PATH`; `None` without one."""
    if argv and argv[0].endswith((".yaml", ".yml")):
        return argv.pop(0)
    if "--config" in argv:
        index = argv.index("--config")
        if index + 1 >= len(argv):
            raise ConfigError("--config needs a path to a YAML file.")
        path = argv[index + 1]
        del argv[index : index + 2]
        return path
    return None


def read_config_file(path: str | os.PathLike, what: str = "options") -> dict[str, Any]:
    """The `name: value` mapping of YAML file `path` (`{}` when it is empty): the one reader of recipe, task and
    study configs, so that each malformed file gets one line naming it.

    Raises:
        [`ConfigError`]: the file is not valid YAML (with the line and column) or not a mapping of `what`.
        `FileNotFoundError`: there is no such file.
    """
    with open(path, encoding="utf-8") as f:
        try:
            values = yaml.safe_load(f)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            raise ConfigError(f"{os.fspath(path)}{where}: not valid YAML ({problem})") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(
            f"{os.fspath(path)}: expected a mapping of {what} (name: value lines), got a YAML {type(values).__name__}"
        )
    return values


def _suggestion(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3)
    return f" (did you mean: {', '.join(close)}?)" if close else ""


def unknown_flag_message(flag: str, known: Sequence[str]) -> str:
    """The error of a command-line `flag` (`--name` or `--name=value`) that is no option, with the closest names."""
    return f"unknown option {flag!r}" + _suggestion(flag.removeprefix("--").partition("=")[0], known)


def unknown_option_errors(values: Mapping[str, Any], known: Sequence[str], source: str) -> list[str]:
    """One line per key of `values` that is not in `known`, each with the closest known names."""
    return [f"{source}: unknown option {key!r}" + _suggestion(key, known) for key in values if key not in known]


def config_errors(values: Mapping[str, Any], dataclass_types: Sequence[type], source: str) -> list[str]:
    """Every problem of a config at once: unknown keys (with the closest known names), bad values."""
    known: dict[str, type] = {}
    errors = []
    for cls in dataclass_types:
        for f in dataclasses.fields(cls):
            if f.init and known.setdefault(f.name, cls) is not cls:  # argparse would refuse the second one
                errors.append(f"option {f.name!r} is defined by both {known[f.name].__name__} and {cls.__name__}")
    errors += unknown_option_errors(values, list(known), source)
    for cls in dataclass_types:
        own = {k: v for k, v in values.items() if known.get(k) is cls}
        try:
            cls(**own)
        except (TypeError, ValueError) as error:
            errors.append(f"{source}: {cls.__name__}: {error}")
    return errors


def argument_dataclasses(entries: Sequence[type | str]) -> list[type]:
    """The classes of `entries`: a class as it is, a location (`"package.module:ClassName"`) imported."""
    classes = []
    for entry in entries:
        if isinstance(entry, str):
            module, _, name = entry.partition(":")
            entry = getattr(importlib.import_module(module), name)
        classes.append(entry)
    return classes


def parse_config(dataclass_types: Sequence[type | str], argv: Sequence[str] | None = None) -> tuple:
    """`script.py [config.yaml | --config config.yaml] [--option value ...]` into dataclass instances.

    `dataclass_types` are classes or where they are defined (see [`argument_dataclasses`]).

    Unknown keys in the file raise [`ConfigError`] naming them, with the closest known options; an unknown
    flag, a bad value or an abbreviated flag (abbreviations are refused: `--max_step` would be ambiguous as
    options grow) raise [`CommandLineError`].
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    path = config_path(argv)
    dataclass_types = argument_dataclasses(dataclass_types)
    parser = _recipe_parser(dataclass_types)
    known = [f.name for t in dataclass_types for f in dataclasses.fields(t) if f.init]
    if path is not None:
        values = read_config_file(path)
        unknown = unknown_option_errors(dict(sorted(values.items())), known, path)
        if unknown:  # every unknown key at once, before any value is checked
            raise ConfigError("\n".join(unknown))
        parser.set_defaults(**values)
        for action in parser_actions(parser):  # a value from the file satisfies a required option
            if action.dest in values:
                action.required = False
    *parsed, remaining = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    flags = [item for item in remaining if item.startswith("--")]
    if remaining:
        raise CommandLineError(unknown_flag_message(flags[0], known) if flags else f"unknown option {remaining[0]!r}")
    return tuple(parsed)


def parse_language_paths(entries: Sequence[str], option: str) -> dict[str, str]:
    """`["tr=path/a.conllu", "fr=path/b"]` into `{"tr": "path/a.conllu", "fr": "path/b"}`."""
    languages: dict[str, str] = {}
    for entry in entries:
        language, sep, path = entry.partition("=")
        if not sep or not language or not path:
            raise ValueError(f"{option}: {entry!r} is not LANG=PATH (e.g. tr=data/tr/test.conllu).")
        if language in languages:
            raise ValueError(f"{option}: language {language!r} is given twice.")
        languages[language] = path
    return languages


def _plain(value: Any) -> Any:
    """A value as YAML and JSON can hold it: enums by value, config objects as dicts."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if hasattr(value, "to_dict"):  # AcceleratorConfig and kin
        return _plain(value.to_dict())
    return value


def resolved_config(*arguments: Any) -> dict[str, Any]:
    """The options of parsed argument dataclasses that differ from what their defaults resolve to.

    Each instance is compared with a fresh instance of its class built from its required fields
    alone, so values that `__post_init__` derives the same way either way (an accelerator config,
    `report_to: none` as `[]`) are left out, and what remains reruns the same experiment. Secrets
    (every `*_token` field) are never included.
    """
    values: dict[str, Any] = {}
    for instance in arguments:
        fields = [f for f in dataclasses.fields(instance) if f.init and not f.name.endswith("_token")]
        required = {
            f.name: getattr(instance, f.name)
            for f in fields
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        reference = type(instance)(**required)
        for f in fields:
            value = _plain(getattr(instance, f.name))
            if f.name in required or value != _plain(getattr(reference, f.name)):
                values[f.name] = value
    return values


def save_config(config: Mapping[str, Any], output_dir: str, recipe: str | None = None) -> str:
    """Write `config.yaml` (from [`resolved_config`]) into `output_dir`; returns its path.

    `recipe` (e.g. `recipes/pos.py`) goes into the header comment that says how to rerun it.
    """
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, CONFIG_NAME)
    with open(path, "w", encoding="utf-8") as f:
        f.write("# Resolved by hf-xalign: every option that differs from its default. Rerun with\n")
        f.write(f"#   python {recipe or 'RECIPE.py'} {path}\n")
        yaml.safe_dump(dict(config), f, sort_keys=False, allow_unicode=True)
    return path
