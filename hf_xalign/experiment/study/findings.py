"""The findings of the study report, computed from the finished cells: does the change in alignment predict
the change in transfer, the task vs alignment gradients, which objective helped or hurt which task, and
alignment per layer. Each section returns its Markdown lines and writes its plots.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ...analysis.plots import ScatterPoint, plot_measure_by_layer, plot_transfer_vs_distance
from ...analysis.report.inputs import BASE_MODEL
from ...analysis.report.markdown import file_name, image
from ...analysis.report.stats import Correlation, correlate
from ...analysis.report.text import best_predictor_sentence
from ...files import PLOTS_FOLDER
from ...formatting import number
from .inputs import StudyInputs
from .sections import FLAG, tasks_of
from .spec import BASE_VARIANT
from .stats import (
    Effect,
    NearChance,
    TransferPoint,
    aligned_groups,
    alignment_change,
    cells_of,
    effects,
    gradient_groups,
    summarize,
    task_correlations,
)

LAYER_PLOT_MEASURES = ("retrieval_src_to_tgt", "pair_cosine")  # per layer, base vs variants: a figure each
SIGNIFICANCE = 0.05  # the p-value below which the report counts a correlation (uncorrected for the many tests)


def _correlation_cells(correlation: Correlation) -> str:
    if correlation.undefined:
        return f"undefined ({correlation.undefined}) | – | {correlation.n}"
    return f"{correlation.spearman:.3f} | {correlation.spearman_p:.3g} | {correlation.n}"


def transfer_section(
    inputs: StudyInputs, points: Sequence[TransferPoint], measures: Sequence[str], folder: str
) -> list[str]:
    """Per task and measure: Spearman of Δ measure vs Δ score over languages and variants; the scatter."""
    lines = [
        "### Does the change in alignment predict the change in transfer?",
        "",
        "One point per (encoder, aligned variant, target language), seeds averaged: Δ measure = the variant's "
        "fine-tuned model minus the base variant's, at the layer the variant aligned, on held-out pairs of the "
        "source and the target language; Δ score as in the results table.",
        "",
    ]
    if not points:
        return lines + ["No aligned cell finished.", ""]
    if not measures:
        return lines + ["Not measured: no cell has an analysis.csv (run the tasks with `analysis: true`).", ""]
    lines += ["| task | measure | Spearman ρ | p | n |", "|---|---|---:|---:|---:|"]
    sentences = []
    for task in tasks_of(inputs):
        correlations = task_correlations(points, task, measures)
        for measure, correlation in correlations.items():
            lines.append(f"| {task} | Δ {measure} | {_correlation_cells(correlation)} |")
        sentences.append(_correlation_finding(task, cells_of(inputs, task=task), correlations))
    lines += [""] + [sentence for sentence in sentences if sentence] + [""]
    scatter = {
        m: [ScatterPoint(p.language, p.task, p.delta_measures[m], p.delta_score) for p in points] for m in measures
    }
    pooled = {m: correlate([p.x for p in scatter[m]], [p.y for p in scatter[m]]) for m in measures}
    path = f"{PLOTS_FOLDER}/transfer_vs_alignment.png"
    plot_transfer_vs_distance(
        scatter,
        pooled,
        "Δ {measure} at the aligned layer (variant − base)",
        "Δ score (variant − base)",
        "Transfer change vs alignment change, a point per (variant, target language), colour = task",
        os.path.join(folder, path),
    )
    lines += image("Δ score vs Δ measure, all tasks pooled (correlation in each panel)", path)
    return lines + _alignment_change_lines(inputs, [m for m in LAYER_PLOT_MEASURES if m in measures])


def _correlation_finding(task: str, cells: Sequence, correlations: dict[str, Correlation]) -> str | None:
    """`pos: the measure whose change ranks ... most like Δ accuracy: ...; p < 0.05 for 1 of 6 measures.`"""
    defined = [c for c in correlations.values() if c.spearman_p is not None]
    best = best_predictor_sentence(cells[0].result.metric, correlations) if cells else None
    if best is None:
        return None
    significant = sum(c.spearman_p < SIGNIFICANCE for c in defined)
    return f"- {task}: {best} p < {SIGNIFICANCE} for {significant} of {len(defined)} measures."


def _alignment_change_lines(inputs: StudyInputs, measures: Sequence[str]) -> list[str]:
    """Did alignment bring translations closer, and did it last through fine-tuning? Δ measure before and
    after fine-tuning per variant, averaged over target languages and seeds."""
    if not measures:
        return []
    lines = [
        "Δ measure at the aligned layer (variant − base variant), mean over target languages and seeds: "
        "before fine-tuning (the models the cells started from: for sequential variants the aligned encoder "
        "minus the pretrained one; joint variants start from the pretrained one) and after.",
        "",
        "| task | encoder | variant | measure | before fine-tuning | after fine-tuning |",
        "|---|---|---|---|---:|---:|",
    ]
    for (task, encoder, variant), cells in aligned_groups(inputs, "task", "encoder", "variant").items():
        for measure in measures:
            before, after = (alignment_change(inputs, cells, measure, stage).mean for stage in (True, False))
            lines.append(
                f"| {task} | {encoder} | {variant} | Δ {measure} | {number(before, signed=True)} | "
                f"{number(after, signed=True)} |"
            )
    return lines + [""]


def gradient_section(inputs: StudyInputs) -> list[str]:
    """Mean task-vs-alignment gradient cosine and norm ratio per task, objective and mode."""
    groups = gradient_groups(inputs)
    lines = ["### Task vs alignment gradients", ""]
    if not groups:
        return lines + ["No aligned cell finished.", ""]
    lines += [
        "Per cell, the mean cosine over measured steps and the median ‖align grad‖ / ‖task grad‖ "
        "(conflict.jsonl); then the mean over the cells of the group.",
        "",
        "| task | objective | mode | mean cosine | median ‖align‖/‖task‖ | cells measured |",
        "|---|---|---|---:|---:|---:|",
    ]
    for g in groups:
        if g.measured == 0:
            why = " (aligned before fine-tuning: no task gradient)" if g.mode == "sequential" else ""
            values = f"not measured{why} | – "
        else:
            values = f"{number(g.mean_cosine, signed=True)} | {number(g.norm_ratio, digits=3)} "
        lines.append(f"| {g.task} | {g.objective} | {g.mode} | {values}| {g.measured} of {g.cells} |")
    return lines + [""]


def effect_sentence(effect: Effect, metric_of_task: str, flagged: bool) -> str:
    """`pos: contrastive (sequential) hurt: mean Δ accuracy −0.0123 ± 0.0040 ...; 2 of 2 seeds agree.`"""
    seeds = len(effect.per_seed)
    spread = f" ± {number(effect.delta.std)}" if seeds > 1 else ""
    return (
        f"{effect.task}: {effect.objective} ({effect.mode}) {effect.verdict}: mean Δ {metric_of_task} "
        f"{number(effect.delta.mean, signed=True)}{spread} over {effect.targets} target-language scores; "
        f"{effect.agreeing} of {seeds} seeds agree in sign" + (f" {FLAG}" if flagged else "") + "."
    )


def effect_section(inputs: StudyInputs, flagged: Sequence[NearChance]) -> list[str]:
    """Which objective helped or hurt which task, by how much, and how many seeds agree."""
    lines = ["### Which objective helped or hurt which task", ""]
    rows = effects(inputs)
    if not rows:
        return lines + ["No aligned cell with a finished base cell: no Δ to compare.", ""]
    lines += [
        "Per seed, the mean Δ score over the objective's cells (encoders, pairs) and their target languages; "
        "helped / hurt: every seed's mean Δ has that sign, else mixed.",
        "",
    ]
    flags = {f.task for f in flagged}
    for effect in rows:
        metric = cells_of(inputs, task=effect.task)[0].result.metric
        lines.append(f"- {effect_sentence(effect, metric, effect.task in flags)}")
    return lines + [""]


def layer_section(inputs: StudyInputs, folder: str) -> list[str]:
    """Per encoder and task: retrieval and cosine per layer, the pretrained base against every variant's
    fine-tuned model (seeds averaged), each variant's aligned layer dotted."""
    lines = ["## Alignment per layer", ""]
    drawn = False
    for encoder in dict.fromkeys(cell.encoder for cell in inputs.grid):
        for task in tasks_of(inputs):
            cells = cells_of(inputs, encoder=encoder, task=task)
            rows, layers = _layer_rows(inputs, encoder, task), {}
            for cell in cells:
                layers.setdefault(_model_label(cell.study_cell.variant), cell.layer)
            labels = list(dict.fromkeys(row["model"] for row in rows if row["model"] != BASE_MODEL))
            for measure in [m for m in LAYER_PLOT_MEASURES if any(row["measure"] == m for row in rows)]:
                path = f"{PLOTS_FOLDER}/layers_{file_name(encoder)}_{file_name(task)}_{measure}.png"
                plot_measure_by_layer(rows, measure, labels, layers, os.path.join(folder, path))
                lines += image(f"{measure} per layer, {encoder} on {task}", path)
                drawn = True
    if not drawn:
        return lines + ["Not measured: no cell has an analysis.csv (run the tasks with `analysis: true`).", ""]
    return lines


def _model_label(variant: str) -> str:
    return "base fine-tuned" if variant == BASE_VARIANT else variant


def _layer_rows(inputs: StudyInputs, encoder: str, task: str) -> list[dict]:
    """analysis.csv-like rows: `base` = the pretrained encoder (from the base cells), and each variant's
    fine-tuned model, each value the mean over seeds."""
    values: dict[tuple[str, str, int, str], list[float]] = {}
    for cell in cells_of(inputs, encoder=encoder, task=task):
        measured = [(_model_label(cell.study_cell.variant), cell.measures())]
        if cell.study_cell.variant == BASE_VARIANT:
            measured.append((BASE_MODEL, cell.measures_before()))
        for model, measures in measured:
            for (pair, layer, measure), value in measures.items():
                values.setdefault((model, pair, layer, measure), []).append(value)
    return [
        {"model": model, "pair": pair, "layer": layer, "measure": measure, "value": summarize(found).mean}
        for (model, pair, layer, measure), found in values.items()
    ]
