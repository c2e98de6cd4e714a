"""Whole commands timed against each other: two variants taking turns round by round, and the machine's load.

For benchmarks that time whole processes (`study.py` runs), which import nothing heavy themselves; pieces and
steps inside one process go through `_timing`.
"""

from __future__ import annotations

import statistics
import subprocess
from collections.abc import Callable, Iterator
from typing import TypeVar

Variant = TypeVar("Variant")


def load() -> str:
    """`uptime`'s line: printed before and after, since a shared machine's load moves whole-command times."""
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def alternating_rounds(
    variants: tuple[Variant, Variant], rounds: int, seconds_of: Callable[[Variant, int], float]
) -> Iterator[tuple[int, dict[Variant, float]]]:
    """Yield `(round, {variant: seconds_of(variant, round)})`, the two variants in alternating order (A B, B A,
    ...), so that a slow drift of the machine hits both alike."""
    for round_number in range(rounds):
        order = variants if round_number % 2 == 0 else variants[::-1]
        yield round_number, {variant: seconds_of(variant, round_number) for variant in order}


def print_summary(label: str, values: list[float], number_format: str, with_load: bool = True) -> None:
    """The load after the rounds (unless `with_load` is false: a second summary of the same rounds), then
    `label: median M (spread LO to HI, N rounds)` of the rounds' `values`."""
    if with_load:
        print(f"load after: {load()}")
    spread = f"{min(values):{number_format}} to {max(values):{number_format}}"
    print(f"{label}: median {statistics.median(values):{number_format}} (spread {spread}, {len(values)} rounds)")
