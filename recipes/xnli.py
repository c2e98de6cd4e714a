"""Sentence classification, pairs (XNLI, PAWS-X) or single sentences (SIB-200): fine-tune on one language,
evaluate zero-shot on others, with and without cross-lingual alignment.

    accelerate launch recipes/xnli.py recipes/configs/xnli.yaml          # xlm-roberta-base, XNLI, 15 languages
    accelerate launch recipes/xnli.py recipes/configs/sib.yaml           # xlm-roberta-base, SIB-200 topics
    python recipes/xnli.py recipes/configs/xnli_demo.yaml                # offline demo, sentence pairs (make demo)
    python recipes/xnli.py recipes/configs/sib_demo.yaml                 # offline demo, single sentences
    accelerate launch --multi_gpu --num_processes 2 recipes/xnli.py recipes/configs/xnli_demo.yaml  # 2 CPU processes
    python recipes/xnli.py recipes/configs/xnli_demo.yaml --max_steps 20 --compare false  # overrides
    python recipes/xnli.py recipes/configs/xnli.yaml --check-data               # read every data source, train nothing

The story: read the source-language training examples, which fix the label set, and one evaluation set per
language (held to that label set); encode a pair as ONE sequence, `tokenizer(premise, hypothesis)`; train an
`AutoModelForSequenceClassification` with `AlignmentTrainer` (alignment joint with the task, or as a stage
before it); then, with `compare: true`, the same model without alignment; each cell is a model scored on every language (`eval_<lang>_accuracy`, `..._macro_f1`).
Parallel pairs that contain an evaluation text are dropped first, so alignment never sees a test sentence.
`output_dir` gets `config.yaml` (reruns the experiment), `results.jsonl` (one line per cell: accuracy,
macro-F1, the majority-class accuracy of each evaluation set for reference), `results.md` (the table), one
folder per cell with its model, and last `finished.json`. A folder holding the same finished run is skipped, one holding a run with
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
    from hf_xalign.tasks.classification import ClassificationArguments

# Where the recipe's argument dataclasses live: imported (with torch) only once a command line is worth parsing.
ARGUMENTS = ("hf_xalign.tasks.classification:ClassificationArguments", "hf_xalign.args:AlignmentTrainingArguments")


def main(script_args: ClassificationArguments, training_args: AlignmentTrainingArguments) -> list[CellResult]:
    from hf_xalign.experiment import run_experiment  # the training stack: not for --check-data or a bad flag
    from hf_xalign.tasks.classification import ClassificationTask

    task = ClassificationTask(script_args, training_args)
    results = run_experiment(task)
    if training_args.process_index == 0:
        majority = task.details["majority_class"]
        shown = ", ".join(f"{language} {share:.4f}" for language, share in majority["accuracy"].items())
        print(f"always predicting {majority['label']!r} (the training set's majority class): {shown}")
    return results


if __name__ == "__main__":
    with exit_without_extra():  # without the experiments extra: one line, exit 2
        if wants_check_data():  # read every data source, train nothing
            sys.exit(check_recipe_data("classification", ARGUMENTS))
        from hf_xalign.experiment import run_recipe

        run_recipe(main, ARGUMENTS)
