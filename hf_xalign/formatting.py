"""How every table and sentence of the library writes a number, and the one wording of a run's gradient summary: the
results table, the run and study reports and the model card share these, so the same value reads the same everywhere."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

MISSING = "–"  # a value that is absent or not finite


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def number(value: float | None, signed: bool = False, digits: int = 4) -> str:
    """`value` with `digits` decimals (and its sign with `signed`); `–` for a missing, NaN or infinite value."""
    if not _finite(value):
        return MISSING
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def with_interval(
    value: float | None,
    interval: Sequence[float] | None,
    signed: bool = False,
    digits: int = 4,
    interval_digits: int | None = None,
) -> str:
    """`0.8123 [0.7900, 0.8300]`: [`number`] followed by its interval; the number alone without an interval.

    Args:
        value (`float`, *optional*): the number.
        interval (`Sequence[float]`, *optional*): `[low, high]`; `None` or empty: no interval.
        signed (`bool`, *optional*, defaults to `False`): a sign on the number and on the interval's ends (a Δ).
        digits (`int`, *optional*, defaults to `4`): the number's decimals.
        interval_digits (`int`, *optional*): the ends' decimals; defaults to `digits`.
    """
    text = number(value, signed, digits)
    if not interval or text == MISSING:
        return text
    ends = (number(end, signed, digits if interval_digits is None else interval_digits) for end in interval)
    return "{} [{}, {}]".format(text, *ends)


def percent(value: float | None) -> str:
    """A fraction as a whole percentage (`0.48` -> `48%`); `–` for a missing, NaN or infinite value."""
    return f"{value:.0%}" if _finite(value) else MISSING


def gradient_summary_lines(summary: Mapping[str, Any], cell: str | None = None) -> list[str]:
    """A cell's task-vs-alignment gradient summary in sentences: the cosine, the norm ratio, the per-layer extremes.

    The norm ratio is the median over steps, with its range: a few extreme steps move the mean, not the median.

    Args:
        summary (`Mapping[str, Any]`): a `conflict_summary.json`, the output of [`hf_xalign.conflict.summarize`].
        cell (`str`, *optional*): the cell's name, written after each sentence's subject where several cells share
            a page.
    """
    of = f" ({cell})" if cell else ""
    if not _finite(summary.get("mean_cosine")):
        return [f"Task vs alignment gradients{of}: no measured step with a defined cosine."]
    skipped = summary.get("skipped_steps", 0)
    lines = [
        f"Task vs alignment gradient cosine{of}: mean {number(summary['mean_cosine'], signed=True)}, median "
        f"{number(summary.get('median_cosine'), signed=True)} over {summary.get('measured_steps', 0)} measured steps"
        + (f" ({skipped} more skipped: non-finite gradients)" if skipped else "")
        + f"; |cosine| < 0.1 at {percent(summary.get('near_orthogonal_fraction'))} of them, negative at "
        f"{percent(summary.get('negative_cosine_fraction'))} (near 0: the two objectives barely interact).",
        f"‖align grad‖ / ‖task grad‖{of}: median {number(summary.get('median_norm_ratio'), digits=3)} over the "
        f"steps (from {number(summary.get('min_norm_ratio'), digits=3)} to "
        f"{number(summary.get('max_norm_ratio'), digits=3)}).",
    ]
    layers = {
        int(group.split(".")[1]): values.get("mean_cosine")
        for group, values in summary.get("per_group", {}).items()
        if group.startswith("layer.") and _finite(values.get("mean_cosine"))
    }
    if len(layers) >= 2:
        lowest, highest = min(layers, key=layers.get), max(layers, key=layers.get)
        lines.append(
            f"Per layer{of}, the mean cosine is lowest at layer {lowest} ({number(layers[lowest], signed=True)}) "
            f"and highest at layer {highest} ({number(layers[highest], signed=True)})."
        )
    return lines
