"""The runs of the "1 process = 2 processes" tests (tests/test_distributed_equivalence.py).

Each run works out its gradient accumulation from the world size, so that one process with
accumulation 2 and two processes with accumulation 1 consume the same task rows and alignment
batches at every optimizer step: the Trainer's seeded sampler gives every process the same
permutation and accelerate hands batch `2s + r` to rank `r` (one process takes batches `2s` and
`2s + 1` as its two micro-steps), and the alignment stream numbers its batches the same way.
This holds with the Trainer's defaults (`train_sampling_strategy="random"`, accelerate's seedable
sampler); `group_by_length` groups rows in mega-batches of `per_device_train_batch_size x
gradient_accumulation_steps`, which differ between the two launches.

The models are float64, so that the runs differ only by rounding at ~1e-15: in float32 they
differed by up to 8e-7 here (parameters after 5 AdamW steps, gradients of the contrastive step),
about a twelfth of the tolerance.

Under a launcher (`torchrun` or `accelerate launch`, 2 processes) `main` runs the scenarios
named on the command line and every rank saves what it got to `out_dir/rank<r>.pt`; the test
runs the same functions in its own process as the 1-process reference.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import datasets
import torch
import transformers
from transformers import DataCollatorForTokenClassification

sys.path.insert(0, os.path.dirname(__file__))
from conftest import make_model, synthetic_sentences, tag_dataset, translate  # noqa: E402
from distributed_worker import LAMBDA, CaptureGradients, build_tokenizer  # noqa: E402
from test_trainer import make_args  # noqa: E402

from hf_xalign import AlignmentTrainer  # noqa: E402
from hf_xalign.losses import ContrastiveLoss  # noqa: E402

POINTWISE_LOSSES = ("mse", "cosine", "token")
STEPS = 5
TASK_ROWS_PER_STEP = 8
PAIRS_PER_STEP = 8
CONTRASTIVE_PAIRS = 16  # in one batch on one process, or 8 on each of two


def build_parallel(pairs: int = 64) -> datasets.Dataset:
    sentences = synthetic_sentences(pairs, seed=1)
    return datasets.Dataset.from_dict(
        {
            "src": [" ".join(w) for w in sentences],
            "tgt": [" ".join(translate(w)) for w in sentences],
            "alignment": [[[i, i] for i in range(len(w))] for w in sentences],
        }
    )


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def pointwise_run(out_dir: str, loss: str) -> dict:
    """`STEPS` joint steps with `loss` and the measurement on: final parameters and the logged conflict values."""
    world = _world_size()
    tokenizer = build_tokenizer()
    args = make_args(
        Path(out_dir, f"pointwise-{loss}"),
        max_steps=STEPS,
        alignment_lambda=LAMBDA,
        per_device_train_batch_size=TASK_ROWS_PER_STEP // 2,
        gradient_accumulation_steps=2 // world,
        alignment_batch_size=PAIRS_PER_STEP // 2,
        alignment_loss=[loss],
    )
    trainer = train_tagger(make_model(tokenizer).double(), tokenizer, args)
    return {
        "parameters": {name: p.detach().clone() for name, p in trainer.model.named_parameters()},
        "logs": conflict_logs(trainer),
    }


def train_tagger(model: torch.nn.Module, tokenizer, args) -> AlignmentTrainer:
    """`model` trained on the tiny tagging task and the pairs of `build_parallel`, as `args` say."""
    trainer = AlignmentTrainer(
        model=model,
        args=args,
        train_dataset=tag_dataset(tokenizer, synthetic_sentences(32, seed=2)),
        alignment_dataset=build_parallel(),
        processing_class=tokenizer,
        data_collator=DataCollatorForTokenClassification(tokenizer),
    )
    trainer.train()
    return trainer


def conflict_logs(trainer: AlignmentTrainer) -> list[dict[str, float]]:
    """The `conflict/...` values of each training log entry."""
    return [
        {key: value for key, value in entry.items() if key.startswith("conflict/")}
        for entry in trainer.state.log_history
        if "loss" in entry
    ]


def contrastive_run(out_dir: str) -> dict:
    """One alignment-only step of contrastive loss with `gather_across_devices=True`, `CONTRASTIVE_PAIRS`
    split over the processes: its gradients and the logged loss."""
    world = _world_size()
    tokenizer = build_tokenizer()
    args = make_args(
        Path(out_dir, "contrastive"),
        max_steps=1,
        alignment_lambda=LAMBDA,
        per_device_train_batch_size=1,
        alignment_batch_size=CONTRASTIVE_PAIRS // world,
        max_grad_norm=0.0,  # the gradients as computed, not clipped
    )
    trainer_ref = []
    capture = CaptureGradients(trainer_ref)  # the gradients the optimizer gets, after averaging over processes
    trainer = AlignmentTrainer(
        model=make_model(tokenizer).double().base_model,
        args=args,
        alignment_dataset=build_parallel(),
        alignment_loss=ContrastiveLoss(gather_across_devices=True),
        processing_class=tokenizer,
        callbacks=[capture],
    )
    trainer_ref.append(trainer)
    trainer.train()
    (logged,) = [entry["align/contrastive"] for entry in trainer.state.log_history if "align/contrastive" in entry]
    return {"grads": capture.grads, "loss": logged}


def pointwise_runs(out_dir: str) -> dict[str, dict]:
    return {loss: pointwise_run(out_dir, loss) for loss in POINTWISE_LOSSES}


SCENARIOS = {"pointwise": pointwise_runs, "contrastive": contrastive_run}


def main(out_dir: str, scenarios: list[str]) -> None:
    transformers.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    results = {name: SCENARIOS[name](out_dir) for name in scenarios}
    results["world_size"] = _world_size()
    torch.save(results, os.path.join(out_dir, f"rank{os.environ['RANK']}.pt"))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
