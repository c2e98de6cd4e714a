"""The numbers of the study report, each computed from the finished cells so tests can check it against
its oracle (numpy, `scipy.stats`).

Every Δ pairs a cell with the base cell of the same task, encoder and seed (`base_cell_id`): Δ score
is the cell's score minus the base cell's; Δ measure is the cell's fine-tuned model minus the base
cell's fine-tuned model on an alignment measure, at the layer the variant aligned, on the held-out
pairs of the source and the target language. Seeds are then averaged.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from ...analysis.report.stats import Correlation, correlate, target_pair
from ...conflict import summarize as summarize_conflict
from ...results import CellResult
from .inputs import FinishedCell, StudyInputs
from .spec import BASE_VARIANT

NEAR_CHANCE_MARGIN = 0.05  # a base source score less than this above the majority class/chance is "not learned"


@dataclass
class Summary:
    """Mean, sample standard deviation (n − 1) and count of finite values; std is NaN below 2 values."""

    mean: float
    std: float
    n: int


def summarize(values: Iterable[float]) -> Summary:
    finite = [value for value in values if math.isfinite(value)]
    if not finite:
        return Summary(math.nan, math.nan, 0)
    std = statistics.stdev(finite) if len(finite) > 1 else math.nan
    return Summary(statistics.fmean(finite), std, len(finite))


def languages_of(inputs: StudyInputs, task: str) -> list[str]:
    """The languages a task's cells scored, its source language first, then in order of first appearance."""
    cells = [cell.result for cell in inputs.cells.values() if cell.study_cell.task == task]
    languages = [cells[0].source_language] if cells else []
    return list(dict.fromkeys(languages + [language for result in cells for language in result.languages]))


def base_of(inputs: StudyInputs, cell: FinishedCell) -> FinishedCell | None:
    return inputs.cells.get(cell.study_cell.base_cell_id)


def delta_score(inputs: StudyInputs, cell: FinishedCell, language: str) -> float:
    """Cell score minus its base cell's on `language`; NaN without a finished base cell."""
    base = base_of(inputs, cell)
    return cell.result.score(language) - base.result.score(language) if base is not None else math.nan


def cells_of(inputs: StudyInputs, **coordinates: str | None) -> list[FinishedCell]:
    """The finished cells whose `StudyCell` fields equal `coordinates` (e.g. `task="pos", variant="base"`)."""
    return [
        cell
        for cell in inputs.cells.values()
        if all(getattr(cell.study_cell, name) == value for name, value in coordinates.items())
    ]


@dataclass
class TableEntry:
    """One entry of the results table (model variant × task × language): score and Δ to base over seeds."""

    score: Summary
    delta: Summary | None  # `None` for the base variant


def table_entry(
    inputs: StudyInputs, encoder: str, variant: str, task: str, value_of: Callable[[CellResult], float]
) -> TableEntry:
    """`value_of` (a language's score, the target average) of a variant's cells, and its Δ per seed against
    that seed's base cell, each over the seeds."""
    cells = cells_of(inputs, encoder=encoder, variant=variant, task=task)
    score = summarize(value_of(cell.result) for cell in cells)
    if variant == BASE_VARIANT:
        return TableEntry(score, None)
    deltas = []
    for cell in cells:
        base = base_of(inputs, cell)
        deltas.append(value_of(cell.result) - value_of(base.result) if base is not None else math.nan)
    return TableEntry(score, summarize(deltas))


def aligned_groups(inputs: StudyInputs, *fields: str) -> dict[tuple, list[FinishedCell]]:
    """The finished cells of aligned variants grouped by the `StudyCell` `fields` (e.g. `"task", "mode"`),
    groups and cells in grid order."""
    groups: dict[tuple, list[FinishedCell]] = {}
    for cell in inputs.cells.values():
        if cell.study_cell.objective is not None:
            groups.setdefault(tuple(getattr(cell.study_cell, name) for name in fields), []).append(cell)
    return groups


