"""One cell of an experiment, as a process of its own (a recipe run with `workers` > 1).

    python -m hf_xalign.experiment.experiment_cell TASK OUTPUT_DIR CELL_NAME OVERRIDES_JSON

[`~hf_xalign.experiment.run_experiment`] launches this for each cell through the pool of
`hf_xalign.experiment.workers`, after writing the experiment's `config.yaml`: the process rebuilds the task
(`TASK`, a name of `hf_xalign.tasks.TASKS`) from that file, runs the cell named `CELL_NAME` with its
overrides into `OUTPUT_DIR/CELL_NAME/` and leaves its `cell_result.json` there; the experiment's process reads
it back and writes the table, the analysis, the report and the cards as for cells run in-process.
"""

from __future__ import annotations

import argparse
import json
import os

from ..files import CONFIG_NAME
from .workers import apply_thread_share, die_with_parent


def main(argv: list[str] | None = None) -> None:
    """Run one cell of the experiment whose `config.yaml` is in `OUTPUT_DIR`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("task", help="The task kind (a name of hf_xalign.tasks.TASKS).")
    parser.add_argument("output_dir", help="The experiment's folder (holds config.yaml).")
    parser.add_argument("cell_name", help="The cell (its folder under output_dir).")
    parser.add_argument("overrides", help="The cell's training-argument overrides, as JSON.")
    arguments = parser.parse_args(argv)
    die_with_parent()  # no cell trains on after the experiment's process is gone
    apply_thread_share()  # the torch threads the pool gave this cell

    from ..args import AlignmentTrainingArguments
    from ..tasks import TASKS
    from .cells import run_cell
    from .config import parse_config

    script_class, task_class = TASKS[arguments.task]
    script_args, training_args = parse_config(
        [script_class, AlignmentTrainingArguments], [os.path.join(arguments.output_dir, CONFIG_NAME)]
    )
    run_cell(task_class(script_args, training_args), arguments.cell_name, json.loads(arguments.overrides))


if __name__ == "__main__":
    main()
