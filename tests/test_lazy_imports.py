"""Cheap to start: `import hf_xalign`, `xalign --help`, every command's `--help`, `study.py --list-cells` and a
mistyped flag of a recipe's `--check-data` import no heavy package, and still do their job (the help printed, the
cells listed, the error line, the exit status). Each runs in a fresh interpreter that reports, at exit, which of the
heavy packages it imported."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import subprocess
import sys
import types

import pytest
import yaml

import hf_xalign
from hf_xalign.experiment.config import CommandLineError, parse_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAVY = ("torch", "transformers", "matplotlib", "scipy")
COMMANDS = ("losses", "inspect", "push", "download", "analyze", "report", "hub-server")
# Runs `python -m MODULE ARGS...` or `python SCRIPT ARGS...` in this interpreter, then writes which of the heavy
# packages are imported into the file named by $IMPORTED_JSON (at exit: after argparse's own exit too).
PROBE = """
import atexit, json, os, runpy, sys
heavy = json.loads(os.environ["HEAVY_PACKAGES"])
def imported():
    with open(os.environ["IMPORTED_JSON"], "w") as f:
        json.dump([name for name in heavy if name in sys.modules], f)
atexit.register(imported)
target, sys.argv = sys.argv[1], sys.argv[2:]
if target == "-m":
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
elif target == "-c":
    exec(sys.argv[0])
else:
    sys.argv.insert(0, target)
    runpy.run_path(target, run_name="__main__")
"""


def probe(tmp_path, *command: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run `command` (`-m module ...`, `-c code` or `script ...`) in a fresh interpreter; its result and the heavy
    packages it imported."""
    record = tmp_path / "imported.json"
    env = {**os.environ, "PYTHONPATH": ROOT, "HEAVY_PACKAGES": json.dumps(HEAVY), "IMPORTED_JSON": str(record)}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    return result, json.loads(record.read_text())


