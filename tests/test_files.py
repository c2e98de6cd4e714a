"""One home for the files of a run (`hf_xalign/files.py`): every name a run writes is defined there once, and a
finished marker is written whole or not at all.

The oracles: the package's source text (no other module spells a run file's name), and the folder on disk after
a write that fails half way (no marker, so the run reads as unfinished).
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from hf_xalign import files
from hf_xalign.experiment.output_dir import EXPERIMENT_FILES
from hf_xalign.experiment.report import write_results
from hf_xalign.results import CellResult

PACKAGE = Path(files.__file__).parent
RUN_FILE_NAMES = {
    value
    for name, value in vars(files).items()
    if name.isupper() and isinstance(value, str) and not name.endswith("_FOLDER")
}


def _string_constants(path: Path) -> set[str]:
    """The string literals of a module, docstrings left out (they may name a file to explain it)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    }


def test_no_module_but_files_spells_a_run_file_name():
    spelled = {
        str(path.relative_to(PACKAGE)): sorted(_string_constants(path) & RUN_FILE_NAMES)
        for path in PACKAGE.rglob("*.py")
        if path != Path(files.__file__)
    }
    assert {module: names for module, names in spelled.items() if names} == {}


def test_a_failed_write_of_the_experiment_results_leaves_no_finished_marker(tmp_path, monkeypatch):
    results = [CellResult(name=name, task="pos", metric="accuracy", source_language="en") for name in ("a", "b")]
    write_results(results, str(tmp_path))
    assert files.is_finished(str(tmp_path), EXPERIMENT_FILES.finished_name)

    folder = tmp_path / "killed"
    calls = []

    def to_dict_failing_on_the_second_cell(self):
        calls.append(self.name)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as a run stopped while it writes the marker
        return {"name": self.name}

    monkeypatch.setattr(CellResult, "to_dict", to_dict_failing_on_the_second_cell)
    with pytest.raises(KeyboardInterrupt):
        write_results(results, str(folder))
    assert not files.is_finished(str(folder), files.RESULTS_JSONL)


def test_write_finished_replaces_a_marker_whole(tmp_path):
    path = files.write_finished(str(tmp_path), files.CELL_MARKER, '{"seconds": 1}')
    files.write_finished(str(tmp_path), files.CELL_MARKER, '{"seconds": 2}')
    assert Path(path).read_text(encoding="utf-8") == '{"seconds": 2}'
    assert os.listdir(tmp_path) == [files.CELL_MARKER]
