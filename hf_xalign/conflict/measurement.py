"""A measured step's statistics (`ConflictMeasurement`), the parameter groups they are kept for, and their means."""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..files import json_safe

TASK = "task"
ALIGN = "align"
ORTHOGONAL = 0.1  # |cosine| below it: the two gradients are close to orthogonal

_BLOCK = re.compile(r"\.layers?\.(\d+)\.")  # the index of a transformer block (`encoder.layer.3.`)


def parameter_group(name: str, encoder_prefix: str) -> str:
    """The reporting group of a parameter, named by the layer it computes ([`hf_xalign.layers`]).

    `layer.0` for the embedding parameters, `layer.<k>` for those of transformer block
    `encoder.layer[k-1]` (which produces `hidden_states[k]`), `encoder` for other encoder
    parameters (e.g. a pooler), `head` for the task head, `loss.<key>` for loss-owned ones.

    Args:
        name (`str`): the parameter's name in the model (`roberta.encoder.layer.3.output.dense.weight`,
            group `layer.4`), or `loss.<key>.<name>` for a loss-owned parameter.
        encoder_prefix (`str`): the model's `base_model_prefix` (`roberta`, `bert`, ...).
    """
    if name.startswith("loss."):
        return ".".join(name.split(".")[:2])
    in_encoder = not encoder_prefix or name.startswith(encoder_prefix + ".")
    if not in_encoder:
        return "head"
    if ".embeddings." in f".{name}":
        return "layer.0"
    block = _BLOCK.search(f".{name}")
    return f"layer.{int(block.group(1)) + 1}" if block else "encoder"


def _group_order(group: str) -> tuple[int, int, str]:
    """Layers bottom-up, then the other encoder parameters, the head, and loss-owned groups."""
    if group.startswith("layer."):
        return (0, int(group.split(".")[1]), group)
    return ({"encoder": 1, "head": 2}.get(group, 3), 0, group)


@dataclass
class ConflictMeasurement:
    """One measured optimizer step: global, per-parameter-group and per-objective statistics."""

    step: int
    alignment_lambda: float
    cosine: float
    task_norm: float
    align_norm: float
    per_group: dict[str, dict[str, float]] = field(default_factory=dict)
    per_objective: dict[str, dict[str, float]] = field(default_factory=dict)
    # Non-finite gradients (an fp16 overflow: the scaler skips the optimizer step): no statistics.
    skipped: bool = False

    @property
    def norm_ratio(self) -> float:
        """‖align‖ / ‖task‖ (alignment gradient as a multiple of the task gradient)."""
        return _ratio(self.align_norm, self.task_norm)

    def to_logs(self) -> dict[str, float]:
        """Flat `conflict/...` keys for the Trainer logs (and so every report_to target)."""
        logs = {
            "conflict/cosine": self.cosine,
            "conflict/task_norm": self.task_norm,
            "conflict/align_norm": self.align_norm,
            "conflict/norm_ratio": self.norm_ratio,
        }
        for scope in (self.per_group, self.per_objective):
            for name, values in scope.items():
                for key, value in values.items():
                    logs[f"conflict/{name}/{key}"] = value
        return logs

    @classmethod
    def from_record(cls, record: dict) -> ConflictMeasurement:
        """The inverse of [`to_record`] (`None` back to NaN)."""
        values = _none_to_nan(record)
        return cls(
            step=values["step"],
            alignment_lambda=values["lambda"],
            cosine=values["cosine"],
            task_norm=values["task_norm"],
            align_norm=values["align_norm"],
            per_group=values["per_group"],
            per_objective=values["per_objective"],
            skipped=values.get("skipped", False),
        )

    def to_record(self) -> dict:
        """A JSON-ready record; undefined values (a cosine with a zero gradient) become `None`."""
        return json_safe(
            {
                "step": self.step,
                "lambda": self.alignment_lambda,
                "cosine": self.cosine,
                "task_norm": self.task_norm,
                "align_norm": self.align_norm,
                "norm_ratio": self.norm_ratio,
                "per_group": self.per_group,
                "per_objective": self.per_objective,
                "skipped": self.skipped,
            }
        )


