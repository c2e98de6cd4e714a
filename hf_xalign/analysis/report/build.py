"""`xalign report`: does better alignment, as embedding distances measure it, predict better transfer?

The paper this package follows found that it often does not, and that distance measures disagree
with one another. The report lets anyone see that finding, or its opposite, on their own runs. It
reads one or more run folders (see [`~hf_xalign.analysis.report.inputs`]) and writes:

```
<output>/report/
    report.md           scores with 95% intervals, Δ with paired intervals, one computed sentence per finding
    report_table.csv    the numbers the correlations use: run, cell, reference, language, layer, metric,
                        delta_score, delta_<measure>... (an empty field: not measured)
    plots/<run>/measures_<measure>.png    each measure per layer, base model vs cells, a panel per language pair
    plots/<run>/transfer_<cell>.png       Δ score vs Δ measure at the alignment layer, a point per language
    plots/<run>/gradient_cosine.png       task vs alignment gradient cosine over training
    plots/<run>/gradient_layers_<cell>.png  the same per layer group, layer × step heat map
    plots/<run>/gradient_norm_ratio.png   ‖align grad‖ / ‖task grad‖ over training
    plots/combined_transfer.png           with several runs of one task and metric: a point per (run, language)
```

Δ score is a cell minus the reference cell (`baseline` by default); Δ measure is a cell minus the
base model (the pretrained model before any training), at the layer the cell's alignment losses read.
Sections whose inputs are missing are left out, and the report lists what was not measured.

Example:

```python
>>> from hf_xalign.analysis.report.build import build_report
>>> build_report(["runs/pos", "runs/xnli"])
'runs/pos/report/report.md'
```
"""

from __future__ import annotations

import csv
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence

from ...files import REPORT_FOLDER, REPORT_MARKDOWN, REPORT_TABLE
from .inputs import RunInputs, read_run
from .sections import combined_section, run_labels, run_section
from .stats import TransferRow

__all__ = ["REPORT_FOLDER", "build_report", "write_report_folder"]


def build_report(run_dirs: Sequence[str], output_dir: str | None = None, reference: str = "baseline") -> str:
    """Write the alignment-vs-transfer report of `run_dirs` into `output_dir/report/`; return the path of report.md.

    Every input is read and checked first, and the report is rendered into a temporary folder that
    replaces `output_dir/report` only once complete: on an error nothing is written.

    Args:
        run_dirs (`Sequence[str]`): run folders (a recipe's `output_dir`, with `results.jsonl`); one
            section each, and a combined scatter when they share a task and metric.
        output_dir (`str`, *optional*): where the `report` folder goes; defaults to the first run folder.
        reference (`str`, *optional*, defaults to `"baseline"`): the cell every Δ score subtracts.

    Raises:
        [`~hf_xalign.analysis.report.inputs.RunFolderError`]: a folder without `results.jsonl`, or an empty one.
        [`~hf_xalign.data.DataFileError`]: a malformed input line, naming file and line.
    """
    if not run_dirs:
        raise ValueError("xalign report needs at least one run folder")
    runs = [read_run(os.fspath(folder)) for folder in run_dirs]
    output_dir = os.fspath(output_dir if output_dir is not None else run_dirs[0])
    return write_report_folder(output_dir, lambda folder: _render(runs, reference, folder))


def write_report_folder(output_dir: str, render: Callable[[str], None]) -> str:
    """Run `render(folder)` on an empty temporary folder, which then replaces `output_dir/report`; return the
    path of its report.md. On an error nothing is left behind (nor `output_dir`, if this call created it)."""
    created = not os.path.isdir(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".report-", dir=output_dir)
    try:
        render(staging)
        _replace_folder(staging, os.path.join(output_dir, REPORT_FOLDER))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            shutil.rmtree(output_dir, ignore_errors=True)
        raise
    return os.path.join(output_dir, REPORT_FOLDER, REPORT_MARKDOWN)


def _replace_folder(new: str, target: str) -> None:
    """Put folder `new` at `target`; a previous `target` is removed only after the new one is in place."""
    if not os.path.exists(target):
        os.replace(new, target)
        return
    previous = new + ".previous"
    os.replace(target, previous)
    os.replace(new, target)
    shutil.rmtree(previous)


def _render(runs: Sequence[RunInputs], reference: str, folder: str) -> None:
    labels = run_labels(runs)
    lines = _header(runs, labels, reference)
    rows: list[TransferRow] = []
    for label, run in zip(labels, runs):
        run_lines, run_rows = run_section(label, run, reference, folder)
        lines += run_lines
        rows += run_rows
    if len(runs) > 1:
        lines += combined_section(runs, rows, folder)
    _write_table(rows, os.path.join(folder, REPORT_TABLE))
    with open(os.path.join(folder, REPORT_MARKDOWN), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def _header(runs: Sequence[RunInputs], labels: Sequence[str], reference: str) -> list[str]:
    listed = ", ".join(f"`{label}` ({run.folder})" for label, run in zip(labels, runs))
    return [
        "# Does better alignment predict better transfer?",
        "",
        f"Runs: {listed}.",
        "",
        f"Δ score: a cell minus the reference cell `{reference}`, with a paired 95% bootstrap interval over "
        "test examples. Δ measure: a cell minus the base model (the pretrained model, before any training), "
        "at the layer the cell's alignment losses read (layer k = hidden_states[k], 0 = embedding output). "
        f"The numbers behind every correlation: [{REPORT_TABLE}]({REPORT_TABLE}).",
        "",
    ]


def _write_table(rows: Sequence[TransferRow], path: str) -> None:
    """`report_table.csv`: one row per (run, cell, target language); an empty field was not measured."""
    measures = list(dict.fromkeys(measure for row in rows for measure in row.delta_measures))
    header = ["run", "cell", "reference", "language", "layer", "metric", "delta_score"] + [
        f"delta_{m}" for m in measures
    ]

    def text(value: float | int | str | None) -> str:
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return ""
        return repr(value) if isinstance(value, float) else str(value)  # repr: every digit, recomputable exactly

    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            fixed = [row.run, row.cell, row.reference, row.language, row.layer, row.metric, row.delta_score]
            writer.writerow([text(value) for value in fixed + [row.delta_measures.get(m) for m in measures]])