def test_import_hf_xalign_imports_nothing_heavy(tmp_path):
    result, imported = probe(tmp_path, "-c", "import hf_xalign; print(hf_xalign.__version__)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == hf_xalign.version.__version__
    assert imported == []


def test_xalign_help_lists_every_command_and_imports_nothing_heavy(tmp_path):
    result, imported = probe(tmp_path, "-m", "hf_xalign.cli", "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: xalign")
    assert all(command in result.stdout for command in COMMANDS)
    assert imported == []


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_help_imports_nothing_heavy(command, tmp_path):
    result, imported = probe(tmp_path, "-m", "hf_xalign.cli", command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: xalign {command}")
    assert imported == []


def test_the_commands_tested_here_are_all_the_commands():
    from hf_xalign.cli import COMMANDS as added

    subparsers = argparse.ArgumentParser().add_subparsers()
    for add_command in added:
        add_command(subparsers)
    assert tuple(subparsers.choices) == COMMANDS


def test_study_list_cells_reads_only_the_yaml(tmp_path):
    config = os.path.join(ROOT, "recipes", "configs", "study_demo.yaml")
    result, imported = probe(tmp_path, os.path.join(ROOT, "recipes", "study.py"), config, "--list-cells")
    assert result.returncode == 0, result.stderr
    cells = result.stdout.split()
    # The oracle: the grid as the YAML states it, crossed by hand (each task with the base variant, then each
    # pair with each objective and mode), and the cell id's first part is its task.
    study = yaml.safe_load(open(config, encoding="utf-8"))
    variants = 1 + len(study["pairs"]) * len(study["objectives"]) * len(study.get("modes", ["sequential"]))
    assert len(cells) == len(study["tasks"]) * len(study["encoders"]) * variants * len(study.get("seeds", [42]))
    assert {cell.split("__")[0] for cell in cells} == set(study["tasks"])
    assert imported == []


RECIPES = {  # recipe: its config and its argument dataclasses
    "pos.py": ("pos_demo.yaml", ("hf_xalign.tasks.pos:PosArguments", "hf_xalign.args:AlignmentTrainingArguments")),
    "xnli.py": (
        "xnli_demo.yaml",
        ("hf_xalign.tasks.classification:ClassificationArguments", "hf_xalign.args:AlignmentTrainingArguments"),
    ),
    "align.py": (
        "align_demo.yaml",
        ("hf_xalign.experiment.align:AlignArguments", "hf_xalign.args:AlignmentTrainingArguments"),
    ),
}


@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize("flag", ["--max_stepz", "--max_stepz=3"])
def test_a_bad_flag_of_check_data_is_the_full_parsers_line_without_torch(recipe, flag, tmp_path):
    script = os.path.join(ROOT, "recipes", recipe)
    config = os.path.join(ROOT, "recipes", "configs", RECIPES[recipe][0])
    result, imported = probe(tmp_path, script, config, "--check-data", flag, "3")
    assert result.returncode == 2, result.stderr
    # The oracle: the full parser (HfArgumentParser over the imported dataclasses) on the same command line.
    with pytest.raises(CommandLineError) as full:
        parse_config(RECIPES[recipe][1], [config, flag, "3"])
    assert result.stderr.strip().splitlines() == [f"{recipe}: error: {full.value}"]
    assert str(full.value) == f"unknown option {flag!r} (did you mean: max_steps, save_steps, eval_steps?)"
    assert imported == []


def test_a_bad_flag_beside_a_bad_value_is_left_to_the_full_parser(tmp_path):
    # A known flag's value could be wrong, and argparse reports that first: the light path must not decide.
    script = os.path.join(ROOT, "recipes", "pos.py")
    config = os.path.join(ROOT, "recipes", "configs", "pos_demo.yaml")
    argv = [config, "--max_steps", "abc", "--max_stepz", "3"]
    result, imported = probe(tmp_path, script, "--check-data", *argv)
    with pytest.raises(CommandLineError) as full:
        parse_config(RECIPES["pos.py"][1], argv)
    assert "invalid int value: 'abc'" in str(full.value)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"pos.py: error: {full.value}"]
    assert "torch" in imported


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_option_of_the_real_parser_is_known_to_the_light_path(recipe):
    # The light path reads the fields from source; a flag it calls unknown must be no option of the real parser,
    # for the installed transformers: every option string the real parser accepts is one it leaves undecided.
    from hf_xalign._compat import parser_actions
    from hf_xalign.experiment.config import _recipe_parser, argument_dataclasses
    from hf_xalign.experiment.option_names import certainly_unknown_flag, dataclass_fields

    locations = RECIPES[recipe][1]
    classes = argument_dataclasses(locations)
    fields = dataclass_fields(locations)
    assert fields is not None
    real = {f.name: f for cls in classes for f in dataclasses.fields(cls) if f.init}
    assert sorted(field.name for field in fields) == sorted(real)  # the same names: the same "did you mean"
    required = {name for name, f in real.items() if f.default is f.default_factory is dataclasses.MISSING}
    assert {field.name for field in fields if field.required} == required
    names = [field.name for field in fields]
    options = [option for action in parser_actions(_recipe_parser(classes)) for option in action.option_strings]
    assert len(options) > 2 * len(names)
    for option in options:
        assert certainly_unknown_flag([option], names) is None, option
        assert certainly_unknown_flag([f"{option}=1"], names) is None, option


# Where each public name is defined: the oracle is the defining submodule's own object.
PUBLIC_HOMES = {
    "AlignmentConfig": "hf_xalign.args",
    "AlignmentTrainingArguments": "hf_xalign.args",
    "AlignmentLoss": "hf_xalign.losses.base",
    "get_loss": "hf_xalign.losses.base",
    "register_loss": "hf_xalign.losses.base",
    "AlignmentTrainer": "hf_xalign.trainer",
    "load_aligned": "hf_xalign.hub",
    "push_aligned": "hf_xalign.hub",
    "__version__": "hf_xalign.version",
}


def test_every_public_name_is_the_object_of_its_submodule():
    assert sorted(hf_xalign.__all__) == sorted(PUBLIC_HOMES)
    for name, module in PUBLIC_HOMES.items():
        assert getattr(hf_xalign, name) is getattr(importlib.import_module(module), name), name
    assert set(hf_xalign.__all__) <= set(dir(hf_xalign))


@pytest.mark.parametrize("package", ["hf_xalign.analysis", "hf_xalign.data", "hf_xalign.experiment"])
def test_every_name_of_a_subpackage_resolves(package):
    module = importlib.import_module(package)
    for name in module.__all__:
        value = getattr(module, name)
        assert not isinstance(value, types.ModuleType), name  # `analysis.analyze` is the function, not its module
        home = getattr(value, "__module__", None)
        if home is not None and home.startswith("hf_xalign"):  # a class or function: its own module has it
            assert getattr(importlib.import_module(home), value.__name__) is value, name


def test_an_unknown_name_raises_attribute_error_with_the_usual_message():
    with pytest.raises(AttributeError, match=r"^module 'hf_xalign' has no attribute 'AlignmentTrainr'$"):
        hf_xalign.AlignmentTrainr  # noqa: B018
    with pytest.raises(ImportError, match="cannot import name 'AlignmentTrainr' from 'hf_xalign'"):
        from hf_xalign import AlignmentTrainr  # noqa: F401


def test_a_function_named_as_its_module_wins_whichever_imports_first(tmp_path):
    # `hf_xalign.analysis.analyze` is both a submodule and the function it defines; the package exports the
    # function, also when the submodule was imported directly first (which binds the module to that name).
    code = (
        "import hf_xalign.analysis.measures, hf_xalign.analysis.analyze as first\n"
        "from hf_xalign.analysis import COLUMNS, analyze\n"
        "print(callable(first), callable(analyze), analyze.__module__)"
    )
    result, _ = probe(tmp_path, "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "hf_xalign.analysis.analyze"]
