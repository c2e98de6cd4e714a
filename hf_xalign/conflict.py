"""Task vs alignment gradients: measured from two backward passes and one buffer.

Per optimizer step the trainer runs the task backward and then one backward per alignment
group. The total gradient `G` accumulates in `.grad` as usual; a parameter-sized buffer
`T` collects the task part (`T -= grad` before the task backward, `T += grad` after), so
at the optimizer step the task gradient is `T` and the alignment gradient is `A = G - T`,
across any number of accumulation micro-steps. Alignment groups are the losses that share
a forward (one backward for all of them) and each loss with a forward of its own (MLM,
TLM); every group but the last gets a buffer of its own, the last is `A` minus the others.

Statistics are partial sums (`T·A`, `|T|²`, `|A|²` per parameter group, in float64) in one
small tensor. Under DDP they are by default those of the step's averaged gradients (the
trainer averages `T` too on measured steps), or with `conflict_statistic="pooled"` each
process's own sums added up. With fp16 loss scaling the values are unscaled before they are
multiplied (the sums of the unscaled gradients), so a step is recorded as skipped exactly when a
gradient is not finite, which is when `GradScaler` skips the optimizer step; a skipped step is
left out of every mean. The
groups are named by [`parameter_group`]: `layer.<k>` follows the layer numbering of
[`hf_xalign.layers`], so `layer.k` holds the parameters that produce `hidden_states[k]`.

`GradientConflictCallback` writes each measurement to `conflict.jsonl` and a summary at
the end of training; the trainer merges the values into its logs.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
from transformers import TrainerCallback

from ._compat import private
from .distributed import local_values
from .files import CONFLICT_LOG_NAME, CONFLICT_SUMMARY_NAME, json_safe

# torch's in-place operations on lists of tensors (one kernel launch per list; private, see `_compat`).
_foreach_copy_, _foreach_add_, _foreach_sub_, _foreach_zero_ = (
    private("torch", name) for name in ("_foreach_copy_", "_foreach_add_", "_foreach_sub_", "_foreach_zero_")
)

TASK = "task"
ALIGN = "align"

_BLOCK = re.compile(r"\.layers?\.(\d+)\.")  # the index of a transformer block (`encoder.layer.3.`)


def parameter_group(name: str, encoder_prefix: str) -> str:
    """The reporting group of a parameter, named by the layer it computes ([`hf_xalign.layers`]).

    `layer.0` for the embedding parameters, `layer.<k>` for those of transformer block
    `encoder.layer[k-1]` (which produces `hidden_states[k]`), `encoder` for other encoder
    parameters (e.g. a pooler), `head` for the task head, `loss.<key>` for loss-owned ones.

    Args:
        name (`str`): the parameter's name in the model (`roberta.encoder.layer.3.output.dense.weight`,
            group `layer.4`), or `loss.<key>.<name>` for a loss-owned parameter.
        encoder_prefix (`str`): the model's `base_model_prefix` (`roberta`, `bert`, ...).
    """
    if name.startswith("loss."):
        return ".".join(name.split(".")[:2])
    in_encoder = not encoder_prefix or name.startswith(encoder_prefix + ".")
    if not in_encoder:
        return "head"
    if ".embeddings." in f".{name}":
        return "layer.0"
    block = _BLOCK.search(f".{name}")
    return f"layer.{int(block.group(1)) + 1}" if block else "encoder"


def _group_order(group: str) -> tuple[int, int, str]:
    """Layers bottom-up, then the other encoder parameters, the head, and loss-owned groups."""
    if group.startswith("layer."):
        return (0, int(group.split(".")[1]), group)
    return ({"encoder": 1, "head": 2}.get(group, 3), 0, group)


@dataclass
class ConflictMeasurement:
    """One measured optimizer step: global, per-parameter-group and per-objective statistics."""

    step: int
    alignment_lambda: float
    cosine: float
    task_norm: float
    align_norm: float
    per_group: dict[str, dict[str, float]] = field(default_factory=dict)
    per_objective: dict[str, dict[str, float]] = field(default_factory=dict)
    # Non-finite gradients (an fp16 overflow: the scaler skips the optimizer step): no statistics.
    skipped: bool = False

    @property
    def norm_ratio(self) -> float:
        """‖align‖ / ‖task‖ (alignment gradient as a multiple of the task gradient)."""
        return _ratio(self.align_norm, self.task_norm)

    def to_logs(self) -> dict[str, float]:
        """Flat `conflict/...` keys for the Trainer logs (and so every report_to target)."""
        logs = {
            "conflict/cosine": self.cosine,
            "conflict/task_norm": self.task_norm,
            "conflict/align_norm": self.align_norm,
            "conflict/norm_ratio": self.norm_ratio,
        }
        for scope in (self.per_group, self.per_objective):
            for name, values in scope.items():
                for key, value in values.items():
                    logs[f"conflict/{name}/{key}"] = value
        return logs

    @classmethod
    def from_record(cls, record: dict) -> ConflictMeasurement:
        """The inverse of [`to_record`] (`None` back to NaN)."""
        values = _none_to_nan(record)
        return cls(
            step=values["step"],
            alignment_lambda=values["lambda"],
            cosine=values["cosine"],
            task_norm=values["task_norm"],
            align_norm=values["align_norm"],
            per_group=values["per_group"],
            per_objective=values["per_objective"],
            skipped=values.get("skipped", False),
        )

    def to_record(self) -> dict:
        """A JSON-ready record; undefined values (a cosine with a zero gradient) become `None`."""
        return json_safe(
            {
                "step": self.step,
                "lambda": self.alignment_lambda,
                "cosine": self.cosine,
                "task_norm": self.task_norm,
                "align_norm": self.align_norm,
                "norm_ratio": self.norm_ratio,
                "per_group": self.per_group,
                "per_objective": self.per_objective,
                "skipped": self.skipped,
            }
        )


def _none_to_nan(value):
    if isinstance(value, dict):
        return {key: _none_to_nan(item) for key, item in value.items()}
    return float("nan") if value is None else value


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("nan")


def _cosine(dot: float, first_sq: float, second_sq: float) -> float:
    denominator = math.sqrt(first_sq * second_sq)
    return dot / denominator if denominator > 0 else float("nan")


def _values(dot: float, task_sq: float, align_sq: float) -> dict[str, float]:
    task_norm, align_norm = math.sqrt(task_sq), math.sqrt(align_sq)
    return {
        "cosine": _cosine(dot, task_sq, align_sq),
        "task_norm": task_norm,
        "align_norm": align_norm,
        "norm_ratio": _ratio(align_norm, task_norm),
    }


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


def mean_logs(measurements: Sequence[ConflictMeasurement]) -> dict[str, float]:
    """The mean of each `conflict/...` log value over several measured steps (NaNs and skipped steps left out).

    Skipped steps are counted in `conflict/skipped_steps` (present when there is one).
    """
    collected: dict[str, list[float]] = {}
    for measurement in measurements:
        if not measurement.skipped:
            for key, value in measurement.to_logs().items():
                collected.setdefault(key, []).append(value)
    means = {key: _nanmean(values) for key, values in collected.items()}
    logs = {key: value for key, value in means.items() if not math.isnan(value)}
    skipped = sum(measurement.skipped for measurement in measurements)
    if skipped:
        logs["conflict/skipped_steps"] = float(skipped)
    return logs


def summarize(measurements: Sequence[ConflictMeasurement]) -> dict:
    """Mean / median cosine, share of steps with a negative cosine, mean norm ratio per group.

    Skipped steps (non-finite gradients) are counted in `skipped_steps` and left out of the rest.
    """
    skipped = sum(measurement.skipped for measurement in measurements)
    measurements = [measurement for measurement in measurements if not measurement.skipped]
    if not measurements:
        return {"measured_steps": 0, "skipped_steps": skipped}
    cosines = [m.cosine for m in measurements if not math.isnan(m.cosine)]
    groups = measurements[-1].per_group.keys()
    return {
        "measured_steps": len(measurements),
        "skipped_steps": skipped,
        "mean_cosine": statistics.fmean(cosines) if cosines else float("nan"),
        "median_cosine": statistics.median(cosines) if cosines else float("nan"),
        "negative_cosine_fraction": sum(c < 0 for c in cosines) / len(cosines) if cosines else float("nan"),
        "mean_norm_ratio": statistics.fmean(m.norm_ratio for m in measurements),
        "per_group": {
            group: {
                "mean_cosine": _nanmean([m.per_group[group]["cosine"] for m in measurements]),
                "mean_norm_ratio": _nanmean([m.per_group[group]["norm_ratio"] for m in measurements]),
            }
            for group in groups
        },
    }


def _nanmean(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return statistics.fmean(kept) if kept else float("nan")


def _read_records(path: str) -> list[dict]:
    """The records of a `conflict.jsonl`; a last line cut short (a run killed while writing it) is dropped."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number < len(lines):
                raise ValueError(f"{path}:{number}: not a JSON record; the measurement log is damaged.") from None
    return records


