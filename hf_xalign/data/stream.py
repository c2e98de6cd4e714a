"""The alignment stream: an endless, seeded source of parallel batches, replayable by step."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
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

    With `prefetch=True`, each [`~AlignmentStream.batch`] call hands the next batch number on
    this process (`p + world_size`: the next micro-step, or the first of the next step) to one
    background thread, so it is collated while the caller trains on the current one. That is
    only a guess: a request for any other position (a resumed run, a skipped step) is collated
    directly, so the batches never depend on it. An error in the background thread is raised
    by the `batch` call that asks for that position, with the worker's traceback. The thread
    starts on first use; [`~AlignmentStream.close`] stops it (and a later `batch` call starts
    a new one). `waited_seconds` adds up the time `batch` calls spent before returning,
    whether waiting for the thread or collating directly.

    Args:
        dataset (`datasets.Dataset`): parallel pairs (`src`, `tgt`, `alignment`, ...).
        collate (`Callable`): `collate(rows, generator=...) -> batch`, e.g. a [`ParallelCollator`].
        batch_size (`int`): pairs per batch and process.
        seed (`int`): seed of the permutations and of the masking.
        accumulation_steps (`int`, *optional*, defaults to `1`): micro-steps per optimizer step.
        rank (`int`, *optional*, defaults to `0`) and world_size (`int`, *optional*, defaults to `1`).
        prefetch (`bool`, *optional*, defaults to `False`): collate the next batch on a background thread.
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
        prefetch: bool = False,
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
        self.prefetch = prefetch
        self.waited_seconds = 0.0  # cumulative, in the calling (training) thread
        self._epoch: int | None = None
        self._order: list[int] = []
        # Held while a batch is built: the epoch order is cached state, shared by both threads.
        self._building = threading.Lock()
        self._worker: ThreadPoolExecutor | None = None
        self._pending: tuple[int, Future] | None = None  # (position, its batch being built)

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
        start = time.perf_counter()
        pending, self._pending = self._pending, None
        try:
            if pending is not None and pending[0] == position:
                batch = pending[1].result()  # re-raises a worker error, its traceback attached
            else:
                if pending is not None:
                    pending[1].cancel()  # a wrong guess: drop it if it has not started
                batch = self.batch_at(position)
        finally:
            self.waited_seconds += time.perf_counter() - start
        if self.prefetch:
            if self._worker is None:
                self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alignment-prefetch")
            following = position + self.world_size
            self._pending = (following, self._worker.submit(self.batch_at, following))
        return batch

    def batch_at(self, position: int) -> dict[str, Any]:
        """The collated batch number `position` (see [`~AlignmentStream.position`]), built now."""
        with self._building:
            columns = self.dataset[self.indices(position)]  # dict of lists
            rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
            generator = torch.Generator().manual_seed(_mix(self.seed, position, salt=1))
            return self.collate(rows, generator=generator)

    def close(self) -> None:
        """Stops the background thread, dropping a batch prepared ahead; waits for one being built."""
        self._pending = None
        if self._worker is not None:
            self._worker.shutdown(wait=True, cancel_futures=True)
            self._worker = None


def _mix(seed: int, value: int, salt: int = 0) -> int:
    """A 63-bit generator seed derived from (seed, value, salt) by hashing."""
    digest = hashlib.blake2b(f"{seed}:{value}:{salt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1
