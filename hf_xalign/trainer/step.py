"""The training step: synchronisation, measurement, combining, skipping non-finite steps."""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from accelerate.utils import send_to_device
from torch import nn

from ..adapters import encoder_prefix
from ..conflict import TASK, ConflictMeasurement, GradientSplitter
from ..distributed import (
    all_reduce_gradients,
    all_reduce_tensors,
    is_sharded,
    register_sharded_output_capture,
    set_gradient_sync,
    start_average,
)
from ..surgery import apply_combination, combination_coefficients


class StepMixin:
    """[`AlignmentTrainer`]'s training step: the task and alignment backwards of each micro-step, then at the
    optimizer step the averaging over processes, the gradient measurement, the combining rule, and the skip of a
    step whose losses were not finite. Mixed into `AlignmentTrainer`; reads the state its `__init__` sets up."""

    def _new_gradient_splitter(self, named_parameters: list[tuple[str, nn.Parameter]]) -> GradientSplitter:
        return GradientSplitter(
            named_parameters,
            # `roberta`, `base_model.model.roberta` under PEFT, "" for a bare encoder (all encoder parameters).
            encoder_prefix(self.accelerator.unwrap_model(self.model)),
            [name for name, _ in self.alignment_groups],
        )

    def _follow_parameters(self) -> None:
        """Notice FSDP2 sharding, and follow parameters replaced since construction (at each step's start).

        accelerate's FSDP2 shards the model inside `Accelerator.prepare`, at the start of `train`:
        `fully_shard` replaces every parameter by a DTensor, and the gradient split follows the new ones.
        A model sharded before (`from_pretrained(..., distributed_config=DistributedConfig(fsdp_size=N))`,
        or `fully_shard` by hand) has them from the start. Costs one pass over the parameter list.
        """
        named = self._named_trainable_parameters()
        sharded = [name for name, param in named if is_sharded(param)]
        self._sharded_gradients = bool(sharded)
        if sharded and len(sharded) < len(named):
            plain = [name for name, param in named if not is_sharded(param)]
            raise NotImplementedError(
                f"Under FSDP2 every trainable parameter must be sharded by `fully_shard`, but {len(plain)} are not: "
                f"{', '.join(plain[:5])}{', ...' if len(plain) > 5 else ''}. Loss-owned heads (the `mlm` and `tlm` "
                "losses) are not supported under FSDP2 yet: their decoder is tied to the sharded input embeddings."
            )
        if sharded:
            register_sharded_output_capture(self.model)
        splitter = self.gradient_splitter
        if splitter is None:
            return
        if sharded and self.alignment_args.conflict_statistic == "pooled":
            raise ValueError(
                "conflict_statistic='pooled' has no meaning under FSDP2: every backward reduce-scatters, so each "
                "process only ever holds shards of the averaged gradients. Use conflict_statistic='averaged' (the "
                "default), which under FSDP2 costs no extra all-reduce but the small statistics tensor."
            )
        params = [param for _, param in named]
        if len(params) != len(splitter.params) or any(a is not b for a, b in zip(params, splitter.params)):
            self.gradient_splitter = self._new_gradient_splitter(named)

    def training_step(
        self, model: nn.Module, inputs: dict[str, Any], num_items_in_batch: torch.Tensor | int | None = None
    ) -> torch.Tensor:
        if not self.alignment_configured:
            # Trainer's step as it is: its logged keys, and its handling of a non-finite loss (logged, training goes on).
            return super().training_step(model, inputs, num_items_in_batch)
        step = self.state.global_step
        micro_step = self._next_micro_step(step)
        run_task, run_alignment = self.alignment_objectives(step)
        lam = self.alignment_lambda(step) if run_alignment else 0.0
        measuring = self.gradient_splitter is not None and run_task and lam != 0.0 and self._measures(step)
        if micro_step == 0:
            self._follow_parameters()
            # Trainer's model.zero_grad() after each optimizer step does not reach loss-owned parameters.
            self.alignment_losses.zero_grad(set_to_none=True)
            self.nonfinite.start_step()
            self._step_sums.clear()
            if measuring:
                self.gradient_splitter.start_step()
        distributed = self.args.world_size > 1
        if not self.nonfinite.step_is_bad:  # a step already known to be skipped needs no more compute
            total = self._objectives_step(model, inputs, num_items_in_batch, step, micro_step, lam, measuring)
        else:
            total = torch.tensor(float("nan"), device=self.args.device)
            # Every process starts the same collectives: this one as the others do after their task backward.
            self._start_task_average(measuring)
        if run_alignment:
            self._record("align_lambda", torch.tensor(lam / self.current_gradient_accumulation_steps))
        if self.accelerator.sync_gradients:
            if self._skips_step(distributed):
                self._wait_task_average()  # its values are not used; it only has to end before the next step
                self.nonfinite.skip(step)
                for param in self._trainable_parameters():
                    param.grad = None  # torch optimizers leave a parameter without gradient (and its state) as is
            else:
                self._finish_step_gradients(step, lam, measuring, distributed)
                self._commit_step_records()
        return total

    def _objectives_step(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        num_items_in_batch: torch.Tensor | int | None,
        step: int,
        micro_step: int,
        lam: float,
        measuring: bool,
    ) -> torch.Tensor:
        """One micro-step's task backward, then alignment forward and backward(s); returns the loss to log.

        The losses are checked for finiteness (one synchronisation) before the alignment backward; a
        non-finite one marks the step to be skipped, or raises when no skip is left.

        Under DDP every backward runs unsynced; gradients are averaged once, at the sync step. Under
        FSDP2 a synced backward reduce-scatters: on measured steps every backward is synced, so that
        each captured part is a shard of the averaged gradient; otherwise only the step's last backward
        is, and the others accumulate unsharded gradients (`set_requires_gradient_sync(False)`).
        """
        run_task, run_alignment = self.alignment_objectives(step)
        capture = self.gradient_splitter.capture if measuring else _no_capture
        accumulation = self.current_gradient_accumulation_steps
        aligning = run_alignment and lam != 0.0
        sharded = self._sharded_gradients
        unsynced_ddp = self.args.world_size > 1 and not sharded
        sync_context = self.accelerator.no_sync(model) if unsynced_ddp else contextlib.nullcontext()
        total = torch.zeros((), device=self.args.device)
        checked: dict[str, torch.Tensor] = {}
        with sync_context, self._fsdp_gradient_sync(model, sharded) as sync_next_backward:
            if run_task:
                sync_next_backward(measuring or (self.accelerator.sync_gradients and not aligning))
                with capture(TASK):
                    task_loss = super().training_step(model, inputs, num_items_in_batch)
                self._start_task_average(measuring)  # in flight during the alignment forward and backward
                checked["task loss"] = task_loss
                total = total + task_loss
            if not aligning:
                if checked and self.nonfinite.all_finite(checked, step):
                    self._record("task_loss", task_loss)
                return total
            batch = send_to_device(self.alignment_stream.batch(step, micro_step), self.args.device)
            model.train()
            # The task forward runs under the autocast accelerate wraps around the model's `forward`; the alignment
            # forward calls the bare encoder, past that wrapper, so it gets the same autocast here.
            with self.compute_loss_context_manager(), self.accelerator.autocast():
                parts = self.compute_alignment_loss(model, batch)
            checked.update({f"alignment loss {name!r}": value for name, value in parts.items()})
            if not self.nonfinite.all_finite(checked, step):
                return total + float("nan")
            weighted = {
                name: w * parts[name] for name, w in zip(self.alignment_loss_names, self.alignment_loss_weights)
            }
            align_loss = sum(weighted.values())
            last_group = len(self.alignment_groups) - 1
            for k, ((objective, members), retain) in enumerate(zip(self.alignment_groups, self._retain_graph)):
                group_loss = sum(weighted[self.alignment_loss_names[i]] for i in members)
                sync_next_backward(measuring or (self.accelerator.sync_gradients and k == last_group))
                with capture(objective):
                    self.accelerator.backward(lam * group_loss / accumulation, retain_graph=retain)
        if run_task:
            self._record("task_loss", task_loss)
        self._record("align_loss", align_loss.detach() / accumulation)
        for name, value in parts.items():
            self._record(f"align/{name}", value.detach() / accumulation)
        return total + lam * align_loss.detach() / accumulation

    @contextlib.contextmanager
    def _fsdp_gradient_sync(self, model: nn.Module, sharded: bool):
        """Yields `sync_next_backward(sync)`: under FSDP2, whether the next backward reduce-scatters (a no-op
        otherwise). FSDP2's default, synced, is restored on exit."""
        if not sharded:
            yield lambda sync: None
            return
        try:
            yield lambda sync: set_gradient_sync(model, sync)
        finally:
            set_gradient_sync(model, True)

    def _start_task_average(self, measuring: bool) -> None:
        """Under DDP with `conflict_statistic="averaged"`, at a measured step's last micro-step: start averaging
        the task part `T` over processes (it is final once the task backward has run), so that its communication
        overlaps the alignment forward and backward; `_wait_task_average` ends it at the optimizer step."""
        if (
            measuring
            and self.accelerator.sync_gradients
            and self.args.world_size > 1
            and not self._sharded_gradients
            and self.alignment_args.conflict_statistic == "averaged"
        ):
            self._task_average = start_average(self.gradient_splitter.buffers[TASK], self.args.world_size)

    def _wait_task_average(self) -> None:
        """Wait for the average of `T` started by `_start_task_average`, if any; `T` then holds it."""
        if self._task_average is not None:
            self._task_average.wait()
            self._task_average = None

    def _skips_step(self, distributed: bool) -> bool:
        """Whether the optimizer step ending now is skipped: a loss was not finite here or, if skips are allowed,
        on any process (so that every process skips the same steps)."""
        bad = self.nonfinite.step_is_bad
        if distributed and self.alignment_args.skip_nonfinite_steps > 0:
            flag = torch.tensor(float(bad), device=self.args.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            bad = bool(flag.item())
        return bad

    def _finish_step_gradients(self, step: int, lam: float, measuring: bool, distributed: bool) -> None:
        """At the optimizer step: average over processes, measure, and apply the combining rule.

        Under DDP the statistics are those of the averaged gradients: `G` is averaged anyway, and on
        measured steps the task part (its average started after the task backward, see
        `_start_task_average`) and the other buffered parts too; `conflict_statistic="pooled"`
        all-reduces each process's partial sums instead. Under FSDP2 the gradients are shards of the
        averaged ones already: only the partial sums are all-reduced. A step with non-finite gradients (fp16
        overflow) is recorded as skipped and leaves the combining rule's state alone.
        """
        if not measuring:
            if distributed and not self._sharded_gradients:  # FSDP2 has reduce-scattered already
                all_reduce_gradients(self._trainable_parameters(), self.args.world_size)
            return
        splitter = self.gradient_splitter
        params = splitter.params  # the same list, in the same order, on every process
        rule = self.alignment_args.gradient_combination
        scale = self._gradient_scale()
        if self._sharded_gradients:
            # `.grad` and the buffers hold this process's shards of the averaged gradients (every backward
            # of a measured step reduce-scattered): the shards' sums add up to the full sums, and no gradient
            # is gathered. The statistics tensor is the only communication the measurement adds.
            sums = splitter.partial_sums(scale)
            if distributed:
                torch.distributed.all_reduce(sums)
        elif distributed and self.alignment_args.conflict_statistic == "pooled":
            sums = splitter.partial_sums(scale)  # this process's own gradients, before averaging
            torch.distributed.all_reduce(sums)
            all_reduce_gradients(params, self.args.world_size)
        else:
            if distributed:
                all_reduce_gradients(params, self.args.world_size)
                self._wait_task_average()  # started after the task backward
                for objective, buffer in splitter.buffers.items():
                    if objective != TASK:
                        all_reduce_tensors(buffer, self.args.world_size)
            sums = splitter.partial_sums(scale)
        measurement = splitter.measurement(sums, step, lam)
        self.conflict_callback.add(measurement)
        self._record_measurement(measurement)
        # The rules' coefficients are ratios of the unscaled sums (invariant to the loss scale), so
        # they act alike on the scaled `.grad` and `T`; a skipped step would only poison their state.
        if rule != "sum" and not measurement.skipped:
            n_groups = len(splitter.group_names)
            alphas, betas = combination_coefficients(
                rule,
                sums[: 3 * n_groups].view(n_groups, 3),
                splitter.group_names,
                self.combination_state,
                self.combination_options,
            )
            apply_combination(splitter.params, splitter.buffers[TASK], splitter.group_of, alphas, betas)

    def _gradient_scale(self) -> float:
        """The loss scale the gradients in `.grad` carry: fp16's `GradScaler` scale, else 1."""
        scaler = self.accelerator.scaler
        return scaler.get_scale() if scaler is not None else 1.0

    def _next_micro_step(self, step: int) -> int:
        last_step, seen = self._micro_step
        micro_step = seen if step == last_step else 0
        self._micro_step = (step, micro_step + 1)
        return micro_step

    def _named_trainable_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """Model parameters, then loss-owned ones as `loss.<key>.<name>`: the order every process shares.

        Only those with `requires_grad`: a frozen parameter (a PEFT model's base weights) has no gradient
        to split, measure, clip or average, and gets no buffer.
        """
        named = list(self.accelerator.unwrap_model(self.model).named_parameters())
        for key, loss in zip(self.alignment_loss_names, self.alignment_losses):
            named += [(f"loss.{key}.{name}", param) for name, param in loss.named_parameters()]
        return [(name, param) for name, param in named if param.requires_grad]

    def _trainable_parameters(self) -> list[nn.Parameter]:
        return [param for _, param in self._named_trainable_parameters()]

    # ---- values for the log: kept per optimizer step, averaged and merged by `log` before Trainer.log fans out ----

    def _record(self, key: str, value: torch.Tensor) -> None:
        """Add a micro-step's share of a per-step value; it counts once the step is applied."""
        value = value.to(self.args.device)
        self._step_sums[key] = self._step_sums[key] + value if key in self._step_sums else value

    def _commit_step_records(self) -> None:
        """An applied optimizer step's values join the log's means (a skipped step's never do)."""
        for key, value in self._step_sums.items():
            self._metric_sums[key] = self._metric_sums[key] + value
            self._metric_steps[key] += 1
        self._step_sums.clear()

    def _record_measurement(self, measurement: ConflictMeasurement) -> None:
        """Keep a step's gradient statistics for the next log (already global: no reduction needed)."""
        self._measurements_since_log.append(measurement)


@contextlib.contextmanager
def _no_capture(objective: str):
    yield
