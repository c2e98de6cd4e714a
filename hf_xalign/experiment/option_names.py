"""A recipe's option names read from the source of its argument dataclasses, without importing them.

`--check-data` with a mistyped flag should answer at once, but the recipe's options include those of
`TrainingArguments`, and `transformers/training_args.py` imports torch. [`dataclass_fields`] reads a dataclass's
fields (its bases' included) with `ast` from the files that define them; anything it does not fully understand
(a field added in an `if`, `aliases` in a field's metadata, a base it cannot find, a field helper other than
`field`) makes it answer `None`, and the caller falls back to the full parser. [`certainly_unknown_flag`] then
names a flag only when no option string `HfArgumentParser` builds for these fields can be it, so a flag the full
parser accepts is never called unknown (`tests/test_lazy_imports.py` checks every option string of the real
parser, for the installed transformers).
"""

from __future__ import annotations

import ast
import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass

from .._compat import TRANSFORMERS_DEFINING_MODULES


@dataclass(frozen=True)
class SourceField:
    """One dataclass field as its source states it: its name and whether the command line must give it."""

    name: str
    required: bool


class _Unreadable(Exception):
    """The source says something this reader does not model: the caller falls back to the full parser."""


def _module_file(module: str) -> str:
    """The file that defines `module`, found without importing it or its parent packages."""
    top, *inner = module.split(".")
    spec = importlib.util.find_spec(top)  # a top-level name: nothing is imported
    if spec is None or not spec.submodule_search_locations:
        raise _Unreadable(module)
    base = os.path.join(spec.submodule_search_locations[0], *inner)
    for path in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(path):
            return path
    raise _Unreadable(module)


def _parse(module: str) -> ast.Module:
    with open(_module_file(module), encoding="utf-8") as f:
        return ast.parse(f.read())


def _is_dataclass_decorator(node: ast.expr) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    return (isinstance(target, ast.Name) and target.id == "dataclass") or (
        isinstance(target, ast.Attribute) and target.attr == "dataclass"
    )


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _field(statement: ast.AnnAssign) -> SourceField | None:
    """The field an annotated class attribute declares; `None` for a `ClassVar`."""
    if not isinstance(statement.target, ast.Name):
        raise _Unreadable("an annotated attribute that is not a name")
    annotation = ast.unparse(statement.annotation)
    if "ClassVar" in annotation:
        return None
    if "InitVar" in annotation or "KW_ONLY" in annotation:
        raise _Unreadable(annotation)
    value = statement.value
    if not isinstance(value, ast.Call):  # no default, or a plain one
        return SourceField(statement.target.id, required=value is None)
    if not (isinstance(value.func, ast.Name) and value.func.id == "field"):
        raise _Unreadable(ast.unparse(value.func))  # HfArg and kin may add aliases
    init, metadata = _keyword(value, "init"), _keyword(value, "metadata")
    if init is not None and not isinstance(init, ast.Constant):
        raise _Unreadable("init=")
    if metadata is not None and not (
        isinstance(metadata, ast.Dict) and all(isinstance(key, ast.Constant) for key in metadata.keys)
    ):
        raise _Unreadable("metadata=")
    if metadata is not None and "aliases" in [key.value for key in metadata.keys]:
        raise _Unreadable("aliases")
    if init is not None and init.value is False:
        return None  # not an argument of __init__, so no option
    required = _keyword(value, "default") is None and _keyword(value, "default_factory") is None
    return SourceField(statement.target.id, required)


def _imported_from(tree: ast.Module, module: str, name: str) -> str:
    """The module `name` is imported from in `tree` (the source of `module`)."""
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and any((alias.asname or alias.name) == name for alias in node.names):
            if any(alias.asname == name and alias.name != name for alias in node.names):
                raise _Unreadable(f"{name} is another name's alias")
            package = module.split(".")
            if node.level:
                package = package[: len(package) - node.level]  # `module` is a file, not a package
            home = ".".join([*package, node.module] if node.module else package) if node.level else node.module
            return TRANSFORMERS_DEFINING_MODULES.get((home, name), home)
    raise _Unreadable(f"where {name} comes from in {module}")


def _class_fields(module: str, class_name: str) -> dict[str, SourceField]:
    tree = _parse(module)
    node = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name), None)
    if node is None:
        return _class_fields(_imported_from(tree, module, class_name), class_name)
    if not any(_is_dataclass_decorator(d) for d in node.decorator_list):
        raise _Unreadable(f"{class_name} is no dataclass")
    fields: dict[str, SourceField] = {}
    for base in reversed(node.bases):  # as dataclasses walks the MRO: the last base's fields first
        if not isinstance(base, ast.Name):
            raise _Unreadable(ast.unparse(base))
        fields.update(_class_fields(module, base.id))
    for statement in node.body:
        if isinstance(statement, ast.AnnAssign):
            declared = _field(statement)
            if declared is not None:
                fields[declared.name] = declared
            elif isinstance(statement.target, ast.Name):
                fields.pop(statement.target.id, None)
        elif not isinstance(statement, (ast.FunctionDef, ast.Assign, ast.Expr, ast.Pass)) and any(
            isinstance(inner, ast.AnnAssign) for inner in ast.walk(statement)
        ):
            raise _Unreadable(f"a field declared inside a block of {class_name}")
    return fields


def dataclass_fields(dataclass_types: Sequence[type | str]) -> list[SourceField] | None:
    """The `__init__` fields of `dataclass_types` (classes, or where each is defined: `"package.module:ClassName"`),
    read from their source.

    Returns:
        `list[SourceField]` or `None`: `None` when a source cannot be found or says something this reader does
        not model (the caller then imports the classes and asks them).
    """
    fields: dict[str, SourceField] = {}
    try:
        for entry in dataclass_types:
            location = entry if isinstance(entry, str) else f"{entry.__module__}:{entry.__qualname__}"
            module, _, class_name = location.partition(":")
            fields.update(_class_fields(module, class_name))
    except (_Unreadable, OSError, SyntaxError, ValueError):
        return None
    return list(fields.values())


def certainly_unknown_flag(argv: Sequence[str], names: Sequence[str]) -> str | None:
    """The first flag of `argv` when every `--flag` in it is one no option of fields `names` can be; else `None`.

    `HfArgumentParser` gives field `a_b` the options `--a_b`, `--a-b` and, for a boolean, `--no_a_b`, `--no-a-b`
    (and `--help`); a flag that is none of these for any field, in either spelling, is certainly unknown. A known
    flag in `argv` gives `None` too: its value might be wrong, and the full parser reports that first.
    """
    flags = [item for item in argv if item.startswith("-")]
    if not flags or "--" in flags or "-h" in flags:
        return None
    spellings = {name.replace("_", "-") for name in names} | {"help"}
    for flag in flags:
        option = flag.removeprefix("--").partition("=")[0].replace("_", "-")
        if not flag.startswith("--") or " " in flag:
            return None  # argparse may take it as a value or a positional
        if option in spellings or option.removeprefix("no-") in spellings:
            return None
    return flags[0]
