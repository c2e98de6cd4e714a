"""`CellResult`: what one cell of an experiment did and scored.

The record that reports, model cards and study grids read: one line of `results.jsonl`, the
`cell_result.json` in a cell's folder, and the `results.json` of a published model.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .files import CELL_RESULT_NAME, json_safe


@dataclass
class CellResult:
    """What one cell of an experiment did and scored; one line of `results.jsonl`.

    Args:
        name (`str`): the cell's name in its experiment (`aligned`, `baseline`, a grid coordinate).
        task (`str`): the recipe's task (`pos`, `classification`).
        metric (`str`): the main score of each language (e.g. `accuracy`).
        source_language (`str`): the training language; the others are zero-shot targets.
        scores (`dict[str, dict[str, float]]`): language -> score name -> value, from `Trainer.evaluate`.
        intervals (`dict[str, list[float]]`): language -> 95% bootstrap interval `[low, high]` of the main
            metric (resampling test examples).
        reference (`str`, *optional*): the cell the Δ intervals compare against (e.g. `baseline`).
        delta_intervals (`dict[str, list[float]]`): language -> paired 95% bootstrap interval of
            `score − reference score`.
        config (`dict`): the resolved options of the cell (recipe and training arguments that differ
            from their defaults, secrets left out), enough to rerun it.
        conflict_summary (`dict`, *optional*): the gradient-conflict summary (`None` without measurement).
        model_path (`str`, *optional*): where the trained model was saved.
        train_metrics (`dict`): what `Trainer.train` returned (loss, runtime, ...).
        seconds (`dict`): wall-clock seconds of the cell's phases: `train` (model loading and
            `Trainer.train`) and `evaluate` (scoring every language).
        details (`dict`): facts about the data (sizes, pairs dropped as test text, labels, ...).
        versions (`dict`): package versions the cell ran with.
    """

    name: str
    task: str
    metric: str
    source_language: str
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    intervals: dict[str, list[float]] = field(default_factory=dict)
    reference: str | None = None
    delta_intervals: dict[str, list[float]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    conflict_summary: dict | None = None
    model_path: str | None = None
    train_metrics: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def languages(self) -> list[str]:
        return list(self.scores)

    @property
    def target_languages(self) -> list[str]:
        return [language for language in self.scores if language != self.source_language]

    def score(self, language: str, metric: str | None = None) -> float:
        """A language's score (`metric`, defaults to the cell's main one); NaN when missing."""
        return self.scores.get(language, {}).get(metric or self.metric, math.nan)

    def target_average(self, metric: str | None = None) -> float:
        """Macro average over the target languages (all but the source language), NaNs left out."""
        values = [self.score(language, metric) for language in self.target_languages]
        values = [value for value in values if not math.isnan(value)]
        return sum(values) / len(values) if values else math.nan

    def to_dict(self) -> dict[str, Any]:
        """The result as strict JSON can hold it (NaN as `null`), with the target average."""
        values = dataclasses.asdict(self)
        values["target_average"] = self.target_average()
        return json_safe(values)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> CellResult:
        """The result of [`to_dict`] (a `results.jsonl` line); scores stored as `null` read as NaN again."""
        names = {f.name for f in dataclasses.fields(cls)}
        result = cls(**{key: value for key, value in values.items() if key in names})
        result.scores = {
            language: {name: math.nan if value is None else value for name, value in scores.items()}
            for language, scores in result.scores.items()
        }
        return result

    def save(self, folder: str) -> str:
        """Write `cell_result.json` into `folder`; returns its path."""
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, CELL_RESULT_NAME)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2)
        return path
