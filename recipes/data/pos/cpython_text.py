# Copyright 2025 The hf-xalign Authors.
# Licensed under the Apache License, Version 2.0.
"""English prose from the standard library of the running CPython: three sources of `(source, paragraph)`.

The Language Reference as `help()` shows it (`pydoc_data/topics.py`), the IDLE chapter of the docs
(`idlelib/help.html`), and the summary paragraphs of public docstrings (read with `ast`: no module is
imported for its docstrings).
"""

from __future__ import annotations

import ast
import html.parser
import re
import sysconfig
from pathlib import Path

from spacy_tagging import normalize_space

_EMPHASIS = re.compile(r"\*(\w[^*]*)\*")  # pydoc renders *emphasis* with asterisks
_RULE_LINE = re.compile(r"[*=\-~^]{3,}")
# Folders of the standard library whose docstrings are not read: tests, demos, vendored or generated code.
_STDLIB_SKIP = re.compile(r"(^|/)(test|tests|idle_test|site-packages|lib2to3|ensurepip|turtledemo|config-[^/]*)(/|$)")


def stdlib_dir() -> Path:
    """The running interpreter's standard library folder."""
    return Path(sysconfig.get_paths()["stdlib"])


def pydoc_topics_path() -> Path:
    import pydoc_data.topics

    return Path(pydoc_data.topics.__file__).resolve()


def pydoc_paragraphs() -> list[tuple[str, str]]:
    """`(source, paragraph)` from CPython's `pydoc_data/topics.py` (the Language Reference as plain text).

    Paragraphs are runs of unindented lines; indented blocks (code, grammar rules, tables) and headings (followed
    by a rule line of `*`, `=` or `-`) are left out.
    """
    from pydoc_data.topics import topics

    paragraphs = []
    for topic in sorted(topics):
        current: list[str] = []
        for line in topics[topic].split("\n") + [""]:
            if line.strip() and not line.startswith(" ") and not _RULE_LINE.fullmatch(line.strip()):
                current.append(line.strip())
                continue
            if current and not _RULE_LINE.fullmatch(line.strip()):
                paragraphs.append((f"Lib/pydoc_data/topics.py:{topic}", _EMPHASIS.sub(r"\1", " ".join(current))))
            current = []
    return paragraphs


class _HelpHTMLParagraphs(html.parser.HTMLParser):
    """Text of the `<p>` elements in the main part of a Sphinx page, outside `<pre>`."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[str] = []
        self._in_main = False
        self._in_pre = 0
        self._current: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "div" and dict(attrs).get("role") == "main":
            self._in_main = True
        elif tag == "pre":
            self._in_pre += 1
        elif tag == "p" and self._in_main:
            self._current = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre":
            self._in_pre -= 1
        elif tag == "p" and self._current is not None:
            self.paragraphs.append(normalize_space("".join(self._current)))
            self._current = None

    def handle_data(self, data: str) -> None:
        if self._current is not None and not self._in_pre:
            self._current.append(data)


def idle_help_paragraphs() -> list[tuple[str, str]]:
    """`(source, paragraph)` from `idlelib/help.html`, the IDLE chapter of the Python docs that ships with IDLE."""
    path = stdlib_dir() / "idlelib" / "help.html"
    if not path.is_file():
        raise SystemExit(f"{path} not found: use a Python build that ships idlelib (python.org, pyenv)")
    parser = _HelpHTMLParagraphs()
    parser.feed(path.read_text(encoding="utf-8"))
    return [("Lib/idlelib/help.html", paragraph) for paragraph in parser.paragraphs if paragraph]


def docstring_paragraphs() -> list[tuple[str, str]]:
    """`(source, paragraph)`: the summary paragraph of each public docstring in the standard library's `.py` files.

    Public: modules, classes and functions whose names do not start with `_` (`__init__.py` excepted); read with
    `ast`, nothing is imported. A summary with an indented line (a code example or a list) is left out.
    """
    lib = stdlib_dir()
    paragraphs = []
    for path in sorted(lib.rglob("*.py")):
        relative = path.relative_to(lib).as_posix()
        if _STDLIB_SKIP.search(relative) or any(
            part.startswith("_") and part != "__init__.py" for part in path.relative_to(lib).parts
        ):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if not isinstance(node, ast.Module) and node.name.startswith("_"):
                continue
            docstring = ast.get_docstring(node, clean=True)
            if not docstring:
                continue
            summary = docstring.split("\n\n")[0]
            if any(line.startswith((" ", "\t")) for line in summary.split("\n")):
                continue
            name = "" if isinstance(node, ast.Module) else f":{node.name}"
            paragraphs.append((f"Lib/{relative}{name}", normalize_space(summary)))
    return paragraphs
