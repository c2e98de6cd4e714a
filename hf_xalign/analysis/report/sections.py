"""The sections of `xalign report`: one per run (scores, alignment per layer, transfer vs alignment,
gradients, what was not measured) and one across runs. Each returns its Markdown lines and writes its plots."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from ...conflict import summarize
from ...files import ANALYSIS_NAME, OUTCOMES_NAME, PLOTS_FOLDER
from ...formatting import gradient_summary_lines, number, with_interval
from ..plots import (
    ScatterPoint,
    plot_gradient_cosine,
    plot_gradient_norm_ratio,
    plot_layer_cosine_map,
    plot_measure_by_layer,
    plot_transfer_vs_distance,
)
from .inputs import BASE_MODEL, CellInputs, RunInputs
from .markdown import file_name, image
from .stats import (
    AnalysisIndex,
    TransferRow,
    correlate,
    delta_interval_of,
    measure_agreement,
    measures_of,
    score_interval_of,
    transfer_rows,
)
from .text import (
    agreement_sentence,
    alignment_change_sentence,
    best_predictor_sentence,
    correlation_sentences,
    delta_sentence,
    transfer_change_sentence,
)


def run_labels(runs: Sequence[RunInputs]) -> list[str]:
    """A short, unique name per run for headings and plot folders: the folder's name (`-2`, `-3` on repeats)."""
    labels: list[str] = []
    for run in runs:
        base = file_name(os.path.basename(os.path.abspath(run.folder))) or "run"
        label, count = base, 1
        while label in labels:
            count += 1
            label = f"{base}-{count}"
        labels.append(label)
    return labels


def run_section(label: str, run: RunInputs, reference_name: str, folder: str) -> tuple[list[str], list[TransferRow]]:
    """The Markdown of one run, its plots written under `folder/plots/<label>/`, and its [`TransferRow`]s.

    Args:
        label (`str`): the run's name in the report (from [`run_labels`]).
        run ([`RunInputs`]): what was read from the run folder.
        reference_name (`str`): the cell Δ scores subtract; a run without it gets no Δ sections.
        folder (`str`): the report folder being rendered.
    """
    plots = f"{PLOTS_FOLDER}/{label}"
    os.makedirs(os.path.join(folder, plots))
    reference = run.cell(reference_name)
    first, notes = run.first, []
    layers = ", ".join(f"{cell.name}: {cell.layer}" for cell in run.cells if cell.layer is not None)
    lines = [
        f"## Run `{label}`",
        "",
        f"Task {first.task}, metric {first.metric}, trained on {first.source_language}; cells: "
        f"{', '.join(cell.name for cell in run.cells)}" + (f"; alignment layer {layers}." if layers else "."),
        "",
    ]
    lines += _scores_lines(run, reference, notes)
    rows = transfer_rows(label, run, reference)
    if run.analysis:
        lines += _layers_lines(run, reference, rows, folder, plots, notes)
        if reference is not None:
            lines += _transfer_lines(run, rows, folder, plots)
    lines += _gradient_lines(run, folder, plots)
    lines += _not_measured_lines(run, reference_name, notes)
    return lines, rows


def _scores_lines(run: RunInputs, reference: CellInputs | None, notes: list[str]) -> list[str]:
    """The per-language table (scores with intervals, Δ with paired intervals) and the Δ-excludes-0 sentences."""
    first = run.first
    compared = [cell for cell in run.cells if reference is not None and cell.name != reference.name]
    header = [cell.name for cell in run.cells] + [f"Δ {cell.name} − {reference.name}" for cell in compared]
    lines = [
        f"### {first.metric} per language",
        "",
        "| language | " + " | ".join(header) + " |",
        "|---|" + "---:|" * len(header),
    ]
    languages = list(dict.fromkeys(language for cell in run.cells for language in cell.result.languages))
    deltas: dict[str, dict] = {cell.name: {} for cell in compared}
    for language in languages:
        values = [with_interval(c.result.score(language), score_interval_of(c, language, notes)) for c in run.cells]
        for cell in compared:
            delta = cell.result.score(language) - reference.result.score(language)
            interval = delta_interval_of(cell, reference, language, notes) if math.isfinite(delta) else None
            values.append(with_interval(delta, interval, signed=True))
            if math.isfinite(delta):
                deltas[cell.name][language] = (delta, interval)
        name = f"{language} (source)" if language == first.source_language else language
        lines.append(f"| {name} | " + " | ".join(values) + " |")
    lines.append("")
    for cell in compared:
        lines += [delta_sentence(first.metric, cell.name, reference.name, deltas[cell.name]), ""]
    return lines


