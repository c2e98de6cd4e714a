"""The sections of the study report: each returns its Markdown lines and writes its plots.

No section names a study folder or a path outside the report, so merging `--cells` subsets run in
several folders gives the same report.md as one folder holding every cell.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence

from ..analysis.plots import ScatterPoint, plot_measure_by_layer, plot_transfer_vs_distance
from ..analysis.report_inputs import BASE_MODEL
from ..analysis.report_stats import Correlation, correlate
from ..analysis.report_text import best_predictor_sentence, number
from .study import BASE_VARIANT
from .study_inputs import StudyInputs
from .study_stats import (
    Effect,
    NearChance,
    Summary,
    TableEntry,
    TransferPoint,
    aligned_groups,
    alignment_change,
    cells_of,
    effects,
    gradient_groups,
    languages_of,
    summarize,
    table_entry,
    task_correlations,
)

PLOTS_FOLDER = "plots"
LAYER_PLOT_MEASURES = ("retrieval_src_to_tgt", "pair_cosine")  # per layer, base vs variants: a figure each
FLAG = "†"
SIGNIFICANCE = 0.05  # the p-value below which the report counts a correlation (uncorrected for the many tests)


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def _summary_text(summary: Summary, several_seeds: bool, signed: bool = False) -> str:
    """`0.8123`, or over several seeds `0.8123 ± 0.0040`; `–` when no seed has a value."""
    if summary.n == 0:
        return "–"
    text = number(summary.mean, signed)
    return f"{text} ± {number(summary.std)}" if several_seeds and summary.n > 1 else text


def entry_text(entry: TableEntry, several_seeds: bool) -> str:
    """A results-table entry: `score (Δ)`, with `± std` and `n=` over several seeds; `missing` without cells."""
    if entry.score.n == 0:
        return "missing"
    text = _summary_text(entry.score, several_seeds)
    if entry.delta is not None:
        text += f" ({_summary_text(entry.delta, several_seeds, signed=True)})"
    return text + (f", n={entry.score.n}" if several_seeds else "")


def _variants(inputs: StudyInputs) -> list[tuple[str, str]]:
    """(encoder, variant) rows in grid order."""
    return list(dict.fromkeys((cell.encoder, cell.variant) for cell in inputs.grid))


def tasks_of(inputs: StudyInputs) -> list[str]:
    return list(dict.fromkeys(cell.task for cell in inputs.grid))


def results_section(inputs: StudyInputs, flagged: Sequence[NearChance]) -> list[str]:
    """Rows = encoder × variant, columns = task × language (and the target average): `score (Δ to base)`."""
    several_seeds = len({cell.seed for cell in inputs.grid}) > 1
    columns = []  # (task, header, value_of)
    for task in tasks_of(inputs):
        languages = languages_of(inputs, task)
        for index, language in enumerate(languages):
            header = f"{task} {language}" + (" (source)" if index == 0 else "")
            columns.append((task, header, lambda result, language=language: result.score(language)))
        if languages:
            columns.append((task, f"{task} targets avg", lambda result: result.target_average()))
        else:  # no cell of the task finished: its languages are not known yet
            columns.append((task, task, lambda result: math.nan))
    flags = {(f.encoder, f.task) for f in flagged}
    lines = [
        "## Results",
        "",
        "Each entry: score (Δ to the base variant of the same encoder, task and seed)"
        + (", mean ± std over seeds (sample std, n − 1), n = seeds finished." if several_seeds else "."),
        "",
        "| model | " + " | ".join(header for _, header, _ in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for encoder, variant in _variants(inputs):
        entries = []
        for task, _, value_of in columns:
            text = entry_text(table_entry(inputs, encoder, variant, task, value_of), several_seeds)
            entries.append(text + (f" {FLAG}" if (encoder, task) in flags and text != "missing" else ""))
        lines.append(f"| {encoder} {variant} | " + " | ".join(entries) + " |")
    return lines + [""]


def near_chance_lines(flagged: Sequence[NearChance]) -> list[str]:
    """The warning that comes before any Δ: where the base model did not learn the task on its source language."""
    if not flagged:
        return []
    lines = [f"**{FLAG} Base model near chance**: Δs there compare models that did not learn the task:", ""]
    lines += [
        f"- {f.encoder} on {f.task}: base source-language score {number(f.source_score)}, "
        f"{f.reference_name} {number(f.reference)}."
        for f in flagged
    ]
    return lines + [""]


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
    lines += [f"![Δ score vs Δ measure, all tasks pooled (correlation in each panel)]({path})", ""]
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
        "| task | objective | mode | mean cosine | ‖align‖/‖task‖ | cells measured |",
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
                path = f"{PLOTS_FOLDER}/layers_{_file_name(encoder)}_{_file_name(task)}_{measure}.png"
                plot_measure_by_layer(rows, measure, labels, layers, os.path.join(folder, path))
                lines += [f"![{measure} per layer, {encoder} on {task}]({path})", ""]
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


def missing_section(inputs: StudyInputs) -> list[str]:
    """The cells the grid names that are not finished, clearly marked; finished cells outside the grid."""
    lines = ["## Missing cells", ""]
    if not inputs.missing and not inputs.outside_grid:
        return lines + [f"None: all {len(inputs.grid)} cells of the grid are finished.", ""]
    if inputs.missing:
        lines += [
            f"**{len(inputs.missing)} of {len(inputs.grid)} cells are missing**; the tables above leave them out "
            "(`missing`, or fewer seeds in n):",
            "",
        ]
        lines += [
            f"- `{cell}`: unfinished (a folder without cell.json: failed, killed or running)"
            for cell in inputs.unfinished
        ]
        lines += [f"- `{cell}`: not run" for cell in inputs.not_started]
        lines.append("")
    if inputs.outside_grid:
        listed = ", ".join(f"`{cell}`" for cell in inputs.outside_grid)
        lines += [f"Finished cells that study.yaml does not name, left out: {listed}.", ""]
    return lines


def header_lines(inputs: StudyInputs) -> list[str]:
    finished = len(inputs.cells)
    seconds = sum(cell.seconds for cell in inputs.cells.values() if math.isfinite(cell.seconds))
    encoders = ", ".join(dict.fromkeys(cell.encoder for cell in inputs.grid))
    variants = ", ".join(dict.fromkeys(cell.variant for cell in inputs.grid))
    seeds = ", ".join(str(seed) for seed in dict.fromkeys(cell.seed for cell in inputs.grid))
    missing = f"; **{len(inputs.missing)} missing** (see Missing cells)" if inputs.missing else ""
    metrics = {cell.study_cell.task: cell.result.metric for cell in reversed(inputs.cells.values())}
    tasks = ", ".join(f"{task} ({metrics.get(task, 'not run')})" for task in tasks_of(inputs))
    return [
        "# Study report: does alignment help cross-lingual transfer?",
        "",
        f"{finished} of {len(inputs.grid)} cells finished{missing}; {seconds:.0f} s of cell time.",
        f"Encoders: {encoders}. Variants: {variants}. Seeds: {seeds}. Tasks (main score): {tasks}.",
        "",
        "Δ: a cell minus the base cell of the same task, encoder and seed. Layer k = hidden_states[k], "
        "0 = embedding output.",
        "",
    ]
