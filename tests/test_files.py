"""One home for the files of a run (`hf_xalign/files.py`): every name a run writes is defined there once, and a
finished marker is written whole or not at all.

The oracles: the package's source text (no other module spells a run file's name), and the folder on disk after
a write that fails half way (no marker, so the run reads as unfinished).
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest

from hf_xalign import files

PACKAGE = Path(files.__file__).parent
RUN_FILE_NAMES = {
    value
    for name, value in vars(files).items()
    if name.isupper() and isinstance(value, str) and not name.endswith(("_FOLDER", "_KIND"))
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


def test_a_marker_stopped_while_it_is_written_leaves_the_folder_unfinished(tmp_path, monkeypatch):
    folder = str(tmp_path)
    files.write_finished(folder, files.ALIGNMENT_KIND, {"steps": 1})
    assert files.read_finished(folder, files.ALIGNMENT_KIND) == {"kind": "alignment", "steps": 1}
    os.remove(os.path.join(folder, files.FINISHED_NAME))

    def dump_stopped_half_way(value, f, **kwargs):
        f.write('{"kind": "align')
        raise KeyboardInterrupt  # as a run stopped while it writes the marker

    monkeypatch.setattr(files.json, "dump", dump_stopped_half_way)
    with pytest.raises(KeyboardInterrupt):
        files.write_finished(folder, files.ALIGNMENT_KIND, {"steps": 2})
    assert not files.is_finished(folder, files.ALIGNMENT_KIND)
    assert not os.path.exists(os.path.join(folder, files.FINISHED_NAME))


def test_write_finished_replaces_a_marker_whole_and_the_kind_decides(tmp_path):
    folder = str(tmp_path)
    files.write_finished(folder, files.EXPERIMENT_KIND, {"cells": ["a"]})
    # A study's cell folder: the experiment finished, the study has not recorded the cell yet.
    assert files.is_finished(folder, files.EXPERIMENT_KIND) and not files.is_finished(folder, files.STUDY_CELL_KIND)
    path = files.write_finished(folder, files.STUDY_CELL_KIND, {"seconds": 2})
    assert json.loads(Path(path).read_text(encoding="utf-8")) == {"kind": "study_cell", "seconds": 2}
    assert files.is_finished(folder, files.STUDY_CELL_KIND) and not files.is_finished(folder, files.EXPERIMENT_KIND)
    assert os.listdir(tmp_path) == [files.FINISHED_NAME]
    assert files.read_finished(str(tmp_path / "missing"), files.STUDY_CELL_KIND) is None
