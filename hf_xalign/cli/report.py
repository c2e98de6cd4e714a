"""`xalign report RUN_DIR [RUN_DIR ...]`: does better alignment predict better transfer? (the run report,
[`~hf_xalign.analysis.report.build.build_report`], or for study folders the study report,
[`~hf_xalign.experiment.study.report.build_study_report`])."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._compat import SubParsersAction


def report(args: argparse.Namespace) -> int:
    """`xalign report`: the study report for study folders (with study.yaml), the run report for run folders;
    print where report.md is."""
    from ..experiment.study.inputs import is_study_dir

    studies = [folder for folder in args.run_dirs if is_study_dir(folder)]
    if not studies:
        from ..analysis.report.build import build_report

        print(build_report(args.run_dirs, args.output, args.reference))
        return 0
    if len(studies) != len(args.run_dirs):
        runs = ", ".join(folder for folder in args.run_dirs if folder not in studies)
        raise ValueError(f"give study folders (with study.yaml) or run folders, not both: no study.yaml in {runs}")
    from ..experiment.study.report import build_study_report

    print(build_study_report(args.run_dirs, args.output))
    return 0


def add_report_command(subparsers: SubParsersAction) -> argparse.ArgumentParser:
    """Add `report RUN_DIR [RUN_DIR ...] [--output DIR] [--reference NAME]` to `subparsers`; its handler is `args.run`."""
    # The description is printed as written (argparse %-formats help= strings only): a plain "95%".
    parser = subparsers.add_parser(
        "report",
        help="does better alignment predict better transfer? a report with plots over run folders",
        description="Scores with 95% intervals, Δ against the reference cell with paired intervals, alignment "
        "measures per layer before and after training, transfer change vs alignment change with Spearman and "
        "Pearson correlations, and task vs alignment gradients, written to DIR/report/report.md.",
    )
    parser.add_argument(
        "run_dirs",
        nargs="+",
        metavar="RUN_DIR",
        help="a recipe's output_dir (with results.jsonl), or a study folder (with study.yaml): several study "
        "folders of one study merge into one study report",
    )
    # Always a report/ folder inside DIR: each run replaces that folder whole (no stale plot survives), which
    # must never happen to a folder the user named, e.g. `--output .`.
    parser.add_argument(
        "--output",
        metavar="DIR",
        help="the report goes into DIR/report/ (report.md, report_table.csv, plots/), a folder each run replaces "
        "whole; DIR's other files are left alone (default DIR: the first RUN_DIR)",
    )
    parser.add_argument(
        "--reference",
        default="baseline",
        help="the cell Δ scores subtract (default: baseline; a study's Δs subtract its base variant)",
    )
    parser.set_defaults(run=report)
    return parser