@dataclass
class TransferPoint:
    """One target language of one aligned variant (encoder, variant, task), averaged over its seeds.

    Args:
        delta_score (`float`): mean over seeds of Δ score (NaN when no seed has one).
        delta_measures (`dict[str, float]`): measure -> mean over seeds of Δ measure at the variant's layer.
    """

    task: str
    encoder: str
    variant: str
    language: str
    delta_score: float
    delta_measures: dict[str, float] = field(default_factory=dict)


def delta_measures(
    inputs: StudyInputs, cell: FinishedCell, language: str, measures: Sequence[str], before_fine_tuning: bool = False
) -> dict[str, float]:
    """Measure -> the cell's fine-tuned model minus its base cell's, at the variant's layer, for the
    held-out pair of the source and `language` (NaN where either was not measured).

    With `before_fine_tuning`, the models the two cells started from instead: for a sequential variant,
    the aligned encoder minus the pretrained one (what alignment alone changed).
    """
    base = base_of(inputs, cell)
    if base is None or cell.layer is None:
        return {measure: math.nan for measure in measures}
    stage = FinishedCell.measures_before if before_fine_tuning else FinishedCell.measures
    own, reference = stage(cell), stage(base)
    pair = target_pair({key[0] for key in own}, cell.result.source_language, language)
    return {
        m: own.get((pair, cell.layer, m), math.nan) - reference.get((pair, cell.layer, m), math.nan) for m in measures
    }


def alignment_change(
    inputs: StudyInputs, cells: Sequence[FinishedCell], measure: str, before_fine_tuning: bool
) -> Summary:
    """Δ `measure` ([`delta_measures`]) of `cells`, averaged over their target languages per cell, then over cells."""
    per_cell = []
    for cell in cells:
        values = [
            delta_measures(inputs, cell, language, [measure], before_fine_tuning)[measure]
            for language in cell.result.target_languages
        ]
        per_cell.append(summarize(values).mean)
    return summarize(per_cell)


def measures_of_study(inputs: StudyInputs) -> list[str]:
    """The alignment measures any cell's `analysis.csv` has, in order of first appearance."""
    return list(dict.fromkeys(key[2] for cell in inputs.cells.values() for key in cell.measures()))


def transfer_points(inputs: StudyInputs) -> list[TransferPoint]:
    """A [`TransferPoint`] per (aligned variant, target language), in grid order."""
    measures = measures_of_study(inputs)
    points = []
    for (task, encoder, variant), cells in aligned_groups(inputs, "task", "encoder", "variant").items():
        for language in cells[0].result.target_languages:
            per_seed = [
                (delta_score(inputs, c, language), delta_measures(inputs, c, language, measures)) for c in cells
            ]
            points.append(
                TransferPoint(
                    task=task,
                    encoder=encoder,
                    variant=variant,
                    language=language,
                    delta_score=summarize(d for d, _ in per_seed).mean,
                    delta_measures={m: summarize(values[m] for _, values in per_seed).mean for m in measures},
                )
            )
    return points


def task_correlations(points: Sequence[TransferPoint], task: str, measures: Sequence[str]) -> dict[str, Correlation]:
    """Measure -> Spearman (and Pearson) of Δ measure vs Δ score across a task's languages and variants."""
    own = [point for point in points if point.task == task]
    return {m: correlate([p.delta_measures[m] for p in own], [p.delta_score for p in own]) for m in measures}


@dataclass
class GradientGroup:
    """The gradient measurements of the cells of one (task, objective, mode).

    Args:
        cells (`int`): finished cells of the group.
        measured (`int`): of them, cells with at least one measured step with a defined cosine.
        mean_cosine (`float`): mean over measured cells of each cell's mean task-vs-alignment cosine.
        norm_ratio (`float`): mean over measured cells of each cell's median ‖align grad‖ / ‖task grad‖.
    """

    task: str
    objective: str
    mode: str
    cells: int
    measured: int
    mean_cosine: float
    norm_ratio: float


