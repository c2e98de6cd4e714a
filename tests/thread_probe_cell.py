"""A study cell's entry point that only records the torch threads its process was given, for
tests/test_study_workers.py.

    python -m thread_probe_cell STUDY_DIR CELL_ID

It writes `torch.get_num_threads()` (after `apply_thread_share`, as `hf_xalign.experiment.cell_main` does) to
`threads.txt` in the cell's folder and exits 1: the cell does not finish.
"""

from __future__ import annotations

import os
import sys

import torch

from hf_xalign.experiment.study.spec import cell_folder, expand_grid, read_study_config
from hf_xalign.experiment.workers import apply_thread_share
from hf_xalign.files import STUDY_CONFIG_NAME

if __name__ == "__main__":
    apply_thread_share()
    study_dir, cell_id = sys.argv[1:3]
    config = read_study_config(os.path.join(study_dir, STUDY_CONFIG_NAME))
    (cell,) = [cell for cell in expand_grid(config) if cell.cell_id == cell_id]
    folder = cell_folder(config.output_dir, cell)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "threads.txt"), "w", encoding="utf-8") as f:
        f.write(str(torch.get_num_threads()))
    sys.exit(1)