class GradientConflictCallback(TrainerCallback):
    """Writes each gradient measurement to `output_dir/conflict.jsonl` and a summary at the end.

    Added by [`AlignmentTrainer`] when `conflict_every > 0`; the trainer hands it each
    [`ConflictMeasurement`] through [`add`]. Only the main process writes.
    """

    def __init__(self) -> None:
        self.measurements: list[ConflictMeasurement] = []
        self._pending: list[ConflictMeasurement] = []
        self.summary: dict | None = None

    def add(self, measurement: ConflictMeasurement) -> None:
        self.measurements.append(measurement)
        self._pending.append(measurement)

    def on_train_begin(self, args, state, control, **kwargs):
        """Start the log afresh, or on resume keep what was measured before the checkpoint's step."""
        path = os.path.join(args.output_dir, CONFLICT_LOG_NAME)
        kept = []
        if state.global_step > 0 and os.path.isfile(path):
            kept = [record for record in _read_records(path) if record["step"] < state.global_step]
        self.measurements = [ConflictMeasurement.from_record(record) for record in kept]
        self._pending, self.summary = [], None
        if state.is_world_process_zero and os.path.isfile(path):
            with open(path, "w", encoding="utf-8") as f:  # drops a crashed run's steps beyond the checkpoint
                f.writelines(json.dumps(record) + "\n" for record in kept)

    def on_step_end(self, args, state, control, **kwargs):
        if self._pending and state.is_world_process_zero:
            os.makedirs(args.output_dir, exist_ok=True)
            with open(os.path.join(args.output_dir, CONFLICT_LOG_NAME), "a", encoding="utf-8") as f:
                for measurement in self._pending:
                    f.write(json.dumps(measurement.to_record()) + "\n")
        self._pending = []

    def on_train_end(self, args, state, control, **kwargs):
        self.summary = summarize(self.measurements)
        if state.is_world_process_zero and self.measurements:
            os.makedirs(args.output_dir, exist_ok=True)
            with open(os.path.join(args.output_dir, CONFLICT_SUMMARY_NAME), "w", encoding="utf-8") as f:
                json.dump(json_safe(self.summary), f, indent=2)
