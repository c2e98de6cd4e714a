"""`GradientSplitter`: the task and alignment parts of the gradients from two backward passes and one buffer."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from .._compat import private
from ..distributed import local_values
from .measurement import TASK, ConflictMeasurement, _cosine, _group_order, _values, parameter_group

# torch's in-place operations on lists of tensors (one kernel launch per list; private, see `_compat`).
_foreach_copy_, _foreach_add_, _foreach_sub_, _foreach_zero_ = (
    private("torch", name) for name in ("_foreach_copy_", "_foreach_add_", "_foreach_sub_", "_foreach_zero_")
)

_SEGMENT = 1 << 18  # values per segment of partial_sums' scratch (rows x 1 MiB in float32)
_CHUNK = 4096  # values per dot product summed in the gradients' dtype (then in float64)


def _buffer_dtype(param: torch.Tensor) -> torch.dtype:
    return torch.float32 if param.dtype in (torch.float16, torch.bfloat16) else param.dtype


def _copy_all(destinations: list[torch.Tensor], sources: list[torch.Tensor]) -> None:
    _foreach_copy_(destinations, sources)


@dataclass
class _Segment:
    """Up to `_SEGMENT` consecutive values of one parameter group: `(param index, start, end)` pieces."""

    group: int
    dtype: torch.dtype
    device: torch.device
    pieces: list[tuple[int, int, int]]
    size: int


def _segments(
    params: Sequence[torch.Tensor], group_of: Sequence[int], buffers: Sequence[torch.Tensor]
) -> list[_Segment]:
    """The parameters of each group (and buffer dtype and device) end to end, cut every `_SEGMENT` values."""
    by_key: dict[tuple, list[int]] = {}
    for i, (group, buffer) in enumerate(zip(group_of, buffers)):
        by_key.setdefault((group, buffer.dtype, buffer.device), []).append(i)
    segments = []
    for (group, dtype, device), indices in by_key.items():
        current = _Segment(group, dtype, device, [], 0)
        for i in indices:
            start, numel = 0, params[i].numel()
            while start < numel:
                end = min(numel, start + _SEGMENT - current.size)
                current.pieces.append((i, start, end))
                current.size += end - start
                start = end
                if current.size == _SEGMENT:
                    segments.append(current)
                    current = _Segment(group, dtype, device, [], 0)
        if current.pieces:
            segments.append(current)
    return segments


class GradientSplitter:
    """Keeps the per-objective gradient buffers of one optimizer step and reduces them to statistics.

    Args:
        named_parameters (`Sequence[tuple[str, torch.nn.Parameter]]`): every trainable parameter
            (model and loss-owned, the latter named `loss.<key>.<name>`), in a fixed order.
        encoder_prefix (`str`): the model's `base_model_prefix`, for [`parameter_group`].
        alignment_objectives (`Sequence[str]`): names of the alignment backward groups, in the
            order their backward passes run (e.g. `["shared", "mlm"]`).
    """

    def __init__(
        self,
        named_parameters: Sequence[tuple[str, torch.nn.Parameter]],
        encoder_prefix: str,
        alignment_objectives: Sequence[str],
    ) -> None:
        self.names = [name for name, _ in named_parameters]
        self.params = [param for _, param in named_parameters]
        # Under FSDP2 a parameter and its `.grad` are DTensors: the buffers hold this process's shard only.
        self._local_params = [local_values(param) for param in self.params]
        groups = [parameter_group(name, encoder_prefix) for name in self.names]
        self.group_names = sorted(set(groups), key=_group_order)
        index = {name: i for i, name in enumerate(self.group_names)}
        self.group_of = [index[group] for group in groups]
        self.alignment_objectives = list(alignment_objectives)
        # Buffered objectives: the task, and every alignment group but the last (derived).
        self.buffered = [TASK] + self.alignment_objectives[:-1]
        self.buffers: dict[str, list[torch.Tensor]] = {}
        self._touched: set[str] = set()
        self._segments: list[_Segment] | None = None  # built on the first partial_sums()
        self._scratch: dict[tuple, torch.Tensor] = {}  # partial_sums' (rows, _SEGMENT) matrices, kept

    def start_step(self) -> None:
        """Forget the previous step's gradients (call before the step's first backward)."""
        self._touched = set()

    @contextlib.contextmanager
    def capture(self, objective: str) -> Iterator[None]:
        """Around one backward of `objective`: its gradient ends up in that objective's buffer.

        The buffer gets `after - before` (the gradient that backward added). At the step's first
        capture of `objective` it is written, not accumulated: copied from `.grad` where `.grad` was
        `None` before the backward (the first micro-step after `zero_grad(set_to_none=True)`), and
        `after - before` in one pass elsewhere; no `zero_()` pass. Later captures of the step
        (accumulation micro-steps) subtract before and add after, in place. Both give the same
        bits as zeroing first: `0 - before + after` rounds once, like `after - before`.
        """
        if objective not in self.buffered:
            yield
            return
        buffer = self._buffer(objective)
        if objective in self._touched:
            with_grad = [(b, local_values(p.grad)) for b, p in zip(buffer, self.params) if p.grad is not None]
            if with_grad:
                _foreach_sub_([b for b, _ in with_grad], [g for _, g in with_grad])
            yield
            with_grad = [(b, local_values(p.grad)) for b, p in zip(buffer, self.params) if p.grad is not None]
            if with_grad:
                _foreach_add_([b for b, _ in with_grad], [g for _, g in with_grad])
            return
        had_grad = [p.grad is not None for p in self.params]
        before = [(b, local_values(p.grad)) for b, p, had in zip(buffer, self.params, had_grad) if had]
        if before:  # the buffer holds `before` until the backward has run
            _copy_all([b for b, _ in before], [g for _, g in before])
        yield
        self._touched.add(objective)
        copied, subtracted, zeroed = ([], []), [], []
        for b, p, had in zip(buffer, self.params, had_grad):
            if p.grad is None:
                zeroed.append(b)  # no gradient before or after (a grad set to None mid-step: also zero)
            elif had:
                subtracted.append((b, local_values(p.grad)))
            else:
                copied[0].append(b)
                copied[1].append(local_values(p.grad))
        if copied[0]:
            _copy_all(*copied)
        for b, grad in subtracted:
            torch.sub(grad, b, out=b)  # after - before, in place
        if zeroed:
            _foreach_zero_(zeroed)

    def _buffer(self, objective: str) -> list[torch.Tensor]:
        if objective not in self.buffers:
            self.buffers[objective] = [
                torch.zeros(p.shape, dtype=_buffer_dtype(p), device=p.device) for p in self._local_params
            ]
        return self.buffers[objective]

    def gradient(self, index: int) -> torch.Tensor:
        """The total gradient `G` of parameter `index` (zeros where it has none)."""
        grad = local_values(self.params[index].grad)
        return torch.zeros_like(self._local_params[index]) if grad is None else grad

    def task_gradient(self, index: int) -> torch.Tensor:
        return self.buffers[TASK][index]

    def partial_sums(self, gradient_scale: float = 1.0) -> torch.Tensor:
        """Float64 partial sums for the step, one small tensor (under FSDP2, of this process's shards:
        all-reduced with SUM they are the full sums; no gradient is gathered).

        Args:
            gradient_scale (`float`, *optional*, defaults to `1.0`): the loss scale the gradients carry
                (fp16 `GradScaler`): the copied values are divided by it before they are multiplied, so the
                sums are those of the unscaled gradients, and a scale whose squares would overflow the
                gradients' dtype does not turn finite gradients into a non-finite (skipped) measurement.

        Layout: `(groups, 3)` rows of `[T·A, |T|², |A|²]` per parameter group, then
        `(objectives, 2)` rows of `[T·A_k, |A_k|²]` per alignment objective when there are several.

        Fused: the parameters of each group are laid end to end in segments of at most
        `_SEGMENT` values (a tensor may span segments); per segment, the rows `T`, `A = G - T`
        (and, with several objectives, each buffered `A_k` and the last one's remainder) are
        written into one scratch matrix (kept between calls: `rows x _SEGMENT` values, 2 MiB in
        float32 with one objective), and a single batched matmul gives the Gram matrix
        of those rows over each `_CHUNK` values: every dot product of the segment, each summed
        in the gradients' dtype over at most `_CHUNK` values, then over chunks, segments and
        groups in float64. (A float32 BLAS dot over the 6M-value word embeddings was ~1e-4
        relative off; chunks of 4096 are ~1e-7 off; float64 gradients are exact to ~1e-15.)
        """
        if self._segments is None:
            self._segments = _segments(self._local_params, self.group_of, self.buffers[TASK])
        objectives = len(self.alignment_objectives)
        parts = [self.buffers[name] for name in self.alignment_objectives[:-1]]
        rows = 2 + (len(parts) + 1 if objectives > 1 else 0)
        scratch = self._scratch
        grams, groups = [], []
        for segment in self._segments:
            width = -(-_SEGMENT // _CHUNK) * _CHUNK
            key = (segment.dtype, segment.device, rows, width)
            if key not in scratch:
                scratch[key] = torch.empty(rows, width, dtype=segment.dtype, device=segment.device)
            padded = -(-segment.size // _CHUNK) * _CHUNK
            z = scratch[key][:, :padded]
            size = segment.size
            task, align = z[0, :size], z[1, :size]
            sources = [(self.buffers[TASK], task)] + [(part, z[2 + k, :size]) for k, part in enumerate(parts)]
            for buffers, row in sources:  # a parameter without a gradient contributes zeros (its T is zero)
                pieces = []
                for i, start, end in segment.pieces:
                    has_grad = self.params[i].grad is not None
                    pieces.append(buffers[i].view(-1)[start:end] if has_grad else row.new_zeros(end - start))
                torch.cat(pieces, out=row)
            offset = 0
            for i, start, end in segment.pieces:  # A = G - T, written straight into its row (no copy of G)
                grad, piece = local_values(self.params[i].grad), align[offset : offset + end - start]
                if grad is None:
                    piece.zero_()
                else:
                    torch.sub(grad.reshape(-1)[start:end], task[offset : offset + end - start], out=piece)
                offset += end - start
            if objectives > 1:
                remainder = z[rows - 1, :size]
                remainder.copy_(align)
                for k in range(len(parts)):
                    remainder.sub_(z[2 + k, :size])
            if gradient_scale != 1.0:  # a power of two under GradScaler: exact
                z[:, :size].mul_(1.0 / gradient_scale)
            if padded > size:
                z[:, size:].zero_()
            chunks = z.view(rows, -1, _CHUNK).transpose(0, 1)  # (chunks, rows, _CHUNK)
            grams.append(torch.bmm(chunks, chunks.transpose(1, 2)).to(torch.float64).sum(0))
            groups.append(segment.group)
        device = grams[0].device if grams else torch.device("cpu")
        gram = torch.stack(grams).to(device) if grams else torch.zeros(0, rows, rows, dtype=torch.float64)
        sums = torch.stack([gram[:, 0, 1], gram[:, 0, 0], gram[:, 1, 1]], dim=1)  # (segments, 3)
        group_index = torch.tensor(groups, device=device, dtype=torch.long)
        per_group = sums.new_zeros(len(self.group_names), 3).index_add_(0, group_index, sums)
        if objectives <= 1:
            return per_group.flatten()
        # Objective k's row in the Gram matrix: 2 + k (the last objective's is the remainder).
        k = torch.arange(2, rows, device=device)
        per_objective = torch.stack([gram[:, 0, 2:].sum(0), gram[:, k, k].sum(0)], dim=1)  # (objectives, 2)
        return torch.cat([per_group.flatten(), per_objective.flatten()])  # one small tensor, on the device

    def measurement(self, sums: torch.Tensor, step: int, alignment_lambda: float) -> ConflictMeasurement:
        """Cosines and norms from (possibly all-reduced) [`partial_sums`]; `skipped` if any sum is not finite.

        A non-finite gradient value makes `|T|²` or `|A|² = |G - T|²` of its group non-finite, so
        the sums see every step that fp16's `GradScaler` skips.
        """
        n_groups = len(self.group_names)
        sums = sums.detach().cpu()
        if not torch.isfinite(sums).all():
            nan = float("nan")
            return ConflictMeasurement(step, alignment_lambda, nan, nan, nan, skipped=True)
        groups = sums[: 3 * n_groups].view(n_groups, 3).tolist()
        dot, task_sq, align_sq = (sum(row[j] for row in groups) for j in range(3))
        per_group = {name: _values(*row) for name, row in zip(self.group_names, groups)}
        per_objective = {}
        if len(self.alignment_objectives) > 1:
            rows = sums[3 * n_groups :].view(-1, 2).tolist()
            for name, (objective_dot, objective_sq) in zip(self.alignment_objectives, rows):
                per_objective[name] = _values(objective_dot, task_sq, objective_sq)
        return ConflictMeasurement(
            step=step,
            alignment_lambda=alignment_lambda,
            cosine=_cosine(dot, task_sq, align_sq),
            task_norm=math.sqrt(task_sq),
            align_norm=math.sqrt(align_sq),
            per_group=per_group,
            per_objective=per_objective,
        )
