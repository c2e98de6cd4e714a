"""One of two FSDP2 processes (torchrun, gloo): the gradient split and partial sums on sharded gradients.

Usage: torchrun --nproc_per_node 2 --standalone tests/fsdp_worker.py OUT_DIR

Each rank trains a toy tagger (`roberta` encoder, `classifier` head; float64) wrapped with
`fully_shard`, on its own batch: the task backward is captured by `GradientSplitter`, the
alignment backward follows, and the partial sums over this rank's gradient shards are
all-reduced (SUM). Rank 0 saves the sums and the shapes of its local shards.
"""

from __future__ import annotations

import os
import sys

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.fsdp import fully_shard

from hf_xalign.conflict import TASK, GradientSplitter


class ToyTagger(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.roberta = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 16))
        self.classifier = nn.Linear(16, 3)  # 3 rows over 2 ranks: uneven shards


def rank_batch(rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(100 + rank)
    return torch.randn(4, 8, generator=generator, dtype=torch.float64), torch.randint(0, 3, (4,), generator=generator)


def task_and_alignment_losses(model: ToyTagger, inputs: torch.Tensor, labels: torch.Tensor):
    hidden = model.roberta(inputs)
    task_loss = nn.functional.cross_entropy(model.classifier(hidden), labels)
    alignment_loss = hidden.square().mean()  # reads the encoder only, like an alignment loss
    return task_loss, alignment_loss


def main(out_dir: str) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(0)
    model = ToyTagger().double()
    for module in (model.roberta[0], model.roberta[2], model.classifier):
        fully_shard(module)
    fully_shard(model)
    splitter = GradientSplitter(list(model.named_parameters()), "roberta", ["shared"])
    splitter.start_step()
    task_loss, alignment_loss = task_and_alignment_losses(model, *rank_batch(rank))
    with splitter.capture(TASK):
        task_loss.backward(retain_graph=True)
    alignment_loss.backward()
    sums = splitter.partial_sums()
    dist.all_reduce(sums)
    if rank == 0:
        local_shapes = {name: tuple(p.grad.to_local().shape) for name, p in model.named_parameters()}
        torch.save({"sums": sums, "groups": splitter.group_names, "local_shapes": local_shapes}, f"{out_dir}/rank0.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.getcwd())
    # The work is done and saved; leave without C++ static destructors. About 1 run in 60 on a
    # loaded machine, FSDP2 on gloo aborted *after* Python had finished ("terminate called without
    # an active exception", no Python frame): a teardown race in torch, not in what is tested.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