def gradient_groups(inputs: StudyInputs) -> list[GradientGroup]:
    """A [`GradientGroup`] per (task, objective, mode) of the aligned cells."""
    rows = []
    for (task, objective, mode), cells in aligned_groups(inputs, "task", "objective", "mode").items():
        # each cell's own conflict_summary.json numbers, recomputed from its conflict.jsonl
        summaries = [summarize_conflict(cell.cell.conflict) for cell in cells]
        summaries = [s for s in summaries if math.isfinite(s.get("mean_cosine", math.nan))]
        rows.append(
            GradientGroup(
                task=task,
                objective=objective,
                mode=mode,
                cells=len(cells),
                measured=len(summaries),
                mean_cosine=summarize(s["mean_cosine"] for s in summaries).mean,
                norm_ratio=summarize(s["median_norm_ratio"] for s in summaries).mean,
            )
        )
    return rows


@dataclass
class Effect:
    """Did an objective help a task? Per seed, the mean Δ score over the group's cells (encoders, pairs)
    and their target languages; then over seeds.

    Args:
        per_seed (`dict[int, float]`): seed -> that seed's mean Δ score.
        delta (`Summary`): mean ± std of `per_seed` over seeds.
        agreeing (`int`): seeds whose mean Δ has the (strict) sign of the overall mean.
        targets (`int`): Δ values (cell × target language) behind the mean.
    """

    task: str
    objective: str
    mode: str
    per_seed: dict[int, float]
    delta: Summary
    agreeing: int
    targets: int

    @property
    def verdict(self) -> str:
        """`helped` / `hurt` when every seed's mean Δ has that sign, else `mixed` (or `no change`)."""
        signs = {math.copysign(1, value) if value else 0 for value in self.per_seed.values()}
        if signs == {1}:
            return "helped"
        if signs == {-1}:
            return "hurt"
        return "no change" if signs == {0} else "mixed"


def effects(inputs: StudyInputs) -> list[Effect]:
    """An [`Effect`] per (task, objective, mode) that has at least one Δ score."""
    rows = []
    for (task, objective, mode), cells in aligned_groups(inputs, "task", "objective", "mode").items():
        by_seed: dict[int, list[float]] = {}
        for cell in cells:
            deltas = [delta_score(inputs, cell, language) for language in cell.result.target_languages]
            by_seed.setdefault(cell.study_cell.seed, []).extend(d for d in deltas if math.isfinite(d))
        per_seed = {seed: statistics.fmean(values) for seed, values in sorted(by_seed.items()) if values}
        if not per_seed:
            continue
        delta = summarize(per_seed.values())
        agreeing = sum(value * delta.mean > 0 for value in per_seed.values())  # a Δ of exactly 0 agrees with none
        targets = sum(len(values) for values in by_seed.values())
        rows.append(Effect(task, objective, mode, per_seed, delta, agreeing, targets))
    return rows


@dataclass
class NearChance:
    """A base model that did not learn a task on its source language: Δs of that (encoder, task) compare
    models at chance."""

    encoder: str
    task: str
    source_score: float
    reference: float
    reference_name: str


def chance_reference(cell: FinishedCell) -> tuple[float, str] | None:
    """The score of guessing on the source language: the majority class's accuracy where the recipe
    recorded it (`details["majority_class"]`), else uniform chance over the recorded `labels`."""
    details, source = cell.result.details, cell.result.source_language
    majority = details.get("majority_class", {}).get("accuracy", {}).get(source)
    if isinstance(majority, (int, float)):
        return float(majority), "majority class"
    labels = details.get("labels")
    if isinstance(labels, list) and labels:
        return 1 / len(labels), f"chance (1/{len(labels)} labels)"
    return None


def near_chance(inputs: StudyInputs) -> list[NearChance]:
    """The (encoder, task)s whose base cells' mean source score is within [`NEAR_CHANCE_MARGIN`] of guessing."""
    flagged = []
    keys = dict.fromkeys((c.study_cell.encoder, c.study_cell.task) for c in inputs.cells.values())
    for encoder, task in keys:
        bases = cells_of(inputs, encoder=encoder, task=task, variant=BASE_VARIANT)
        references = [r for r in map(chance_reference, bases) if r is not None]
        if not references:
            continue
        score = summarize(cell.result.score(cell.result.source_language) for cell in bases).mean
        reference = summarize(value for value, _ in references).mean
        if math.isfinite(score) and score - reference < NEAR_CHANCE_MARGIN:
            flagged.append(NearChance(encoder, task, score, reference, references[0][1]))
    return flagged
