"""A study cell's entry point with an injected fault, for tests/test_study_launch.py.

    XALIGN_TEST_FAULT=CELL_ID:RANK:STEP python -m torch.distributed.run ... -m faulty_cell_main STUDY_DIR CELL_ID

In cell CELL_ID, process RANK raises at optimizer step STEP (before its forward), while the other
processes go on into the step's collectives; every other cell runs as `hf_xalign.experiment.cell_main`.
"""

from __future__ import annotations

import os
import sys

from hf_xalign import AlignmentTrainer
from hf_xalign.experiment import cell_main

FAULT = "injected fault: rank {rank} raised at step {step}"


def raise_at(rank: int, step: int) -> None:
    """Make `AlignmentTrainer.training_step` raise on process `rank` at optimizer step `step`."""
    training_step = AlignmentTrainer.training_step

    def faulty_training_step(self, *args, **kwargs):
        if (self.args.process_index, self.state.global_step) == (rank, step):
            raise RuntimeError(FAULT.format(rank=rank, step=step))
        return training_step(self, *args, **kwargs)

    AlignmentTrainer.training_step = faulty_training_step


if __name__ == "__main__":
    cell_id, rank, step = os.environ["XALIGN_TEST_FAULT"].split(":")
    if sys.argv[2] == cell_id:
        raise_at(int(rank), int(step))
    cell_main.main()
