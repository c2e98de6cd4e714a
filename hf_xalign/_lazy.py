"""Public names of a package, imported from their submodules on first use (PEP 562).

A package's `__init__.py` names its submodules and what each exports, the way transformers' `_import_structure` and
TRL's `_lazy_module.py` do, and gets the module-level `__getattr__` and `__dir__` that import a submodule only
when one of its names is first asked for; the name is then kept in the package's namespace, so the next lookup
is an ordinary attribute. `import hf_xalign` therefore costs no torch: the trainer is imported by the first
`hf_xalign.AlignmentTrainer`. A `TYPE_CHECKING` block beside it keeps the names visible to type checkers and IDEs.

Example:

```python
__getattr__, __dir__ = lazy_exports(__name__, {"trainer": ["AlignmentTrainer"]})
```
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(
    package: str, structure: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The `__getattr__` and `__dir__` of `package` that import each name of `structure` from its submodule on first use.

    Args:
        package (`str`): the package's `__name__`.
        structure (`Mapping[str, Sequence[str]]`): submodule (relative to `package`) to the names it exports.

    Returns:
        `tuple`: `(__getattr__, __dir__)`, to assign at the package's module level.
    """
    home = {name: submodule for submodule, names in structure.items() for name in names}
    shadowed = {name for name, submodule in home.items() if name == submodule}  # `analysis.analyze`, the function

    class LazyPackage(types.ModuleType):
        def __setattr__(self, name: str, value: Any) -> None:
            # Importing a submodule binds it to the package attribute of its name, whichever route imported it;
            # where the package exports a name of that submodule's own, the export wins (as with eager imports).
            if name in shadowed and isinstance(value, types.ModuleType):
                value = getattr(value, name)
            super().__setattr__(name, value)

    if shadowed:
        sys.modules[package].__class__ = LazyPackage

    def __getattr__(name: str) -> Any:
        if name not in home:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{home[name]}", package), name)
        setattr(sys.modules[package], name, value)  # the next lookup does not come here
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(home))

    return __getattr__, __dir__
