"""Alignment only: align a multilingual encoder on parallel text and save it to fine-tune later.

    python recipes/align.py recipes/configs/align_demo.yaml                 # offline demo (make demo)
    accelerate launch recipes/align.py recipes/configs/align_xlmr.yaml      # xlm-roberta-base, public data
    python recipes/align.py recipes/configs/align_demo.yaml --objective contrastive --max_steps 20
    python recipes/align.py recipes/configs/align_xlmr.yaml --check-data        # read every data source, train nothing

The story: read the parallel text of the chosen language pairs, without the pairs that contain a
held-out sentence (evaluation text must not be aligned), and keep `eval_pairs` pairs of each
language pair aside to measure retrieval; train the bare encoder (`AutoModel`) with
`AlignmentTrainer` and no task data, on an objective given by name (`objective: paper_mix`: MLM
on each side, TLM on the pair, contrastive and token-level alignment at the middle layer) or by
its losses (`alignment_loss`, `alignment_loss_weights`, `alignment_layer`). `output_dir` gets
the aligned encoder (safetensors + tokenizer), `alignment_config.json`, the model card,
`config.yaml` (reruns it) and, written last, `finished.json` (what was aligned). A folder holding the
same finished alignment is skipped, one with other settings refused (`--overwrite` replaces it), an
interrupted one goes on from its last checkpoint (`hf_xalign/experiment/output_dir.py`). With `push_to_hub: true` and `hub_model_id` the folder is pushed with its card.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from hf_xalign.extras import exit_without_extra

with exit_without_extra():  # without the experiments extra: one line, exit 2
    from hf_xalign.experiment.check_data import check_recipe_data, wants_check_data

if TYPE_CHECKING:
    from hf_xalign import AlignmentTrainingArguments
    from hf_xalign.experiment import AlignArguments

# Where the recipe's argument dataclasses live: imported (with torch) only once a command line is worth parsing.
ARGUMENTS = ("hf_xalign.experiment.align:AlignArguments", "hf_xalign.args:AlignmentTrainingArguments")


def main(script_args: AlignArguments, training_args: AlignmentTrainingArguments) -> str:
    from hf_xalign.experiment import align_encoder, alignment_summary, read_marker

    folder = align_encoder(script_args, training_args)
    marker = read_marker(folder)
    if marker is not None:  # the main process's summary
        print(alignment_summary(marker))
    return folder


if __name__ == "__main__":
    with exit_without_extra():  # without the experiments extra: one line, exit 2
        if wants_check_data():  # read every data source, train nothing
            sys.exit(check_recipe_data("align", ARGUMENTS))
        from hf_xalign.experiment import run_recipe
        from hf_xalign.experiment.align import ALIGNMENT_FILES

        run_recipe(main, ARGUMENTS, run_files=ALIGNMENT_FILES)
