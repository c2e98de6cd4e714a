"""The results of an experiment's cells: `results.jsonl` (one line per cell) and `results.md` (the table)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from ..files import RESULTS_JSONL, RESULTS_MARKDOWN
from ..formatting import gradient_summary_lines, number, with_interval
from ..results import CellResult


def write_results(results: Sequence[CellResult], output_dir: str, reference: str | None = None) -> None:
    """Write `results.md` (Δ of every cell against the `reference` cell) and `results.jsonl` into `output_dir`."""
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, RESULTS_MARKDOWN), "w", encoding="utf-8") as f:
        f.write(results_markdown(results, reference))
        for result in results:
            if result.conflict_summary:
                f.write("\n" + conflict_markdown(result.conflict_summary, result.name))
    with open(os.path.join(output_dir, RESULTS_JSONL), "w", encoding="utf-8") as f:
        f.writelines(json.dumps(result.to_dict(), ensure_ascii=False) + "\n" for result in results)


def read_results(path: str) -> list[CellResult]:
    """The cells of a `results.jsonl` file (or of the one in folder `path`), in order."""
    if os.path.isdir(path):
        path = os.path.join(path, RESULTS_JSONL)
    with open(path, encoding="utf-8") as f:
        return [CellResult.from_dict(json.loads(line)) for line in f if line.strip()]


def results_markdown(results: Sequence[CellResult], reference: str | None = None) -> str:
    """Per-language table: one column per cell, then `Δ (cell − reference)` for every other cell.

    A score is followed by its 95% bootstrap interval and a Δ by its paired interval, where the
    cells have them (`[low, high]`). The last row is the macro average over the target languages.
    Cells must share the task's metric and source language.
    """
    if not results:
        raise ValueError("no cell results to tabulate")
    first = results[0]
    names = [result.name for result in results]
    if reference is not None and reference not in names:
        reference = None  # e.g. `compare: false`: no baseline cell to subtract
    by_name = {result.name: result for result in results}
    compared = [name for name in names if reference is not None and name != reference]
    header = ["language", *names] + [f"Δ ({name} − {reference})" for name in compared]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]

    def row(label: str, value_of: Any, language: str | None = None) -> str:
        values = {name: value_of(by_name[name]) for name in names}
        cells = [with_interval(values[n], by_name[n].intervals.get(language)) for n in names]
        cells += [
            with_interval(
                values[n] - values[reference],
                by_name[n].delta_intervals.get(language) if by_name[n].reference == reference else None,
                signed=True,
            )
            for n in compared
        ]
        return f"| {label} | " + " | ".join(cells) + " |"

    languages = list(dict.fromkeys(language for result in results for language in result.languages))
    for language in languages:
        label = f"{language} (source)" if language == first.source_language else language
        lines.append(row(label, lambda result, language=language: result.score(language), language))
    lines.append(row("**macro avg (targets)**", lambda result: result.target_average()))
    title = f"{first.metric} per language, trained on {first.source_language} only"
    if any(result.intervals for result in results):
        title += " ([95% bootstrap interval over test examples]; Δ: paired)"
    return f"{title}\n\n" + "\n".join(lines) + "\n"


def conflict_markdown(summary: Mapping[str, Any], cell: str) -> str:
    """A cell's gradient-conflict summary as a short Markdown section: the sentences of
    [`hf_xalign.formatting.gradient_summary_lines`], then the mean cosine and median norm ratio per parameter group."""
    lines = [f"- {line}" for line in gradient_summary_lines(summary, cell)]
    lines += ["", "| group | mean cosine | median ‖align‖/‖task‖ |", "|---|---:|---:|"]
    for group, values in summary.get("per_group", {}).items():
        lines.append(
            f"| {group} | {number(values.get('mean_cosine'), signed=True)} | "
            f"{number(values.get('median_norm_ratio'), digits=3)} |"
        )
    return "\n".join(lines) + "\n"
