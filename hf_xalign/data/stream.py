"""The alignment stream: an endless, seeded source of parallel batches, replayable by step."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import datasets
import torch


class AlignmentStream:
    """Parallel batches as a pure function of (seed, optimizer step, micro-step, rank).

    The stream walks through `dataset` in epochs, each a fresh permutation seeded by
    `(seed, epoch)`, cutting it into batches of `batch_size` pairs (the last partial batch of
    an epoch is dropped). Batch number `p = (step * accumulation_steps + micro_step) * world_size
    + rank` is the one used at that micro-step on that process, so a run resumed from a
    checkpoint at step `s` sees exactly the batches an uninterrupted run sees, and processes
    never share a batch. Masking for MLM/TLM is seeded by `(seed, p)` as well.

    Args:
        dataset (`datasets.Dataset`): parallel pairs (`src`, `tgt`, `alignment`, ...).
        collate (`Callable`): `collate(rows, generator=...) -> batch`, e.g. a [`ParallelCollator`].
        batch_size (`int`): pairs per batch and process.
        seed (`int`): seed of the permutations and of the masking.
        accumulation_steps (`int`, *optional*, defaults to `1`): micro-steps per optimizer step.
        rank (`int`, *optional*, defaults to `0`) and world_size (`int`, *optional*, defaults to `1`).
    """

    def __init__(
        self,
        dataset: datasets.Dataset,
        collate: Callable[..., dict[str, Any]],
        batch_size: int,
        seed: int,
        accumulation_steps: int = 1,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"alignment_batch_size must be >= 1, got {batch_size}.")
        if len(dataset) < batch_size:
            raise ValueError(
                f"The alignment dataset has {len(dataset)} pairs, fewer than one batch (alignment_batch_size="
                f"{batch_size} pairs per process and micro-step): lower alignment_batch_size or add pairs."
            )
        self.dataset = dataset
        self.collate = collate
        self.batch_size = batch_size
        self.seed = seed
        self.accumulation_steps = accumulation_steps
        self.rank = rank
        self.world_size = world_size
        self.batches_per_epoch = len(dataset) // batch_size
        self._epoch: int | None = None
        self._order: list[int] = []

    def position(self, step: int, micro_step: int = 0) -> int:
        """The global batch number used at (`step`, `micro_step`) on this rank."""
        return (step * self.accumulation_steps + micro_step) * self.world_size + self.rank

    def indices(self, position: int) -> list[int]:
        """Dataset rows of batch number `position`."""
        epoch, offset = divmod(position, self.batches_per_epoch)
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(_mix(self.seed, epoch))
            self._order = torch.randperm(len(self.dataset), generator=generator).tolist()
            self._epoch = epoch
        return self._order[offset * self.batch_size : (offset + 1) * self.batch_size]

    def batch(self, step: int, micro_step: int = 0) -> dict[str, Any]:
        """The collated batch for optimizer step `step`, micro-step `micro_step`, on this rank."""
        position = self.position(step, micro_step)
        columns = self.dataset[self.indices(position)]  # dict of lists
        rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
        generator = torch.Generator().manual_seed(_mix(self.seed, position, salt=1))
        return self.collate(rows, generator=generator)


def _mix(seed: int, value: int, salt: int = 0) -> int:
    """A 63-bit generator seed derived from (seed, value, salt) by hashing."""
    digest = hashlib.blake2b(f"{seed}:{value}:{salt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1
