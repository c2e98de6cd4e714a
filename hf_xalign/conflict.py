"""Task vs alignment gradients: measured from two backward passes and one buffer.

Per optimizer step the trainer runs the task backward and then one backward per alignment
group. The total gradient `G` accumulates in `.grad` as usual; a parameter-sized buffer
`T` collects the task part (`T -= grad` before the task backward, `T += grad` after), so
at the optimizer step the task gradient is `T` and the alignment gradient is `A = G - T`,
across any number of accumulation micro-steps. Alignment groups are the losses that share
a forward (one backward for all of them) and each loss with a forward of its own (MLM,
TLM); every group but the last gets a buffer of its own, the last is `A` minus the others.

Statistics are partial sums (`T·A`, `|T|²`, `|A|²` per parameter group, in float64) in one
small tensor: under DDP that tensor is what processes exchange, never the gradients. The
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

TASK = "task"
ALIGN = "align"
CONFLICT_LOG_NAME = "conflict.jsonl"
CONFLICT_SUMMARY_NAME = "conflict_summary.json"

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
            }
        )


def json_safe(value):
    """`value` with NaN floats replaced by `None`, so that `json.dump` writes standard JSON."""
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    return None if isinstance(value, float) and math.isnan(value) else value


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
        groups = [parameter_group(name, encoder_prefix) for name in self.names]
        self.group_names = sorted(set(groups), key=_group_order)
        index = {name: i for i, name in enumerate(self.group_names)}
        self.group_of = [index[group] for group in groups]
        self.alignment_objectives = list(alignment_objectives)
        # Buffered objectives: the task, and every alignment group but the last (derived).
        self.buffered = [TASK] + self.alignment_objectives[:-1]
        self.buffers: dict[str, list[torch.Tensor]] = {}
        self._touched: set[str] = set()

    def start_step(self) -> None:
        """Forget the previous step's gradients (call before the step's first backward)."""
        self._touched = set()

    @contextlib.contextmanager
    def capture(self, objective: str) -> Iterator[None]:
        """Around one backward of `objective`: its gradient ends up in that objective's buffer."""
        if objective not in self.buffered:
            yield
            return
        buffer = self._buffer(objective)
        if objective not in self._touched:
            for b in buffer:
                b.zero_()
            self._touched.add(objective)
        with_grad = [(b, p.grad) for b, p in zip(buffer, self.params) if p.grad is not None]
        if with_grad:
            torch._foreach_sub_([b for b, _ in with_grad], [g for _, g in with_grad])
        yield
        with_grad = [(b, p.grad) for b, p in zip(buffer, self.params) if p.grad is not None]
        if with_grad:
            torch._foreach_add_([b for b, _ in with_grad], [g for _, g in with_grad])

    def _buffer(self, objective: str) -> list[torch.Tensor]:
        if objective not in self.buffers:
            dtype = lambda p: torch.float32 if p.dtype in (torch.float16, torch.bfloat16) else p.dtype  # noqa: E731
            self.buffers[objective] = [torch.zeros(p.shape, dtype=dtype(p), device=p.device) for p in self.params]
        return self.buffers[objective]

    def gradient(self, index: int) -> torch.Tensor:
        """The total gradient `G` of parameter `index` (zeros where it has none)."""
        grad = self.params[index].grad
        return torch.zeros_like(self.params[index]) if grad is None else grad

    def task_gradient(self, index: int) -> torch.Tensor:
        return self.buffers[TASK][index]

    def partial_sums(self) -> torch.Tensor:
        """Float64 partial sums for the step, one small tensor (all-reduce it under DDP).

        Layout: `(groups, 3)` rows of `[T·A, |T|², |A|²]` per parameter group, then
        `(objectives, 2)` rows of `[T·A_k, |A_k|²]` per alignment objective when there are several.

        Each tensor's dot products are BLAS dots in the gradients' dtype, summed over tensors in
        float64; `A = G - T` is written into one scratch buffer the size of the largest tensor.
        (Elementwise products summed in float64 were ~7x slower and allocated ~4 copies of the
        largest tensor; the dots differ from an exact float64 reference by ~1e-7 relative.)
        """
        objectives = len(self.alignment_objectives)
        width = 3 + (2 * objectives if objectives > 1 else 0)
        largest = max(buffer.numel() for buffer in self.buffers[TASK])
        scratch = [torch.empty(largest, dtype=self.buffers[TASK][0].dtype, device=self.buffers[TASK][0].device)]
        if objectives > 1:
            scratch.append(torch.empty_like(scratch[0]))
        rows = []
        for i, param in enumerate(self.params):
            if param.grad is None:  # then T is zero too: the row is zero
                rows.append(torch.zeros(width, dtype=torch.float64, device=scratch[0].device))
                continue
            task = self.task_gradient(i).reshape(-1)
            align = torch.sub(param.grad.reshape(-1).to(task.dtype), task, out=scratch[0][: task.numel()])  # A
            row = [torch.dot(task, align), torch.dot(task, task), torch.dot(align, align)]
            if objectives > 1:
                remainder = scratch[1][: task.numel()].copy_(align)
                for name in self.alignment_objectives[:-1]:
                    part = self.buffers[name][i].reshape(-1)
                    row += [torch.dot(task, part), torch.dot(part, part)]
                    remainder.sub_(part)
                row += [torch.dot(task, remainder), torch.dot(remainder, remainder)]
            rows.append(torch.stack(row).double())
        per_param = torch.stack(rows)  # (params, width) on the gradients' device
        group_index = torch.tensor(self.group_of, device=per_param.device)
        groups = per_param.new_zeros(len(self.group_names), 3).index_add_(0, group_index, per_param[:, :3])
        objectives_sums = per_param[:, 3:].sum(dim=0)  # (2 * objectives,) or empty
        return torch.cat([groups.flatten(), objectives_sums])  # one small tensor, still on the device

    def measurement(self, sums: torch.Tensor, step: int, alignment_lambda: float) -> ConflictMeasurement:
        """Cosines and norms from (possibly all-reduced) [`partial_sums`]."""
        n_groups = len(self.group_names)
        sums = sums.detach().cpu()
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
    """The mean of each `conflict/...` log value over several measured steps (NaNs left out)."""
    collected: dict[str, list[float]] = {}
    for measurement in measurements:
        for key, value in measurement.to_logs().items():
            collected.setdefault(key, []).append(value)
    means = {key: _nanmean(values) for key, values in collected.items()}
    return {key: value for key, value in means.items() if not math.isnan(value)}


def summarize(measurements: Sequence[ConflictMeasurement]) -> dict:
    """Mean / median cosine, share of steps with a negative cosine, mean norm ratio per group."""
    if not measurements:
        return {"measured_steps": 0}
    cosines = [m.cosine for m in measurements if not math.isnan(m.cosine)]
    groups = measurements[-1].per_group.keys()
    return {
        "measured_steps": len(measurements),
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
            with open(path, encoding="utf-8") as f:
                kept = [record for record in map(json.loads, f) if record["step"] < state.global_step]
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
