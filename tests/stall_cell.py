"""A study cell's entry point for tests/test_study_workers.py's Ctrl-C test: no training.

    XALIGN_TEST_FINISH=CELL_ID python -m stall_cell STUDY_DIR CELL_ID

Cell CELL_ID writes its finished marker (as `run_study_cell` does last) and ends; every other cell writes
`started` into its folder and sleeps until the study stops it.
"""

from __future__ import annotations

import os
import sys
import time

from hf_xalign.experiment.study.spec import cell_folder, expand_grid, read_study_config
from hf_xalign.files import STUDY_CELL_KIND, STUDY_CONFIG_NAME, write_finished

if __name__ == "__main__":
    study_dir, cell_id = sys.argv[1:3]
    config = read_study_config(os.path.join(study_dir, STUDY_CONFIG_NAME))
    (cell,) = [cell for cell in expand_grid(config) if cell.cell_id == cell_id]
    folder = cell_folder(config.output_dir, cell)
    os.makedirs(folder, exist_ok=True)
    if cell_id == os.environ["XALIGN_TEST_FINISH"]:
        write_finished(folder, STUDY_CELL_KIND, {**cell.marker(), "seconds": 0.0})
        sys.exit(0)
    with open(os.path.join(folder, "started"), "w", encoding="utf-8"):
        pass
    time.sleep(600)
