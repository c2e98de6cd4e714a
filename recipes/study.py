"""The paper's study in one command: encoders × alignment variants × tasks × seeds, one report.

    python recipes/study.py recipes/configs/study_demo.yaml             # offline demo (2 pairs × 2 tasks)
    python recipes/study.py recipes/configs/study_demo.yaml             # again: finished cells are skipped
    python recipes/study.py recipes/configs/study_xlmr.yaml --list-cells            # the grid, one cell id a line
    python recipes/study.py recipes/configs/study_xlmr.yaml --check-data            # read every data source
    python recipes/study.py recipes/configs/study_xlmr.yaml --cells 'pos__*'        # a subset
    python recipes/study.py recipes/configs/study_xlmr.yaml --nproc_per_cell 4      # each cell: torchrun, 4 processes
    python recipes/study.py recipes/configs/study_demo.yaml --workers 2             # 2 cells side by side
    python recipes/study.py recipes/configs/study_demo.yaml --workers 2 --worker_threads 2  # each with 2 threads
    python recipes/study.py recipes/configs/study_xlmr.yaml --executor slurm --dry-run  # the Slurm jobs, not submitted
    python recipes/study.py recipes/configs/study_xlmr.yaml --executor slurm --detach   # submit them and return
    python recipes/study.py recipes/configs/study_xlmr.yaml --executor slurm            # wait for them, then the report
    xalign report outputs/study_demo                                   # the report of whatever finished

The story: read the study and check all of it (tasks, files, languages, objectives) before any
training; list its cells; then, cell after cell, skip the finished ones, align an encoder copy for
each (encoder, objective, pair) the first time a sequential cell needs it, fine-tune and evaluate the
cell as its recipe would (`recipes/pos.py`, `recipes/xnli.py`), and write its completion marker
last. A failed cell leaves `error.txt` in its folder and the study goes on. At the end, the combined
report of every finished cell. The folder layout: `hf_xalign/experiment/study/spec.py`.

The study is one process (a launch of several is refused). With `nproc_per_cell: N` (or
`--nproc_per_cell N`) each cell is its own `torchrun --nproc_per_node N` launch: a rank that raises
ends its cell, whose `error.txt` holds that rank's traceback, and the study goes on. With `--workers N`
N cells run side by side, each its own process with its share of the cores (or its own GPUs). With
`--executor slurm` each cell, and each alignment that cells share, is a Slurm job submitted through submitit
(the config's `cluster:` section says what each asks for; `hf_xalign/experiment/study/slurm.py`).
"""

from __future__ import annotations

import argparse
import sys

from tqdm.auto import tqdm

from hf_xalign.experiment.exits import EXIT_INTERRUPTED, EXIT_USER_ERROR, OneLineParser, resume_command, user_errors
from hf_xalign.experiment.output_dir import OVERWRITE_FLAG
from hf_xalign.experiment.study.spec import StudyConfig, expand_grid, finished, read_study_config, select_cells
from hf_xalign.experiment.workers import parse_threads, parse_workers
from hf_xalign.extras import exit_without_extra


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="The study YAML (or a study folder's study.yaml).")
    parser.add_argument(
        "--cells", action="append", default=[], metavar="PATTERN", help="Run only matching cell ids (fnmatch)."
    )
    parser.add_argument("--list-cells", action="store_true", help="Print the cell ids of the grid and exit.")
    parser.add_argument(
        "--check-data", action="store_true", help="Read every data source of every task, one line each, and exit."
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="With --check-data: first pin the config's hub: sources that name no revision to the commit they read "
        "today, written into the config file (its comments kept).",
    )
    parser.add_argument("--output_dir", help="The study folder, instead of the config's output_dir.")
    parser.add_argument(
        "--nproc_per_cell",
        type=int,
        help="Processes per cell, instead of the config's nproc_per_cell (default 1): each cell is then "
        "launched with torchrun --nproc_per_node N.",
    )
    parser.add_argument(
        "--workers",
        type=parse_workers,
        default=1,
        help="Cells side by side, each its own process (default 1: one after the other, in this process). On CPU "
        "each gets cores // N torch threads; on GPUs its own devices. 'auto': as many cells as the cores hold at "
        "--worker_threads each on CPU (one per core without it), per nproc_per_cell devices on GPUs.",
    )
    parser.add_argument(
        "--worker_threads",
        type=parse_threads,
        default=None,
        help="With --workers > 1 on CPU: torch threads of each cell instead of cores // N (as a recipe's "
        "worker_threads). A float sum depends on the thread count: the thread count of a run to reproduce bit for "
        "bit.",
    )
    parser.add_argument(
        "--executor",
        choices=("local", "slurm"),
        default="local",
        help="local (default): the cells run on this machine (in this process, or --workers side by side). slurm: "
        "each cell, and each alignment cells share, is a Slurm job submitted through submitit, with the resources "
        "of the config's cluster: section; the command waits for them and writes the report (rerun it to go on).",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="With --executor slurm: print the jobs the study would submit (kind, resources, dependency, array) "
        "and the sbatch script of one of each kind; nothing is submitted or written.",
    )
    parser.add_argument(
        "--detach",
        action="store_true",
        help="With --executor slurm: submit, print how to follow the jobs, and return without waiting.",
    )
    parser.add_argument(
        "--keep-going",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Go on after a failed cell (default); --no-keep-going stops at the first.",
    )
    parser.add_argument(
        OVERWRITE_FLAG, action="store_true", help="Empty a study folder that holds another (or this) study first."
    )
    arguments = parser.parse_args(argv)
    if arguments.executor != "slurm":
        for flag, given in (("--dry-run", arguments.dry_run), ("--detach", arguments.detach)):
            if given:
                parser.error(f"{flag} is for --executor slurm")
    elif arguments.workers != 1 or arguments.worker_threads is not None:
        parser.error(
            "--workers and --worker_threads are for --executor local: on Slurm, cluster.max_jobs caps the jobs at "
            "once and cluster.cpus_per_process sets each process's cores"
        )
    return arguments


