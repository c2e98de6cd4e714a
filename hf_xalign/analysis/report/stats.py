"""The numbers of `xalign report`: intervals, Δs against the reference and the base model, correlations.

Every number the report writes is computed here from the run's files, so the tests can check each
one against its oracle (`scipy.stats`, [`~hf_xalign.analysis.bootstrap`]).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ...extras import missing_extra
from ..bootstrap import delta_interval, score_interval
from .inputs import BASE_MODEL, CellInputs, RunInputs

try:
    from scipy import stats
except ModuleNotFoundError as error:
    raise missing_extra(error, "the analysis report's correlations (hf_xalign.analysis.report.stats)") from None

# Measures of distance (lower = closer); every other measure is a similarity (higher = closer).
DISTANCES = frozenset({"pair_l2"})
MIN_CORRELATION_POINTS = 3  # below it a correlation is meaningless (two points always lie on a line)
# Up to this many points Spearman's p is exact (all n! pairings: 40,320 at 8); scipy's t approximation
# says p = 0 for a perfect rank order of 4 points, where 2 of the 24 pairings are as extreme (p = 0.083).
EXACT_SPEARMAN_P_MAX_POINTS = 8

Interval = tuple[float, float]


def score_interval_of(cell: CellInputs, language: str, notes: list[str]) -> Interval | None:
    """The 95% interval of a cell's main score: the one stored in its result, else bootstrapped from outcomes."""
    stored = cell.result.intervals.get(language)
    if stored:
        return (stored[0], stored[1])
    if cell.outcomes and language in cell.outcomes:
        try:
            return score_interval(cell.outcomes[language]["correct"], cell.outcomes[language]["total"])
        except ValueError as error:
            notes.append(f"no interval for {cell.name} on {language}: {error}")
    return None


def delta_interval_of(cell: CellInputs, reference: CellInputs, language: str, notes: list[str]) -> Interval | None:
    """The paired 95% interval of `cell − reference` on `language`.

    Bootstrapped from both cells' outcomes when both wrote them (the same test examples resampled for
    both); else the interval stored in the cell's result, if it was computed against this reference.
    """
    own, theirs = cell.outcomes or {}, reference.outcomes or {}
    if language in own and language in theirs:
        try:
            return delta_interval(
                own[language]["correct"], own[language]["total"], theirs[language]["correct"], theirs[language]["total"]
            )
        except ValueError as error:
            notes.append(f"no paired interval for {cell.name} − {reference.name} on {language}: {error}")
            return None
    stored = cell.result.delta_intervals.get(language) if cell.result.reference == reference.name else None
    return (stored[0], stored[1]) if stored else None


def measures_of(rows: Sequence[dict]) -> list[str]:
    """The measures of an analysis table, in the order they first appear."""
    return list(dict.fromkeys(row["measure"] for row in rows))


def target_pair(pairs: set[str], source: str, language: str) -> str | None:
    """The language pair of the table that links `source` and `language` (`en-fr`, or `fr-en`)."""
    return next((pair for pair in (f"{source}-{language}", f"{language}-{source}") if pair in pairs), None)


def closer(measure: str, delta: float) -> bool:
    """Whether a change of `measure` by `delta` brings translations closer."""
    return delta < 0 if measure in DISTANCES else delta > 0


@dataclass
class TransferRow:
    """One target language of one cell: its change in transfer and in each measure at the alignment layer.

    Args:
        run (`str`): the run's label in the report.
        cell (`str`): the cell's name.
        reference (`str`, *optional*): the cell `delta_score` subtracts; `None` when the run has none.
        metric (`str`): the main score's name.
        language (`str`): the target language.
        layer (`int`, *optional*): the cell's alignment layer, where the measures are read.
        delta_score (`float`): main score of the cell minus the reference's (NaN without a reference).
        delta_measures (`dict[str, float]`): measure -> value of the cell minus the base model's (NaN if missing).
    """

    run: str
    cell: str
    reference: str | None
    metric: str
    language: str
    layer: int | None
    delta_score: float
    delta_measures: dict[str, float] = field(default_factory=dict)


class AnalysisIndex:
    """The values of an analysis table by `(model, pair, layer, measure)`."""

    def __init__(self, rows: Sequence[dict]) -> None:
        self.values = {(r["model"], r["pair"], r["layer"], r["measure"]): r["value"] for r in rows}
        self.pairs = {row["pair"] for row in rows}
        self.layers = sorted({row["layer"] for row in rows})
        self.models = list(dict.fromkeys(row["model"] for row in rows))

    def delta(self, model: str, pair: str | None, layer: int | None, measure: str) -> float:
        """`model`'s value minus the base model's; NaN when either was not measured."""
        before = self.values.get((BASE_MODEL, pair, layer, measure), math.nan)
        return self.values.get((model, pair, layer, measure), math.nan) - before


