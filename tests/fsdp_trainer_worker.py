"""The runs of the FSDP2 trainer test (tests/test_fsdp_trainer.py): the same training on 1 process or on 2
FSDP2 processes (torchrun, gloo, CPU).

Usage: torchrun --nproc_per_node 2 --standalone tests/fsdp_trainer_worker.py OUT_DIR MODEL_DIR

On 2 processes the model is sharded as users of transformers shard it at load time:
`from_pretrained(..., distributed_config=DistributedConfig(fsdp_size=2, fsdp_plan=...))` applies
`fully_shard` to each transformer block, to the encoder and to the whole model, and the Trainer leaves
such a model unwrapped (no DDP; FSDP2 reduces its gradients). accelerate's own FSDP plugin needs GPUs
(it leaves CPU processes as MULTI_CPU), so this is the FSDP2 path that runs here.

Each run works out its gradient accumulation from the world size, as tests/equivalence_worker.py does:
1 process with accumulation 4 and 2 processes with accumulation 2 see the same task rows and alignment
batches at every optimizer step. The models are float64. Rank 0 saves the full parameters (gathered
from the shards for the comparison) and the logged conflict values of each run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import datasets
import torch
import transformers
from torch.distributed.tensor import DTensor
from transformers import XLMRobertaForTokenClassification
from transformers.distributed import DistributedConfig

sys.path.insert(0, os.path.dirname(__file__))
from distributed_worker import LAMBDA, build_tokenizer  # noqa: E402
from equivalence_worker import conflict_logs, train_tagger  # noqa: E402
from test_trainer import make_args  # noqa: E402

STEPS = 3
MICRO_BATCHES_PER_STEP = 4  # of 2 task rows and 2 pairs each, over all processes
# Each transformer block, the encoder (the alignment forward calls it directly) and the root (the head).
FSDP_PLAN = {"roberta.encoder.layer.*": "free_full_weight", "roberta": "free_full_weight"}
# (gradient_combination, conflict_every, λ): measured at every step; with PCGrad, where λ < 0 turns the
# alignment gradient against the task gradient (their cosine is positive here with λ > 0), so that the rule
# acts; and with an unmeasured step (step 1), whose task backward accumulates unsharded gradients (no
# reduce-scatter until the step's last backward), at the same λ as PCGrad's, so that the test can see
# PCGrad change the training.
RUNS = (("sum", 1, LAMBDA), ("pcgrad", 1, -LAMBDA), ("sum", 2, -LAMBDA))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def run(out_dir: str, model_dir: str, combination: str, conflict_every: int, alignment_lambda: float) -> dict:
    """`STEPS` joint steps (task + MSE alignment): the full parameters after them and the logged conflict values."""
    world = world_size()
    tokenizer = build_tokenizer()
    sharding = DistributedConfig(fsdp_size=world, fsdp_plan=FSDP_PLAN) if world > 1 else None
    model = XLMRobertaForTokenClassification.from_pretrained(
        model_dir, dtype=torch.float64, distributed_config=sharding
    )
    args = make_args(
        Path(out_dir, f"{combination}-{conflict_every}"),
        max_steps=STEPS,
        alignment_lambda=alignment_lambda,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=MICRO_BATCHES_PER_STEP // world,
        alignment_batch_size=2,
        alignment_loss=["mse"],
        conflict_every=conflict_every,
        gradient_combination=combination,
    )
    trainer = train_tagger(model, tokenizer, args)
    full = {name: p.full_tensor() if isinstance(p, DTensor) else p for name, p in model.named_parameters()}
    return {
        "sharded": trainer._sharded_gradients,
        "parameters": {name: value.detach().clone() for name, value in full.items()},
        "logs": conflict_logs(trainer),
    }


def runs(out_dir: str, model_dir: str) -> dict[tuple[str, int], dict]:
    return {(combination, every): run(out_dir, model_dir, combination, every, lam) for combination, every, lam in RUNS}


def main(out_dir: str, model_dir: str) -> None:
    transformers.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    results = runs(out_dir, model_dir)
    if os.environ["RANK"] == "0":
        torch.save({"world_size": world_size(), "runs": results}, os.path.join(out_dir, "rank0.pt"))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