def _layers_lines(
    run: RunInputs, reference: CellInputs | None, rows: Sequence[TransferRow], folder: str, plots: str, notes: list[str]
) -> list[str]:
    """Each measure per layer (base vs cells), and how much each cell moved it at its alignment layer."""
    index = AnalysisIndex(run.analysis)
    measures = measures_of(run.analysis)
    cells = [name for name in index.models if name != BASE_MODEL]
    lines = ["### Alignment per layer, before and after training", ""]
    for cell in run.cells:
        if reference is not None and cell.name == reference.name:
            continue
        if cell.layer is None:
            notes.append(f"the alignment layer of cell {cell.name} (no alignment_config.json, no alignment_layer)")
            continue
        if cell.layer not in index.layers:
            notes.append(
                f"the measures of cell {cell.name} at its alignment layer {cell.layer} (not in {ANALYSIS_NAME})"
            )
            continue
        cell_rows = [row for row in rows if row.cell == cell.name]
        lines += [alignment_change_sentence(m, cell.name, cell.layer, cell_rows) for m in measures] + [""]
    layers = {cell.name: cell.layer for cell in run.cells}
    for measure in measures:
        path = f"{plots}/measures_{file_name(measure)}.png"
        plot_measure_by_layer(run.analysis, measure, cells, layers, os.path.join(folder, path))
        lines += image(f"{measure} per layer", path)
    return lines


def _transfer_lines(run: RunInputs, rows: Sequence[TransferRow], folder: str, plots: str) -> list[str]:
    """Per aligned cell: Δ score vs Δ measure, correlations, and how far the measures agree with each other."""
    metric, measures = run.first.metric, measures_of(run.analysis)
    measured_layers = AnalysisIndex(run.analysis).layers
    lines = ["### Transfer change vs alignment change", ""]
    for cell in run.cells:
        cell_rows = [row for row in rows if row.cell == cell.name and math.isfinite(row.delta_score)]
        if not cell_rows or cell.layer not in measured_layers:  # the layers section says why
            continue
        lines += [transfer_change_sentence(metric, cell.name, cell_rows[0].reference, cell_rows), ""]
        correlations = {
            m: correlate([r.delta_measures[m] for r in cell_rows], [r.delta_score for r in cell_rows]) for m in measures
        }
        x_names = {m: f"Δ {m} at layer {cell.layer} ({cell.name})" for m in measures}
        lines += correlation_sentences(f"Δ {metric}", x_names, correlations)
        best = best_predictor_sentence(metric, correlations)
        lines += ["", best, ""] if best else [""]
        points = {
            m: [ScatterPoint(r.language, cell.name, r.delta_measures[m], r.delta_score) for r in cell_rows]
            for m in measures
        }
        path = f"{plots}/transfer_{file_name(cell.name)}.png"
        plot_transfer_vs_distance(
            points,
            correlations,
            f"Δ {{measure}} at layer {cell.layer} ({cell.name} − base)",
            f"Δ {metric} ({cell.name} − {cell_rows[0].reference})",
            f"Transfer change vs alignment change, one point per target language ({cell.name})",
            os.path.join(folder, path),
        )
        lines += image(f"Δ {metric} vs Δ measure ({cell.name})", path)
        lines += _agreement_lines(cell_rows, measures)
    return lines


def _agreement_lines(rows: Sequence[TransferRow], measures: Sequence[str]) -> list[str]:
    """Spearman ρ across languages between every two measures' changes, oriented so that up = closer."""
    agreement = measure_agreement(rows, measures)
    if all(correlation.undefined for correlation in agreement.values()):
        return [agreement_sentence(agreement), ""]
    lines = [
        "Do the measures agree? Spearman ρ across target languages between the changes of two measures "
        "(pair_l2's sign flipped, so that for every measure up means closer):",
        "",
        "| | " + " | ".join(measures) + " |",
        "|---|" + "---:|" * len(measures),
    ]
    for first in measures:
        cells = []
        for second in measures:
            correlation = agreement.get((first, second)) or agreement.get((second, first))
            cells.append("1" if first == second else number(correlation.spearman, digits=3))
        lines.append(f"| {first} | " + " | ".join(cells) + " |")
    return lines + ["", agreement_sentence(agreement), ""]