def interrupted_line(config: StudyConfig | None, patterns: list[str], resume: str) -> str:
    """Ctrl-C's line: the selected cells that finished (they stay finished) and those that start again on resume
    (the rerun empties an unfinished cell's folder: it does not go on from a checkpoint)."""
    if config is None:
        return f"study.py: interrupted before any cell ran; rerun with: {resume}"
    cells = select_cells(expand_grid(config), patterns)
    done = sum(finished(config.output_dir, cell) for cell in cells)
    return (
        f"study.py: interrupted; {done} of {len(cells)} cells finished and stay finished, the other {len(cells) - done} "
        f"start again from their beginning on resume: {resume}"
    )


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    overrides = {"output_dir": arguments.output_dir} if arguments.output_dir else {}
    config = None
    if arguments.nproc_per_cell is not None:
        overrides["nproc_per_cell"] = arguments.nproc_per_cell
    try:
        if arguments.check_data and arguments.pin:
            from hf_xalign.experiment.check_data import pin_config_sources

            if not pin_config_sources(arguments.config, "study.py"):
                return 1
        config = read_study_config(arguments.config, **overrides)
        if arguments.list_cells:
            print("\n".join(cell.cell_id for cell in select_cells(expand_grid(config), arguments.cells)))
            return 0
        # Imported here: listing the cells needs only the YAML, training needs torch.
        from hf_xalign.experiment.check_data import check_study_data
        from hf_xalign.experiment.study.checks import check_study
        from hf_xalign.experiment.study.runner import run_study

        if arguments.check_data:
            return check_study_data(config)
        executor = None
        if arguments.executor == "slurm":
            with exit_without_extra():
                from hf_xalign.experiment.study import slurm
            if arguments.dry_run:
                check_study(config)
                slurm.print_dry_run(config, select_cells(expand_grid(config), arguments.cells))
                return 0
            executor = slurm.SubmititExecutor("slurm", detach=arguments.detach)
        outcome = run_study(
            config,
            arguments.cells,
            keep_going=arguments.keep_going,
            overwrite=arguments.overwrite,
            executor=executor,
            workers=arguments.workers,
            worker_threads=arguments.worker_threads,
        )
    except KeyboardInterrupt:  # finished cells stay; the interrupted ones (all of them, side by side) are redone
        resume = resume_command(sys.argv[1:] if argv is None else argv)
        # tqdm.write: on a line of its own, not after the study's bar, which the interruption left drawn
        if arguments.executor == "slurm":  # Ctrl-C stops the waiting, not the cluster's jobs
            line = f"study.py: stopped waiting; the submitted jobs go on (squeue --me); rerun to follow them: {resume}"
        else:
            line = interrupted_line(config, arguments.cells, resume)
        tqdm.write(line, file=sys.stderr)
        return EXIT_INTERRUPTED
    except user_errors() as error:  # after Ctrl-C's clause: building the tuple imports the readers
        print(f"study.py: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    if outcome is None:  # the same study, finished: the rule said so
        return 0
    print(f"cells run: {len(outcome.ran)}, finished before: {len(outcome.skipped)}, failed: {len(outcome.failed)}")
    for cell_id in outcome.failed:
        print(f"  failed: {cell_id}")
    if outcome.report:
        print(f"report: {outcome.report}")
    elif arguments.detach:
        print("report: written by the rerun that waits for the jobs (above)")
    return 1 if outcome.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
