"""The study's combined report: one report.md (and plots) over every finished cell of a study.

It reads one or more study folders ([`~hf_xalign.experiment.study.inputs.read_study`]: several merge,
as for `--cells` subsets run on several machines) and writes, into `<first study folder>/report/`:

```
report.md                              results table, computed findings, plots, missing cells
plots/transfer_vs_alignment.png        Δ score vs Δ measure, a point per (variant, target language), colour = task
plots/layers_<encoder>_<task>_<measure>.png   retrieval and cosine per layer, pretrained base vs each variant
```

Example:

```python
>>> from hf_xalign.experiment.study.report import build_study_report
>>> build_study_report(["outputs/study_demo"])
'outputs/study_demo/report/report.md'
```
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ...analysis.report.build import write_report_folder
from ...files import PLOTS_FOLDER, REPORT_MARKDOWN
from .findings import effect_section, gradient_section, layer_section, transfer_section
from .inputs import StudyInputs, read_study
from .sections import header_lines, missing_section, near_chance_lines, results_section
from .stats import measures_of_study, near_chance, transfer_points

__all__ = ["build_study_report"]


def build_study_report(study_dirs: Sequence[str], output_dir: str | None = None) -> str:
    """Write the combined report of `study_dirs` into `output_dir/report/`; return the path of report.md.

    Every folder is read and checked first, and the report replaces `output_dir/report` only once
    complete: on an error nothing is written. Cells the grid names but no folder finished are listed
    as missing; the report can be built at any point of a study.

    Args:
        study_dirs (`Sequence[str]`): study folders (with `study.yaml`) of one study; a cell finished in
            several of them must have the same scores in each.
        output_dir (`str`, *optional*): where the `report` folder goes; defaults to the first study folder.

    Raises:
        [`~hf_xalign.analysis.report.inputs.RunFolderError`]: a folder that is not a study folder, folders of
            different studies, a malformed cell marker, or a cell finished twice with different scores.
    """
    inputs = read_study([os.fspath(folder) for folder in study_dirs])
    output_dir = os.fspath(output_dir if output_dir is not None else study_dirs[0])
    return write_report_folder(output_dir, lambda folder: _render(inputs, folder))


def _render(inputs: StudyInputs, folder: str) -> None:
    os.makedirs(os.path.join(folder, PLOTS_FOLDER))
    flagged = near_chance(inputs)
    measures = measures_of_study(inputs)
    lines = header_lines(inputs) + near_chance_lines(flagged) + results_section(inputs, flagged)
    lines += ["## Findings", ""]
    lines += transfer_section(inputs, transfer_points(inputs), measures, folder)
    lines += gradient_section(inputs) + effect_section(inputs, flagged)
    lines += layer_section(inputs, folder) + missing_section(inputs)
    with open(os.path.join(folder, REPORT_MARKDOWN), "w", encoding="utf-8") as f:
        f.write("\n".join(lines).rstrip("\n") + "\n")