def _none_to_nan(value):
    if isinstance(value, dict):
        return {key: _none_to_nan(item) for key, item in value.items()}
    return float("nan") if value is None else value


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("nan")


def _cosine(dot: float, first_sq: float, second_sq: float) -> float:
    denominator = math.sqrt(first_sq * second_sq)
    return dot / denominator if denominator > 0 else float("nan")


def _values(dot: float, task_sq: float, align_sq: float) -> dict[str, float]:
    task_norm, align_norm = math.sqrt(task_sq), math.sqrt(align_sq)
    return {
        "cosine": _cosine(dot, task_sq, align_sq),
        "task_norm": task_norm,
        "align_norm": align_norm,
        "norm_ratio": _ratio(align_norm, task_norm),
    }


def mean_logs(measurements: Sequence[ConflictMeasurement]) -> dict[str, float]:
    """The mean of each `conflict/...` log value over several measured steps (NaNs and skipped steps left out).

    Skipped steps are counted in `conflict/skipped_steps` (present when there is one).
    """
    collected: dict[str, list[float]] = {}
    for measurement in measurements:
        if not measurement.skipped:
            for key, value in measurement.to_logs().items():
                collected.setdefault(key, []).append(value)
    means = {key: _nanmean(values) for key, values in collected.items()}
    logs = {key: value for key, value in means.items() if not math.isnan(value)}
    skipped = sum(measurement.skipped for measurement in measurements)
    if skipped:
        logs["conflict/skipped_steps"] = float(skipped)
    return logs


def summarize(measurements: Sequence[ConflictMeasurement]) -> dict:
    """Mean / median cosine, shares of steps with a negative and a near-0 cosine, the norm ratio's median (and mean,
    range) over steps, and per parameter group the mean cosine and the median (and mean) norm ratio.

    The median ratio is the one to read: the ratio can span an order of magnitude within a run (it drifts over
    training), and a few extreme steps move the mean, not the median.
    Skipped steps (non-finite gradients) are counted in `skipped_steps` and left out of the rest.
    """
    skipped = sum(measurement.skipped for measurement in measurements)
    measurements = [measurement for measurement in measurements if not measurement.skipped]
    if not measurements:
        return {"measured_steps": 0, "skipped_steps": skipped}
    cosines = [m.cosine for m in measurements if not math.isnan(m.cosine)]
    ratios = [m.norm_ratio for m in measurements if math.isfinite(m.norm_ratio)]
    groups = dict.fromkeys(group for m in measurements for group in m.per_group)  # in order of appearance
    return {
        "measured_steps": len(measurements),
        "skipped_steps": skipped,
        "mean_cosine": statistics.fmean(cosines) if cosines else float("nan"),
        "median_cosine": statistics.median(cosines) if cosines else float("nan"),
        "negative_cosine_fraction": _share([c < 0 for c in cosines]),
        "near_orthogonal_fraction": _share([abs(c) < ORTHOGONAL for c in cosines]),
        "mean_norm_ratio": statistics.fmean(m.norm_ratio for m in measurements),
        "median_norm_ratio": statistics.median(ratios) if ratios else float("nan"),
        "min_norm_ratio": min(ratios, default=float("nan")),
        "max_norm_ratio": max(ratios, default=float("nan")),
        "per_group": {group: _group_summary([m.per_group.get(group, {}) for m in measurements]) for group in groups},
    }


def _group_summary(values: list[dict[str, float]]) -> dict[str, float]:
    """A parameter group's mean cosine and median (and mean) norm ratio over steps (NaN and absent values left out)."""
    ratios = [v["norm_ratio"] for v in values if math.isfinite(v.get("norm_ratio", float("nan")))]
    return {
        "mean_cosine": _nanmean([v.get("cosine", float("nan")) for v in values]),
        "mean_norm_ratio": _nanmean([v.get("norm_ratio", float("nan")) for v in values]),
        "median_norm_ratio": statistics.median(ratios) if ratios else float("nan"),
    }


def _share(flags: list[bool]) -> float:
    return sum(flags) / len(flags) if flags else float("nan")


def _nanmean(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return statistics.fmean(kept) if kept else float("nan")
