"""The sentences of `xalign report`: each states one computed finding, with its numbers, and nothing canned."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ...formatting import number, with_interval
from ..bootstrap import excludes_zero
from .stats import Correlation, Interval, TransferRow, closer


def delta_sentence(metric: str, cell: str, reference: str, deltas: Mapping[str, tuple[float, Interval | None]]) -> str:
    """Which languages' Δ (cell − reference) exclude 0 at 95%, which do not, and which have no interval.

    Args:
        deltas (`Mapping[str, tuple[float, Interval | None]]`): language -> (Δ, its paired interval or `None`).
    """
    described = {
        language: with_interval(delta, interval, signed=True) for language, (delta, interval) in deltas.items()
    }
    excluding = [lang for lang, (_, interval) in deltas.items() if interval is not None and excludes_zero(interval)]
    including = [lang for lang, (_, interval) in deltas.items() if interval is not None and not excludes_zero(interval)]
    missing = [lang for lang, (_, interval) in deltas.items() if interval is None]

    def listed(languages: Sequence[str]) -> str:
        return ", ".join(f"{language} ({described[language]})" for language in languages)

    sentence = f"Δ {metric} ({cell} − {reference}) excludes 0 for " + (listed(excluding) or "no language")
    if including:
        sentence += f"; not for {listed(including)}"
    if missing:
        sentence += f"; no paired interval for {', '.join(missing)} (no per-example outcomes)"
    return sentence + "."


def transfer_change_sentence(metric: str, cell: str, reference: str, rows: Sequence[TransferRow]) -> str:
    """The mean Δ score over the target languages and how many went up or down."""
    deltas = [row.delta_score for row in rows if math.isfinite(row.delta_score)]
    if not deltas:
        return f"Δ {metric} ({cell} − {reference}): no target language scored in both cells."
    up, down = sum(d > 0 for d in deltas), sum(d < 0 for d in deltas)
    return (
        f"Δ {metric} ({cell} − {reference}) over {len(deltas)} target languages: mean "
        f"{number(sum(deltas) / len(deltas), signed=True)}; up for {up}, down for {down}."
    )


def alignment_change_sentence(measure: str, cell: str, layer: int, rows: Sequence[TransferRow]) -> str:
    """The mean Δ measure (cell − base) at the alignment layer and for how many targets translations got closer."""
    deltas = [row.delta_measures[measure] for row in rows if math.isfinite(row.delta_measures[measure])]
    if not deltas:
        return f"Δ {measure} ({cell} − base) at layer {layer}: not measured for any target language pair."
    closer_count = sum(closer(measure, delta) for delta in deltas)
    return (
        f"Δ {measure} ({cell} − base) at layer {layer}: mean {number(sum(deltas) / len(deltas), signed=True)} "
        f"over {len(deltas)} target language pairs; translations closer for {closer_count} of {len(deltas)}."
    )


def correlation_sentence(y_name: str, x_name: str, correlation: Correlation) -> str:
    """`Δ accuracy vs Δ pair_cosine at layer 6: Spearman ρ = 0.310, Pearson r = 0.120, n = 6.`"""
    if correlation.undefined:
        return f"{y_name} vs {x_name}: correlation undefined ({correlation.undefined})."
    return (
        f"{y_name} vs {x_name}: Spearman ρ = {correlation.spearman:.3f}, "
        f"Pearson r = {correlation.pearson:.3f}, n = {correlation.n}."
    )


def correlation_sentences(
    y_name: str, x_names: Mapping[str, str], correlations: Mapping[str, Correlation]
) -> list[str]:
    """One [`correlation_sentence`] per measure; a single sentence when all are undefined for the same reason.

    Args:
        y_name (`str`): what is correlated, e.g. `Δ accuracy`.
        x_names (`Mapping[str, str]`): measure -> its name in the sentence, e.g. `Δ pair_cosine at layer 6`.
        correlations (`Mapping[str, Correlation]`): measure -> its correlation with `y_name`.
    """
    reasons = {correlation.undefined for correlation in correlations.values()}
    if len(correlations) > 1 and len(reasons) == 1 and None not in reasons:
        measures = ", ".join(correlations)
        return [f"{y_name} vs Δ of each measure ({measures}): correlation undefined ({reasons.pop()})."]
    return [correlation_sentence(y_name, x_names[measure], c) for measure, c in correlations.items()]


def best_predictor_sentence(metric: str, correlations: Mapping[str, Correlation]) -> str | None:
    """Which measure's Δ ranks the languages most and least like Δ score (`None` with fewer than 2 defined)."""
    defined = {measure: c for measure, c in correlations.items() if c.spearman is not None}
    if len(defined) < 2:
        return None
    ranked = sorted(defined, key=lambda measure: defined[measure].spearman)
    best, worst = ranked[-1], ranked[0]
    return (
        f"The measure whose change ranks the languages most like Δ {metric}: {best} "
        f"(ρ = {defined[best].spearman:.3f}); least: {worst} (ρ = {defined[worst].spearman:.3f})."
    )


def agreement_sentence(agreement: Mapping[tuple[str, str], Correlation]) -> str:
    """How many measure pairs rank the target languages in opposite orders, and the least agreeing pair."""
    defined = {pair: c for pair, c in agreement.items() if c.spearman is not None}
    if not defined:
        reasons = "; ".join(sorted({c.undefined for c in agreement.values()}))
        return f"Agreement between measures: undefined for every pair of measures ({reasons})."
    (first, second), least = min(defined.items(), key=lambda item: item[1].spearman)
    opposite = sum(c.spearman < 0 for c in defined.values())
    return (
        f"Of {len(defined)} pairs of measures, {opposite} rank the target languages' changes in opposite orders "
        f"(ρ < 0); least agreement: {first} vs {second} (ρ = {least.spearman:.3f}, n = {least.n})."
    )
