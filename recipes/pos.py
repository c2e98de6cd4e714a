"""POS tagging on Universal Dependencies: fine-tune on one language, evaluate zero-shot on others,
with and without cross-lingual alignment.

    accelerate launch recipes/pos.py recipes/configs/pos.yaml            # xlm-roberta-base, real UD
    python recipes/pos.py recipes/configs/pos_demo.yaml                  # offline demo (make demo)
    accelerate launch --multi_gpu --num_processes 2 recipes/pos.py recipes/configs/pos_demo.yaml  # 2 CPU processes
    python recipes/pos.py recipes/configs/pos_demo.yaml --max_steps 20 --compare false   # overrides
    python recipes/pos.py recipes/configs/pos.yaml --check-data                 # read every data source, train nothing

The story: read the source-language treebank and one test treebank per target language, and
the parallel text without the pairs that contain a target-language test sentence; then run the
cells: the aligned model (`AutoModelForTokenClassification` trained with `AlignmentTrainer`,
alignment joint with the task or as a stage before it, as the config says) and, with
`compare: true`, the same model without alignment. Each cell is scored on every language
(token accuracy, logged as `eval_<lang>_accuracy`). `output_dir` gets `config.yaml` (reruns
the experiment), `results.jsonl` (one line per cell), `results.md` (the table), one folder
per cell with its model, and last `finished.json`. A folder holding the same finished run is skipped, one holding a run with
other settings refused (`--overwrite` empties it first): `hf_xalign/experiment/output_dir.py`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from hf_xalign.extras import exit_without_extra

with exit_without_extra():  # without the experiments extra: one line, exit 2
    from hf_xalign.experiment.check_data import check_recipe_data, wants_check_data

if TYPE_CHECKING:
    from hf_xalign import AlignmentTrainingArguments
    from hf_xalign.results import CellResult
    from hf_xalign.tasks.pos import PosArguments

# Where the recipe's argument dataclasses live: imported (with torch) only once a command line is worth parsing.
ARGUMENTS = ("hf_xalign.tasks.pos:PosArguments", "hf_xalign.args:AlignmentTrainingArguments")


def main(script_args: PosArguments, training_args: AlignmentTrainingArguments) -> list[CellResult]:
    from hf_xalign.experiment import run_experiment  # the training stack: not for --check-data or a bad flag
    from hf_xalign.tasks.pos import PosTask

    task = PosTask(script_args, training_args)
    return run_experiment(task)


if __name__ == "__main__":
    with exit_without_extra():  # without the experiments extra: one line, exit 2
        if wants_check_data():  # read every data source, train nothing
            sys.exit(check_recipe_data("pos", ARGUMENTS))
        from hf_xalign.experiment import run_recipe

        run_recipe(main, ARGUMENTS)