def transfer_rows(label: str, run: RunInputs, reference: CellInputs | None) -> list[TransferRow]:
    """One [`TransferRow`] per target language of each cell but the reference."""
    index = AnalysisIndex(run.analysis or [])
    measures = measures_of(run.analysis or [])
    rows = []
    for cell in run.cells:
        if reference is not None and cell.name == reference.name:
            continue
        for language in cell.result.target_languages:
            pair = target_pair(index.pairs, cell.result.source_language, language)
            reference_score = reference.result.score(language) if reference is not None else math.nan
            rows.append(
                TransferRow(
                    run=label,
                    cell=cell.name,
                    reference=reference.name if reference is not None else None,
                    metric=cell.result.metric,
                    language=language,
                    layer=cell.layer,
                    delta_score=cell.result.score(language) - reference_score,
                    delta_measures={m: index.delta(cell.name, pair, cell.layer, m) for m in measures},
                )
            )
    return rows


@dataclass
class Correlation:
    """Spearman and Pearson correlation of two series over their `n` points where both are finite.

    `spearman`, `spearman_p` (its two-sided p-value) and `pearson` are `None` when undefined, and
    `undefined` says why.
    """

    n: int
    spearman: float | None = None
    pearson: float | None = None
    undefined: str | None = None
    spearman_p: float | None = None


def correlate(xs: Sequence[float], ys: Sequence[float]) -> Correlation:
    """[`Correlation`] of `xs` and `ys` (`scipy.stats.spearmanr` / `pearsonr`), pairs with a NaN left out."""
    points = [(x, y) for x, y in zip(xs, ys) if math.isfinite(x) and math.isfinite(y)]
    n = len(points)
    if n < MIN_CORRELATION_POINTS:
        return Correlation(n, undefined=f"n = {n}; at least {MIN_CORRELATION_POINTS} points are needed")
    x, y = np.array(points).T
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        constant = "the x values are" if np.ptp(x) == 0 else "the y values are"
        return Correlation(n, undefined=f"{constant} all equal, n = {n}")
    spearman = stats.spearmanr(x, y)
    p = exact_spearman_p(x, y) if n <= EXACT_SPEARMAN_P_MAX_POINTS else float(spearman.pvalue)
    return Correlation(n, float(spearman.statistic), float(stats.pearsonr(x, y).statistic), spearman_p=p)


def exact_spearman_p(x: Sequence[float], y: Sequence[float]) -> float:
    """Two-sided permutation p-value of Spearman's ρ: the share of all pairings of `y`'s ranks with `x`'s
    whose |ρ| is at least the observed one (ties keep their average ranks)."""
    x_ranks = stats.rankdata(x) - (len(x) + 1) / 2
    pairings = np.array(list(itertools.permutations(stats.rankdata(y) - (len(y) + 1) / 2)))
    # ρ is the Pearson correlation of the ranks; its denominator is the same for every pairing.
    covariances = np.abs(pairings @ x_ranks)
    return float(np.mean(covariances >= covariances[0] - 1e-9 * max(covariances.max(), 1.0)))


def oriented(measure: str, delta: float) -> float:
    """`delta` with the sign that makes "up" mean "closer" for every measure (distances flipped)."""
    return -delta if measure in DISTANCES else delta


def measure_agreement(rows: Sequence[TransferRow], measures: Sequence[str]) -> dict[tuple[str, str], Correlation]:
    """Spearman correlation, across languages, of the oriented Δ of every two measures."""
    return {
        (first, second): correlate(
            [oriented(first, row.delta_measures[first]) for row in rows],
            [oriented(second, row.delta_measures[second]) for row in rows],
        )
        for i, first in enumerate(measures)
        for second in measures[i + 1 :]
    }


def layer_groups(cell: CellInputs) -> list[int]:
    """The layers with a `layer.k` parameter group in the cell's measurements, in numeric order."""
    groups = {group for measurement in cell.conflict for group in measurement.per_group}
    return sorted(int(group.split(".")[1]) for group in groups if group.startswith("layer."))


def group_cosines(cell: CellInputs, layer: int) -> list[float]:
    """The cosine of group `layer.<layer>` at every measured step (NaN where undefined or absent)."""
    return [m.per_group.get(f"layer.{layer}", {}).get("cosine", math.nan) for m in cell.conflict]
