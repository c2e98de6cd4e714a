"""Local `evaluate` metric modules: they load by path, with no network.

>>> import evaluate
>>> from hf_xalign.metrics import metric_path
>>> accuracy = evaluate.load(metric_path("token_accuracy"))
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).parent


def metric_path(name: str) -> str:
    """The local path of the shipped metric module `name` (e.g. `"token_accuracy"`)."""
    path = _HERE / name / f"{name}.py"
    if not path.is_file():
        known = sorted(p.name for p in _HERE.iterdir() if (p / f"{p.name}.py").is_file())
        raise ValueError(f"Unknown metric {name!r}; shipped metrics: {', '.join(known)}.")
    return str(path)
