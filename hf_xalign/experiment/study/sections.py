"""The sections of the study report around its findings: header, results table, near-chance warning,
missing cells (the findings: [`~hf_xalign.experiment.study.findings`]). Each returns its Markdown lines.

No section names a study folder or a path outside the report, so merging `--cells` subsets run in
several folders gives the same report.md as one folder holding every cell.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ...formatting import number
from .inputs import StudyInputs
from .stats import NearChance, Summary, TableEntry, languages_of, table_entry

FLAG = "†"


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
            f"- `{cell}`: unfinished (a folder without its finished marker: failed, killed or running)"
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
