"""How every table and sentence of the library writes a number: the results table, the run and study reports and
the model card share these, so the same value reads the same everywhere."""

from __future__ import annotations

import math
from collections.abc import Sequence

MISSING = "–"  # a value that is absent or not finite


def number(value: float | None, signed: bool = False, digits: int = 4) -> str:
    """`value` with `digits` decimals (and its sign with `signed`); `–` for a missing, NaN or infinite value."""
    if value is None or not math.isfinite(value):
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
