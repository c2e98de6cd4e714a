"""Gradient synchronisation for steps with two backward passes under torch.distributed.

DDP reduces gradients during a backward whose forward went through the DDP wrapper. The
alignment forward calls the bare encoder (`model.module.base_model`), which DDP does not see,
and a second backward after the reducer has fired is not reduced at all. So the trainer runs
both backward passes with DDP's reduction off (`no_sync`) and averages all gradients here,
once per optimizer step, loss-owned parameters included (DDP does not know them).

Under FSDP2 (`fully_shard`) parameters and gradients are DTensors: each process holds a shard of
each, and every synced backward already reduce-scatters, so each process holds its shard of the
averaged gradient. Arithmetic on the gradients then runs on [`local_values`].
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
import torch.distributed as dist

from ._compat import register_output_capture

try:
    from torch.distributed.fsdp import FSDPModule
    from torch.distributed.tensor import DTensor
except ImportError:  # a torch build without torch.distributed: no sharded tensors to meet
    DTensor = FSDPModule = ()

# Elements per all_reduce call: large enough to amortise the call, small enough to bound the
# temporary flat buffer (~100 MB in fp32).
BUCKET_NUMEL = 25_000_000


def local_values(tensor: torch.Tensor | None) -> torch.Tensor | None:
    """This process's values of a tensor: the local shard of a DTensor (FSDP2's sharded parameters and
    gradients), the tensor itself otherwise. Sums over local shards, all-reduced, are the full sums."""
    return tensor.to_local() if isinstance(tensor, DTensor) else tensor


def is_sharded(parameter: torch.Tensor) -> bool:
    """Whether `parameter` is a DTensor (sharded by FSDP2's `fully_shard`)."""
    return isinstance(parameter, DTensor)


def set_gradient_sync(model: torch.nn.Module, sync: bool) -> None:
    """Whether the next backward through `model`'s FSDP2 modules reduce-scatters their gradients.

    With `sync=False` the gradients accumulate unsharded, and a later synced backward reduce-scatters
    the sum (gradient accumulation without communication). Every `fully_shard`-ed module of `model` is
    set, whether or not `model` itself is one.
    """
    for module in model.modules():
        if isinstance(module, FSDPModule):
            module.set_requires_gradient_sync(sync, recurse=False)


def register_sharded_output_capture(model: torch.nn.Module) -> None:
    """Let `fully_shard`-ed `transformers` models return `output_hidden_states` again.

    transformers (5.x) finds what a model's forward may record (`_can_record_outputs`) by the name of
    the model's class, and `fully_shard` swaps that class for a subclass (`FSDPXLMRobertaModel`): the
    sharded encoder then returns `hidden_states=None`, which the alignment losses read. Registering
    the swapped classes under their own name restores it. Cheap when already done.
    """
    for module in model.modules():
        if isinstance(module, FSDPModule):
            register_output_capture(module)


def all_reduce_gradients(parameters: Iterable[torch.nn.Parameter], world_size: int) -> None:
    """Average `.grad` of `parameters` over all processes in place, in coalesced buckets.

    Every process must pass the same parameters in the same order. A parameter that has a
    gradient on some processes but not on others takes part with zeros where it has none; one
    that has no gradient anywhere keeps `grad=None`, so the optimizer skips it as it would on
    a single process.
    """
    params = [p for p in parameters if p.requires_grad]
    if not params:
        return
    has_grad = torch.tensor([p.grad is not None for p in params], dtype=torch.uint8, device=params[0].device)
    dist.all_reduce(has_grad, op=dist.ReduceOp.MAX)
    params = [p for p, anywhere in zip(params, has_grad.tolist()) if anywhere]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    all_reduce_tensors([p.grad for p in params], world_size)


def all_reduce_tensors(tensors: list[torch.Tensor], world_size: int) -> None:
    """Average `tensors` over all processes in place, in coalesced buckets of at most `BUCKET_NUMEL`
    (one bucket in flight at a time)."""
    for bucket in _buckets(tensors):
        start_average(bucket, world_size).wait()


class PendingAverage:
    """An average over processes in flight (from [`start_average`]): `wait()` writes it into the tensors.

    Until then the tensors keep their own values, and the communication runs on the process group's
    background thread (gloo) or stream (NCCL) while this process computes.
    """

    def __init__(self, tensors: list[torch.Tensor], world_size: int) -> None:
        self._world_size = world_size
        self._buckets: list[tuple[list[torch.Tensor], torch.Tensor, dist.Work]] = []
        for bucket in _buckets(tensors):
            flat = torch.cat([tensor.reshape(-1) for tensor in bucket])  # one all_reduce per bucket
            self._buckets.append((bucket, flat, dist.all_reduce(flat, async_op=True)))

    def wait(self) -> None:
        """Block until every bucket is reduced, then copy the averages into the tensors (once)."""
        for bucket, flat, work in self._buckets:
            work.wait()
            for tensor, reduced in zip(bucket, flat.split([tensor.numel() for tensor in bucket])):
                torch.div(reduced.view_as(tensor), self._world_size, out=tensor)  # the sum's mean, in one pass
        self._buckets = []


def start_average(tensors: list[torch.Tensor], world_size: int) -> PendingAverage:
    """Start averaging `tensors` over all processes without waiting for it; see [`PendingAverage`].

    Every process must start the same averages in the same order. All buckets are in flight together:
    until `wait()` this holds one flat copy of `tensors`.
    """
    return PendingAverage(tensors, world_size)


def _buckets(tensors: list[torch.Tensor]) -> Iterator[list[torch.Tensor]]:
    """`tensors` in consecutive runs of at least `BUCKET_NUMEL` values (the last run may be smaller)."""
    bucket: list[torch.Tensor] = []
    bucket_numel = 0
    for tensor in tensors:
        bucket.append(tensor)
        bucket_numel += tensor.numel()
        if bucket_numel >= BUCKET_NUMEL:
            yield bucket
            bucket, bucket_numel = [], 0
    if bucket:
        yield bucket
