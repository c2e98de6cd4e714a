"""The figures of `xalign report`, each written as one PNG file.

Figures are built with matplotlib's object API (`matplotlib.figure.Figure`) on the Agg canvas, never
through `pyplot`: nothing is registered in pyplot's global list of open figures (so nothing needs
closing and nothing leaks across calls), and importing this module does not switch the backend of a
notebook or GUI session the user is in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..extras import missing_extra
from .report.inputs import BASE_MODEL, CellInputs
from .report.stats import DISTANCES, Correlation, group_cosines, layer_groups

try:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
except ModuleNotFoundError as error:
    raise missing_extra(error, "the analysis report's plots (hf_xalign.analysis.plots)") from None

DPI = 100
MAX_COLUMNS = 3
# Fixed sizes in inches (axes, gaps, margins) instead of matplotlib's constrained layout, which lays
# every figure out in an extra draw pass and made the report's plots ~40% slower to save.
AXES_SIZE = (3.4, 2.3)
WIDE_AXES_SIZE = (7.5, 2.8)  # one panel over training steps
TITLE_HEIGHT, LINE_HEIGHT, LEFT, RIGHT, GAP_X = 0.35, 0.22, 0.8, 0.3, 0.8
_BASE_STYLE = {"color": "0.45", "linestyle": "--", "marker": "o", "markersize": 3}


def _panels(
    count: int, title: str, label_lines: int = 1, axes_size: tuple[float, float] = AXES_SIZE
) -> tuple[Figure, list]:
    """A figure with `count` panels of `axes_size` inches in rows of up to [`MAX_COLUMNS`], room below each
    for `label_lines` of x label."""
    columns = min(count, MAX_COLUMNS)
    rows = math.ceil(count / columns)
    below = 0.3 + LINE_HEIGHT * (label_lines + 1)  # tick labels, then the x label
    gap_y = below + TITLE_HEIGHT  # an x label above the next row's panel title
    width = LEFT + columns * axes_size[0] + (columns - 1) * GAP_X + RIGHT
    height = 2 * TITLE_HEIGHT + rows * axes_size[1] + (rows - 1) * gap_y + below
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    figure.subplots_adjust(
        left=LEFT / width,
        right=1 - RIGHT / width,
        top=1 - 2 * TITLE_HEIGHT / height,
        bottom=below / height,
        wspace=GAP_X / axes_size[0],
        hspace=gap_y / axes_size[1],
    )
    axes = list(figure.subplots(rows, columns, squeeze=False).ravel())
    for unused in axes[count:]:
        unused.remove()
    figure.suptitle(title)
    return figure, axes[:count]


def _save(figure: Figure, path: str) -> str:
    figure.savefig(path, dpi=DPI)
    return path


def _color(index: int) -> str:
    return f"C{index % 10}"


def _direction(measure: str) -> str:
    return "lower = closer" if measure in DISTANCES else "higher = closer"


def plot_measure_by_layer(
    rows: Sequence[dict], measure: str, cells: Sequence[str], layers: Mapping[str, int | None], path: str
) -> str:
    """`measure` per layer, the base model against each cell, one panel per language pair.

    Args:
        rows (`Sequence[dict]`): the rows of `analysis.csv`.
        measure (`str`): the measure to draw.
        cells (`Sequence[str]`): the cells to draw against the base model, in legend order.
        layers (`Mapping[str, int | None]`): cell -> its alignment layer, marked by a dotted line.
        path (`str`): the PNG file to write.
    """
    pairs = list(dict.fromkeys(row["pair"] for row in rows if row["measure"] == measure))
    figure, axes = _panels(len(pairs), f"{measure} per layer ({_direction(measure)}): base model vs cells")
    for ax, pair in zip(axes, pairs):
        for index, model in enumerate([BASE_MODEL, *cells]):
            points = sorted(
                (row["layer"], row["value"])
                for row in rows
                if row["model"] == model and row["pair"] == pair and row["measure"] == measure
            )
            if not points:
                continue
            style = _BASE_STYLE if model == BASE_MODEL else {"color": _color(index - 1), "marker": "o", "markersize": 3}
            ax.plot(*zip(*points), label=model, **style)
        for index, cell in enumerate(cells):
            if layers.get(cell) is not None:
                ax.axvline(layers[cell], color=_color(index), linestyle=":", linewidth=1)
        ax.set_title(pair)
        ax.set_xlabel("layer (0 = embedding output)")
        ax.set_ylabel(measure)
    axes[0].legend(fontsize="small")
    return _save(figure, path)


@dataclass
class ScatterPoint:
    """One language in a transfer-vs-distance scatter: `label` written next to it, `group` its colour."""

    label: str
    group: str
    x: float
    y: float


def _correlation_text(correlation: Correlation) -> str:
    if correlation.undefined:
        return f"correlation undefined ({correlation.undefined})"
    return f"Spearman ρ = {correlation.spearman:.3f}, Pearson r = {correlation.pearson:.3f}, n = {correlation.n}"


def plot_transfer_vs_distance(
    points: Mapping[str, Sequence[ScatterPoint]],
    correlations: Mapping[str, Correlation],
    x_label: str,
    y_label: str,
    title: str,
    path: str,
) -> str:
    """Δ transfer against Δ measure, one panel per measure, one point per language, correlations written in.

    Args:
        points (`Mapping[str, Sequence[ScatterPoint]]`): measure -> its points (NaN ones are not drawn).
        correlations (`Mapping[str, Correlation]`): measure -> the correlation of its points.
        x_label (`str`): the x axis label, with `{measure}` where the measure's name goes.
        y_label (`str`): the y axis label.
        title (`str`): the figure's title.
        path (`str`): the PNG file to write.
    """
    figure, axes = _panels(len(points), title, label_lines=2)
    for ax, (measure, measure_points) in zip(axes, points.items()):
        groups = list(dict.fromkeys(point.group for point in measure_points))
        for index, group in enumerate(groups):
            drawn = [p for p in measure_points if p.group == group and math.isfinite(p.x) and math.isfinite(p.y)]
            ax.scatter([p.x for p in drawn], [p.y for p in drawn], color=_color(index), label=group, zorder=3)
            for point in drawn:
                ax.annotate(point.label, (point.x, point.y), textcoords="offset points", xytext=(4, 3), fontsize=8)
        ax.axhline(0, color="0.6", linewidth=0.8)
        ax.axvline(0, color="0.6", linewidth=0.8)
        ax.set_title(_correlation_text(correlations[measure]), fontsize=8)
        ax.margins(0.15)  # room for the language labels at the edges
        ax.set_xlabel(x_label.format(measure=measure) + f"\n({_direction(measure)})")
        ax.set_ylabel(y_label)
        if len(groups) > 1:
            ax.legend(fontsize="small", loc="best")
    return _save(figure, path)


def _plot_over_steps(
    cells: Sequence[CellInputs], title: str, value_of: Callable[[Any], float], y_label: str, reference_line: float
) -> tuple[Figure, Any]:
    """One line per cell of a measured quantity over the optimizer steps, with a reference line."""
    figure, (ax,) = _panels(1, title, axes_size=WIDE_AXES_SIZE)
    for index, cell in enumerate(cells):
        ax.plot(
            [m.step for m in cell.conflict], [value_of(m) for m in cell.conflict], color=_color(index), label=cell.name
        )
    ax.axhline(reference_line, color="0.6", linewidth=0.8)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(y_label)
    ax.legend(fontsize="small")
    return figure, ax


def plot_gradient_cosine(cells: Sequence[CellInputs], path: str) -> str:
    """The cosine between the task and alignment gradients at each measured step, one line per cell."""
    title = "Task vs alignment gradient cosine over training"
    figure, _ = _plot_over_steps(cells, title, lambda m: m.cosine, "cosine(task grad, align grad)", 0)
    return _save(figure, path)


def plot_gradient_norm_ratio(cells: Sequence[CellInputs], path: str) -> str:
    """‖align‖ / ‖task‖ at each measured step, one line per cell (log scale: ratios span magnitudes)."""
    title = "Alignment vs task gradient norm over training"
    figure, ax = _plot_over_steps(cells, title, lambda m: m.norm_ratio, "‖align grad‖ / ‖task grad‖", 1)
    ratios = [m.norm_ratio for cell in cells for m in cell.conflict if math.isfinite(m.norm_ratio)]
    if ratios and min(ratios) > 0:
        ax.set_yscale("log")
    return _save(figure, path)


def plot_layer_cosine_map(cell: CellInputs, path: str) -> str:
    """Per-layer gradient cosine (group `layer.k`) as a layer × step heat map, layers bottom-up in numeric order."""
    layers = layer_groups(cell)
    steps = [m.step for m in cell.conflict]
    values = np.array([group_cosines(cell, layer) for layer in layers], dtype=float)  # (layers, steps)
    # A symmetric colour range around 0 keeps white meaning "orthogonal"; fitted to the data, because
    # per-layer cosines are usually far from ±1 and a fixed ±1 scale would show a blank map.
    finite = np.abs(values[np.isfinite(values)])
    limit = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    size = (WIDE_AXES_SIZE[0], max(WIDE_AXES_SIZE[1], 0.2 * len(layers)))  # a readable row per layer
    figure, (ax,) = _panels(1, f"Task vs alignment gradient cosine per layer ({cell.name})", axes_size=size)
    mesh = ax.pcolormesh(steps, layers, values, shading="nearest", cmap="RdBu_r", vmin=-limit, vmax=limit)
    figure.colorbar(mesh, ax=ax, label="cosine")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("layer (group layer.k)")
    ax.set_yticks(layers)
    return _save(figure, path)
