"""The zero-shot tasks a recipe or a study runs, by name: `TASKS[name] = (arguments class, task class)`.

A task reads its data once into a [`~hf_xalign.experiment.ZeroShotTask`] and builds a fresh model
for each cell; `recipes/pos.py`, `recipes/xnli.py` and `recipes/study.py` all take them from here.
"""

from .classification import ClassificationArguments, ClassificationTask
from .pos import PosArguments, PosTask

TASKS: dict[str, tuple[type, type]] = {
    "pos": (PosArguments, PosTask),
    "classification": (ClassificationArguments, ClassificationTask),
}

__all__ = ["TASKS", "ClassificationArguments", "ClassificationTask", "PosArguments", "PosTask"]
