"""One cell of a study, as one process of its own launch (a study with `nproc_per_cell` > 1).

    python -m torch.distributed.run --standalone --nproc_per_node 2 -m hf_xalign.experiment.cell_main STUDY_DIR CELL_ID

The study runner launches this (`hf_xalign.experiment.study.executor.TorchrunExecutor`) after emptying
the cell's folder; every process reads the study from `STUDY_DIR/study.yaml` and runs the cell
collectively. A process that raises writes `error.rank<r>.json` (its traceback, with the time) into the
cell's folder before it exits with status 1; the runner turns the first one into the cell's `error.txt`.
A study with `--workers N` runs it (one process, or a torchrun launch) for each of N cells side by side.
"""

from __future__ import annotations

import argparse
import os
import traceback

from ..files import STUDY_CONFIG_NAME
from .study.executor import record_rank_error
from .study.runner import run_study_cell
from .study.spec import cell_folder, expand_grid, read_study_config
from .workers import apply_thread_share, die_with_parent


def main(argv: list[str] | None = None) -> None:
    """Run cell `CELL_ID` of the study in `STUDY_DIR`; on an error, record it for this rank and raise it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("study_dir", help="The study folder (holds study.yaml).")
    parser.add_argument("cell_id", help="The cell to run (see recipes/study.py --list-cells).")
    arguments = parser.parse_args(argv)
    die_with_parent()  # a rank of a killed launch must not write on into a folder the resumed study empties
    apply_thread_share()  # the torch threads a study's --workers gave this cell
    config = read_study_config(os.path.join(arguments.study_dir, STUDY_CONFIG_NAME))
    cells = [cell for cell in expand_grid(config) if cell.cell_id == arguments.cell_id]
    if not cells:
        parser.error(
            f"no cell {arguments.cell_id!r} in {arguments.study_dir}'s grid (see recipes/study.py --list-cells)"
        )
    try:
        run_study_cell(config, cells[0])
    except Exception:
        rank, world_size = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
        record_rank_error(cell_folder(config.output_dir, cells[0]), rank, world_size, traceback.format_exc())
        raise


if __name__ == "__main__":
    main()
