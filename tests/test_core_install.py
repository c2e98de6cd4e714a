"""`pip install hf-xalign` without the experiments extra: the core imports and works, a harness module names the extra.

Each test runs Python in a subprocess whose import system refuses the extra's packages (conllu, evaluate, matplotlib,
scipy), as a venv without them does; in `make test-core`'s venv they are absent anyway. The oracle is the
subprocess's exit status, its output, and its `sys.modules`.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hf_xalign.extras import EXPERIMENTS_MODULES

ROOT = Path(__file__).resolve().parents[1]
INSTALL_LINE = 'pip install "hf-xalign[experiments]"'

# A sitecustomize that hides the named top-level packages from the path finder, as if they were not installed:
# `import` raises ModuleNotFoundError and `importlib.util.find_spec` (transformers' probe) answers None.
WITHOUT_PACKAGES = """
import os, sys
from importlib.machinery import PathFinder

BLOCKED = set(os.environ["BLOCKED_PACKAGES"].split(","))

class PathFinderWithout(PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            return None
        return super().find_spec(name, path, target)

sys.meta_path[:] = [PathFinderWithout if finder is PathFinder else finder for finder in sys.meta_path]
"""


def run_without(tmp_path: Path, blocked: tuple[str, ...], argv: list[str]) -> subprocess.CompletedProcess:
    """Run `python argv...` from the project's root with the `blocked` packages not importable."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(WITHOUT_PACKAGES)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
        "BLOCKED_PACKAGES": ",".join(blocked),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
    }
    return subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_the_core_imports_and_reads_parallel_text_without_the_extra(tmp_path):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("the cat\tlo gatu\na dog\tun perru\n", encoding="utf-8")
    script = textwrap.dedent(
        f"""
        import sys
        import hf_xalign
        from hf_xalign import AlignmentTrainer, AlignmentTrainingArguments, get_loss, load_aligned, push_aligned
        from hf_xalign.analysis import measure_all
        from hf_xalign.data import AlignmentStream, ParallelCollator, load_parallel
        from hf_xalign.model_card import build_model_card

        pairs = load_parallel({str(pairs)!r})
        print(list(pairs["src"]), list(pairs["tgt"]), type(get_loss("contrastive")).__name__)
        print(sorted(name for name in {EXPERIMENTS_MODULES!r} if name in sys.modules))
        """
    )
    completed = run_without(tmp_path, EXPERIMENTS_MODULES, ["-c", script])
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.splitlines()[-2:] == ["['the cat', 'a dog'] ['lo gatu', 'un perru'] ContrastiveLoss", "[]"]


def imported_without(tmp_path: Path, module: str, blocked: tuple[str, ...]) -> tuple[str, str]:
    """The `name` and the message of the ImportError that importing `module` raises without the `blocked` packages."""
    script = f"try:\n    import {module}\nexcept ImportError as error:\n    print(error.name)\n    print(error)\n"
    completed = run_without(tmp_path, blocked, ["-c", script])
    assert completed.returncode == 0, completed.stderr[-3000:]
    name, message = completed.stdout.splitlines()[-2:]
    return name, message


# The modules that import an extra's package (the packages `hf_xalign.experiment` and `hf_xalign.analysis.report`
# export lazily, so importing the package alone needs nothing).
@pytest.mark.parametrize(
    "module",
    ["hf_xalign.experiment.runner", "hf_xalign.tasks", "hf_xalign.data.conllu", "hf_xalign.analysis.report.build"],
)
def test_a_harness_module_without_the_extra_raises_an_import_error_naming_it(tmp_path, module):
    name, message = imported_without(tmp_path, module, EXPERIMENTS_MODULES)
    assert name in EXPERIMENTS_MODULES
    assert message.endswith(f"needs {name}, which the experiments extra installs: {INSTALL_LINE}")


@pytest.mark.parametrize(
    ("module", "missing"),
    [
        ("hf_xalign.data.conllu", "conllu"),
        ("hf_xalign.experiment.task", "evaluate"),
        ("hf_xalign.analysis.plots", "matplotlib"),
        ("hf_xalign.analysis.bootstrap", "scipy"),
        ("hf_xalign.analysis.report.stats", "scipy"),
    ],
)
def test_each_guarded_import_names_its_own_package(tmp_path, module, missing):
    absent = [name for name in EXPERIMENTS_MODULES if name != missing and importlib.util.find_spec(name) is None]
    if absent:
        pytest.skip(f"{module} reaches its own guard only where the extra's other packages are installed")
    name, message = imported_without(tmp_path, module, (missing,))
    assert name == missing
    assert f"needs {missing}, which the experiments extra installs: {INSTALL_LINE}" in message


@pytest.mark.parametrize(
    ("recipe", "config"),
    [
        ("pos.py", "pos_demo.yaml"),
        ("xnli.py", "pos_demo.yaml"),
        ("align.py", "pos_demo.yaml"),
        ("study.py", "study_demo.yaml"),
    ],
)
def test_a_recipe_without_the_extra_says_so_in_one_line_and_exits_2(tmp_path, recipe, config):
    completed = run_without(tmp_path, EXPERIMENTS_MODULES, [f"recipes/{recipe}", f"recipes/configs/{config}"])
    assert completed.returncode == 2, completed.stderr[-3000:]
    assert completed.stderr.count("\n") == 1
    assert completed.stderr.startswith(f"{recipe}: error: ")
    assert completed.stderr.rstrip().endswith(f"which the experiments extra installs: {INSTALL_LINE}")


@pytest.mark.skipif(
    all(importlib.util.find_spec(name) is None for name in EXPERIMENTS_MODULES),
    reason="this venv has no package of the experiments extra, so --core has nothing to refuse",
)
def test_the_core_run_refuses_a_venv_that_has_the_extra():
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--core", "--collect-only", "tests/test_compat.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == pytest.ExitCode.USAGE_ERROR
    assert "--core runs in a venv without the experiments extra (make test-core)" in completed.stderr