def _gradient_lines(run: RunInputs, folder: str, plots: str) -> list[str]:
    """The gradient measurements of the cells that have them: sentences, lines over training, per-layer maps."""
    cells = [cell for cell in run.cells if cell.conflict]
    if not cells:
        return []
    lines = ["### Task vs alignment gradients", ""]
    for cell in cells:
        lines += gradient_summary_lines(summarize(cell.conflict), cell.name)
    lines.append("")
    for name, plot in (("gradient_cosine", plot_gradient_cosine), ("gradient_norm_ratio", plot_gradient_norm_ratio)):
        path = f"{plots}/{name}.png"
        plot(cells, os.path.join(folder, path))
        lines += image(name.replace("_", " "), path)
    for cell in cells:
        if any(group.startswith("layer.") for m in cell.conflict for group in m.per_group):
            path = f"{plots}/gradient_layers_{file_name(cell.name)}.png"
            plot_layer_cosine_map(cell, os.path.join(folder, path))
            lines += image(f"gradient cosine per layer ({cell.name})", path)
    return lines


def _not_measured_lines(run: RunInputs, reference: str, notes: Sequence[str]) -> list[str]:
    """What this run's report could not show, and why."""
    missing = []
    if run.cell(reference) is None:
        names = ", ".join(cell.name for cell in run.cells)
        missing.append(f"Δ against `{reference}` (the run has no such cell; its cells: {names})")
    if run.analysis is None:
        missing.append(f"alignment per layer (no {ANALYSIS_NAME}: run the recipe with `analysis: true`)")
    elif not any(row["model"] == BASE_MODEL for row in run.analysis):
        missing.append(f"the base model's alignment (no `{BASE_MODEL}` rows in {ANALYSIS_NAME}), so no Δ measure")
    for cell in run.cells:
        if cell.outcomes is None:
            missing.append(f"per-example outcomes of cell {cell.name} (no {OUTCOMES_NAME})")
        if cell.aligns and not cell.conflict:
            missing.append(f"the gradients of cell {cell.name} (no conflict.jsonl: measured with conflict_every > 0)")
    missing += notes
    if not missing:
        return []
    return ["### Not measured", "", *(f"- {item}" for item in missing), ""]


def combined_section(runs: Sequence[RunInputs], rows: Sequence[TransferRow], folder: str) -> list[str]:
    """One scatter over all runs, a point per (run, cell, language), when the runs share a task and metric."""
    lines = ["## Across runs", ""]
    kinds = sorted({(run.first.task, run.first.metric) for run in runs})
    if len(kinds) > 1:
        listed = ", ".join(f"{task}/{metric}" for task, metric in kinds)
        return lines + [f"The runs differ in task or metric ({listed}): no combined scatter.", ""]
    metric = kinds[0][1]
    measures = [
        m for m in measures_of(runs[0].analysis or []) if all(m in measures_of(r.analysis or []) for r in runs[1:])
    ]
    rows = [row for row in rows if math.isfinite(row.delta_score)]
    if not measures or not rows:
        return lines + ["Not every run measured alignment against a reference: no combined scatter.", ""]
    several_cells = len({(row.run, row.cell) for row in rows}) > len(runs)
    correlations = {m: correlate([r.delta_measures[m] for r in rows], [r.delta_score for r in rows]) for m in measures}
    x_names = {m: f"Δ {m} at each cell's alignment layer" for m in measures}
    lines += [
        f"Across {len(runs)} runs, " + line for line in correlation_sentences(f"Δ {metric}", x_names, correlations)
    ]
    best = best_predictor_sentence(metric, correlations)
    lines += ["", best, ""] if best else [""]
    points = {
        m: [
            ScatterPoint(
                r.language, f"{r.run}/{r.cell}" if several_cells else r.run, r.delta_measures[m], r.delta_score
            )
            for r in rows
        ]
        for m in measures
    }
    path = f"{PLOTS_FOLDER}/combined_transfer.png"
    plot_transfer_vs_distance(
        points,
        correlations,
        "Δ {measure} at the alignment layer (cell − base)",
        f"Δ {metric} (cell − reference)",
        f"Transfer change vs alignment change across {len(runs)} runs, one point per (run, language)",
        os.path.join(folder, path),
    )
    return lines + image(f"Δ {metric} vs Δ measure across runs", path)
