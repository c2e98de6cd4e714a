"""`AlignmentTrainer`: a `transformers.Trainer` that adds cross-lingual alignment losses."""

from __future__ import annotations

import contextlib
import copy
import json
import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import datasets
import torch
from accelerate.utils import DistributedType, parse_flag_from_env, send_to_device
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import (
    BaseImageProcessor,
    DataCollator,
    EarlyStoppingCallback,
    EvalPrediction,
    FeatureExtractionMixin,
    IntervalStrategy,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    ProcessorMixin,
    Trainer,
    TrainerCallback,
    TrainerState,
    TrainingArguments,
)
from transformers.trainer_utils import SaveStrategy

from ._compat import finish_current_push, save_model_without_push
from .adapters import adapted_model_facts, encoder_of, encoder_prefix, is_peft_model, task_model
from .args import AlignmentConfig, AlignmentTrainingArguments
from .checkpoints import TRAINER_STATE_NAME, check_checkpoint_complete, last_complete_checkpoint
from .conflict import TASK, ConflictMeasurement, GradientConflictCallback, GradientSplitter, mean_logs
from .data.collator import ParallelCollator
from .data.parallel import language_pair_counts, load_parallel
from .data.stream import AlignmentStream
from .distributed import (
    all_reduce_gradients,
    all_reduce_tensors,
    is_sharded,
    register_sharded_output_capture,
    set_gradient_sync,
)
from .files import (
    ALIGNMENT_CONFIG_NAME,
    ALIGNMENT_LOSSES_NAME,
    ALIGNMENT_STAGE_DIR,
    COMBINATION_STATE_NAME,
    MODEL_CARD_NAME,
    SKIPPED_STEPS_NAME,
)
from .hub import push_aligned
from .layers import num_blocks, resolve_layer
from .losses import AlignmentLoss, get_loss_class
from .model_card import build_model_card
from .nonfinite import SKIPPED_STEPS_LOG_KEY, NonfiniteSteps
from .pooling import ParallelEncoding
from .process_group import destroy_process_group_at_exit
from .schedules import alignment_lambda_at
from .surgery import CombinationOptions, CombinationState, apply_combination, combination_coefficients
from .version import __version__

SHARED_FORWARD = "shared"
# The FSDP version whose sharded gradients the split follows (`fully_shard`, gradients as DTensor shards).
SUPPORTED_FSDP_VERSION = 2


class AlignmentOnlySteps(torch.utils.data.Dataset):
    """Placeholder task data for steps that run alignment alone: `length` empty rows.

    The Trainer's loop draws one (ignored) batch of it per micro-step, which keeps its step
    counting, checkpointing and resuming unchanged.
    """

    def __init__(self, length: int) -> None:
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {}


def _collate_alignment_only(rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    return {"alignment_only_rows": torch.tensor(len(rows))}


class AlignmentTrainer(Trainer):
    """A [`~transformers.Trainer`] that adds alignment losses on parallel text to task fine-tuning.

    Each micro-step runs the task forward and backward as the Trainer does, then one forward
    of the encoder over the source and target sentences of a parallel batch and the backward
    of `λ * Σ_k w_k * L_k` (see [`AlignmentTrainingArguments`]). The two graphs are disjoint,
    so the two backward passes cost the same as one backward of the sum.

    Unlike `Trainer`, it ends a multi-process launch cleanly without `trainer.end()`: the default process
    group is destroyed when the interpreter exits normally ([`~hf_xalign.process_group.destroy_process_group_at_exit`]).

    A drop-in [`~transformers.Trainer`]: its parameters come first, with Trainer's names and in Trainer's
    order, and the alignment parameters after them. With no alignment asked for (a plain `TrainingArguments`
    or none, no `alignment_dataset`, no `alignment_loss`) it is `Trainer`: evaluation- and prediction-only
    use, Trainer's checkpoint files, model card, push and loss scaling under gradient accumulation.

    Where the alignment settings come from: an [`AlignmentTrainingArguments`] holds them beside the training
    ones. Any other `TrainingArguments` (a subclass of the user's own included) is kept as given, the very
    object, extra fields and all, and the alignment runs with [`AlignmentConfig`]'s defaults (`joint`, the
    `contrastive` loss unless `alignment_loss` says otherwise) when an `alignment_dataset` or an
    `alignment_loss` is given, and not at all otherwise; they are in `alignment_args`. TRL instead rebuilds
    its own config from `args.to_dict()`, which drops a subclass's extra fields and hands the user's
    callbacks an object that is not theirs: keeping the object costs nothing here, since every alignment
    setting is read from `alignment_args`, never from `args`.

    Args:
        model: a task model (`AutoModelForTokenClassification`, `...ForSequenceClassification`, ...),
            or with no task data a bare encoder or masked-LM model. Its `base_model` is the encoder.
            Either may be wrapped by PEFT (`peft.get_peft_model`, e.g. LoRA): the encoder is found through
            the wrapper, only the trainable (adapter) parameters are measured, and saving writes the adapter.
        args ([`~transformers.TrainingArguments`], *optional*): any `TrainingArguments`; an
            [`AlignmentTrainingArguments`] also sets the alignment. Defaults as in `Trainer`
            (`TrainingArguments(output_dir="tmp_trainer")`).
        data_collator, train_dataset, eval_dataset, processing_class, model_init, compute_loss_func,
        compute_metrics, callbacks, optimizers, optimizer_cls_and_kwargs, preprocess_logits_for_metrics:
            as in [`~transformers.Trainer`]. While aligning, `train_dataset=None` trains alignment alone
            (then `args.max_steps` must be set), and `processing_class` (the tokenizer) also encodes the
            parallel text.
        alignment_dataset: parallel text: a `datasets.Dataset` with `src`/`tgt`, or anything
            [`~hf_xalign.data.load_parallel`] reads (a TSV/JSONL path, a tuple of two
            line-aligned text files, or a list of sources).
        alignment_loss (`str`, [`AlignmentLoss`] or a list of them, *optional*): overrides
            `args.alignment_loss`; instances are used as given (their own options). Weighed by
            `args.alignment_loss_weights` if set (one weight per loss given here), else 1 each.

    Subclassing: [`compute_alignment_loss`] (the alignment objective of one batch),
    [`alignment_lambda`] (λ at a step) and [`alignment_objectives`] (which objectives run at a
    step) are the hooks to override.
    """

    def __init__(
        self,
        model: PreTrainedModel | nn.Module | None = None,
        args: TrainingArguments | None = None,
        data_collator: DataCollator | None = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        processing_class: PreTrainedTokenizerBase
        | BaseImageProcessor
        | FeatureExtractionMixin
        | ProcessorMixin
        | None = None,
        model_init: Callable[..., PreTrainedModel] | None = None,
        compute_loss_func: Callable | None = None,
        compute_metrics: Callable[[EvalPrediction], dict] | None = None,
        callbacks: list[TrainerCallback] | None = None,
        optimizers: tuple[torch.optim.Optimizer | None, torch.optim.lr_scheduler.LambdaLR | None] = (None, None),
        optimizer_cls_and_kwargs: tuple[type[torch.optim.Optimizer], dict[str, Any]] | None = None,
        preprocess_logits_for_metrics: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        alignment_dataset: Any = None,
        alignment_loss: str | AlignmentLoss | Sequence[str | AlignmentLoss] | None = None,
    ) -> None:
        if args is None:
            args = TrainingArguments(output_dir="tmp_trainer")  # Trainer's own default
        if isinstance(args, AlignmentTrainingArguments):
            settings: AlignmentConfig = args
            self.alignment_configured = True
        else:
            # The user's arguments are kept as they are; alignment runs with the defaults when asked for by
            # giving parallel data or a loss, and is off otherwise.
            asked = alignment_dataset is not None or alignment_loss is not None
            settings = AlignmentConfig(alignment_mode="joint" if asked else "none", alignment_seed=args.seed)
            self.alignment_configured = asked
        self.alignment_args = settings
        aligning = settings.alignment_mode != "none"
        if aligning and alignment_dataset is None:
            way_out = "args.alignment_mode='none'" if settings is args else "no alignment_loss"
            raise ValueError(f"AlignmentTrainer needs an alignment_dataset (parallel text) to align, or {way_out}.")
        self.task_dataset = train_dataset
        if train_dataset is None and aligning:
            if args.max_steps <= 0:
                raise ValueError("Alignment-only training (no train_dataset) needs args.max_steps > 0.")
            train_dataset, data_collator = self._alignment_only_data(args, args.max_steps)
        super().__init__(
            model=model,
            args=args,
            data_collator=data_collator,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=processing_class,
            model_init=model_init,
            compute_loss_func=compute_loss_func,
            compute_metrics=compute_metrics,
            callbacks=callbacks,
            optimizers=optimizers,
            optimizer_cls_and_kwargs=optimizer_cls_and_kwargs,
            preprocess_logits_for_metrics=preprocess_logits_for_metrics,
        )
        # A launch that ends right after a collective can abort at exit unless its group is destroyed first.
        destroy_process_group_at_exit()
        if self.alignment_configured:
            # The task loss is averaged per micro-batch and divided by the accumulation count. Task
            # heads such as XLM-R's take **kwargs in forward yet ignore `num_items_in_batch`, and the
            # Trainer would then scale their loss by the accumulation count; the alignment loss uses
            # the same per-micro-batch mean, so λ weighs like against like. Without alignment, Trainer's
            # own choice stands.
            self.model_accepts_loss_kwargs = False
        losses = self._build_losses(alignment_loss) if aligning else []
        self.alignment_loss_names = _unique_names([loss.name for loss in losses])
        self.alignment_loss_weights = self._loss_weights(losses) if aligning else []
        self.alignment_losses = nn.ModuleList(losses)
        unwrapped = self.accelerator.unwrap_model(self.model)
        inner_model = task_model(unwrapped)  # the transformers model, inside a PEFT wrapper or not
        for loss in self.alignment_losses:
            loss.setup(inner_model)
        self._check_layers(inner_model)
        _check_vocabulary(inner_model, processing_class)
        self.alignment_losses.to(args.device)

        self.alignment_stream: AlignmentStream | None = None
        if aligning:
            if processing_class is None:
                raise ValueError("AlignmentTrainer needs processing_class=<tokenizer> to encode the parallel text.")
            if not isinstance(alignment_dataset, datasets.Dataset):
                alignment_dataset = load_parallel(alignment_dataset)
            views = frozenset().union(*(loss.requires for loss in losses))
            collator = ParallelCollator(
                processing_class, settings.alignment_max_length, views, settings.mlm_probability
            )
            self.alignment_stream = AlignmentStream(
                collator.encode_dataset(alignment_dataset),  # tokenized once: steps only pad and mask
                collator,
                batch_size=settings.alignment_batch_size,
                seed=settings.alignment_seed,
                accumulation_steps=args.gradient_accumulation_steps,
                rank=args.process_index,
                world_size=args.world_size,
                prefetch=settings.alignment_prefetch,
            )
        self.alignment_stage = settings.alignment_mode == "sequential" and self.task_dataset is not None
        self.alignment_groups = self._backward_groups()
        # A shared forward's graph must survive until the last group that reads it.
        reads_shared = [
            any(self.alignment_losses[i].reads_shared_forward() for i in members)
            for _, members in self.alignment_groups
        ]
        self._retain_graph = [here and any(reads_shared[k + 1 :]) for k, here in enumerate(reads_shared)]
        self.gradient_splitter: GradientSplitter | None = None
        self.conflict_callback: GradientConflictCallback | None = None
        # Whether the parameters are FSDP2 DTensors (each process holds shards of the averaged gradients).
        self._sharded_gradients = False
        if settings.conflict_every > 0:
            self.gradient_splitter = self._new_gradient_splitter(self._named_trainable_parameters())
            self.conflict_callback = GradientConflictCallback()
            self.add_callback(self.conflict_callback)
        self.combination_state = CombinationState()
        self.combination_options = CombinationOptions(
            gradvac_beta=settings.gradvac_beta,
            balance_ratio=settings.balance_ratio,
            adaptive_gain=settings.adaptive_lambda_gain,
            adaptive_max=settings.adaptive_lambda_max,
            adaptive_beta=settings.adaptive_lambda_beta,
        )
        self._micro_step = (-1, 0)  # (optimizer step, micro-steps seen in it)
        self._metric_sums: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), device=args.device))
        self._metric_steps: dict[str, int] = defaultdict(int)
        self._step_sums: dict[str, torch.Tensor] = {}  # the current optimizer step's values, until it is applied
        self.nonfinite = NonfiniteSteps(settings.skip_nonfinite_steps)
        self._measurements_since_log: list[ConflictMeasurement] = []

    # ---- construction helpers ----

    def create_accelerator_and_postprocess(self) -> None:
        """Builds the accelerator as the Trainer does, refusing the engines not supported yet.

        FSDP2 is supported; FSDP1 and DeepSpeed asked for in the arguments or by the launcher are
        refused before any plugin is built, and an accelerator that ends up with either anyway is
        refused right after.
        """
        requested = _requested_unsupported_engine(self.args)
        if requested is not None:
            raise NotImplementedError(_unsupported_engine_message(requested))
        super().create_accelerator_and_postprocess()
        distributed_type = self.accelerator.distributed_type
        if distributed_type == DistributedType.DEEPSPEED:
            raise NotImplementedError(_unsupported_engine_message("DeepSpeed (the accelerator's distributed type)"))
        fsdp_version = getattr(getattr(self.accelerator.state, "fsdp_plugin", None), "fsdp_version", 1)
        if distributed_type == DistributedType.FSDP and fsdp_version != SUPPORTED_FSDP_VERSION:
            raise NotImplementedError(
                _unsupported_engine_message(f"FSDP{fsdp_version} (the accelerator's FSDP plugin)")
            )

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

    @staticmethod
    def _alignment_only_data(args: AlignmentTrainingArguments, steps: int) -> tuple[AlignmentOnlySteps, Any]:
        rows = steps * args.gradient_accumulation_steps * args.per_device_train_batch_size * max(args.world_size, 1)
        return AlignmentOnlySteps(rows), _collate_alignment_only

    def _build_losses(self, alignment_loss: Any) -> list[AlignmentLoss]:
        if alignment_loss is None:
            return [
                get_loss_class(name).from_training_args(self.alignment_args)
                for name in self.alignment_args.alignment_loss
            ]
        specs = alignment_loss if isinstance(alignment_loss, (list, tuple)) else [alignment_loss]
        return [
            spec if isinstance(spec, AlignmentLoss) else get_loss_class(spec).from_training_args(self.alignment_args)
            for spec in specs
        ]

    def _loss_weights(self, losses: list[AlignmentLoss]) -> list[float]:
        """One weight per loss: `args.alignment_loss_weights` when set, else 1 each.

        The arguments checked their weights against `args.alignment_loss`; losses given to the
        trainer as `alignment_loss=` take the same weights only if they are as many.
        """
        weights = self.alignment_args.alignment_loss_weights
        if weights is None:
            return [1.0] * len(losses)
        if len(weights) != len(losses):
            raise ValueError(
                f"args.alignment_loss_weights has {len(weights)} weights, but AlignmentTrainer(alignment_loss=...) "
                f"was given {len(losses)} losses ({', '.join(loss.name for loss in losses)}). Either give one weight "
                "per loss passed to the trainer, or set the losses with their weights in args.alignment_loss and "
                "args.alignment_loss_weights and leave the trainer's alignment_loss unset."
            )
        return list(weights)

    def _backward_groups(self) -> list[tuple[str, list[int]]]:
        """The alignment backward passes of a step: `(objective name, loss indices)` in order.

        Losses that read the shared source+target forward backpropagate together (one group,
        `shared`), unless `conflict_split_shared_forward` asks for one group each; a loss with
        a forward of its own is always its own group. Shared-forward groups come first.
        """
        shared = [i for i, loss in enumerate(self.alignment_losses) if loss.reads_shared_forward()]
        own = [i for i, loss in enumerate(self.alignment_losses) if not loss.reads_shared_forward()]
        groups: list[tuple[str, list[int]]] = []
        if shared and (self.alignment_args.conflict_split_shared_forward or len(shared) == 1):
            groups += [(self.alignment_loss_names[i], [i]) for i in shared]
        elif shared:
            groups.append((SHARED_FORWARD, shared))
        groups += [(self.alignment_loss_names[i], [i]) for i in own]
        return groups

    def _check_layers(self, model: nn.Module) -> None:
        """A loss reading a layer the model does not have fails here, not at the first step."""
        layers = num_blocks(model)
        if layers is None:
            return
        for key, loss in zip(self.alignment_loss_names, self.alignment_losses):
            layer = getattr(loss, "layer", None)
            if layer is not None:
                try:
                    resolve_layer(layer, layers)
                except ValueError as error:
                    raise ValueError(f"Alignment loss {key!r}: {error} Set alignment_layer.") from None

    # ---- the schedule: which objectives, which λ ----

    def alignment_objectives(self, step: int) -> tuple[bool, bool]:
        """`(task, alignment)`: which objectives run at optimizer step `step`."""
        mode = self.alignment_args.alignment_mode
        if self.task_dataset is None or self.alignment_stage:
            return False, True
        if mode in ("sequential", "none"):
            return True, False
        if mode == "alternate":
            return True, (step + 1) % self.alignment_args.alignment_every == 0
        return True, True

    def _measures(self, step: int) -> bool:
        """Whether step `step` is measured: every `conflict_every`-th step that runs both objectives."""
        if self.alignment_args.alignment_mode == "alternate":  # count only the steps that align
            return ((step + 1) // self.alignment_args.alignment_every - 1) % self.alignment_args.conflict_every == 0
        return step % self.alignment_args.conflict_every == 0

    def alignment_lambda(self, step: int) -> float:
        """λ at optimizer step `step`, from the schedule in the arguments."""
        args = self.alignment_args
        return alignment_lambda_at(
            step,
            args.alignment_lambda,
            args.alignment_lambda_schedule,
            warmup_steps=args.alignment_lambda_warmup_steps,
            total_steps=self.state.max_steps,
            milestones=args.alignment_lambda_milestones or (),
            milestone_values=args.alignment_lambda_milestone_values or (),
        )

    # ---- the training step ----

    def compute_alignment_loss(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Each alignment loss's (unweighted) value on one parallel batch, keyed by loss name.

        Source and target sentences go through the encoder in one forward, shared by all
        losses that read clean representations, and stopped after the highest layer they read
        (`AlignmentLoss.layers_read`); MLM/TLM run their own masked forward. The trainer weighs
        the values with `alignment_loss_weights` and λ.
        """
        encoder = encoder_of(self.accelerator.unwrap_model(model))
        num_layers = num_blocks(encoder)
        layers = None
        # The early exit stops the forward by raising out of the encoder, past FSDP2's post-forward hooks
        # (which reshard and set up the reduce-scatter): sharded models run the full forward.
        if num_layers is not None and not self._sharded_gradients:
            layers = set().union(*(loss.layers_read(num_layers) for loss in self.alignment_losses))
        encoding = ParallelEncoding(encoder, batch, layers)
        return {name: loss(encoding) for name, loss in zip(self.alignment_loss_names, self.alignment_losses)}

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
        if run_alignment:
            self._record("align_lambda", torch.tensor(lam / self.current_gradient_accumulation_steps))
        if self.accelerator.sync_gradients:
            if self._skips_step(distributed):
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
                checked["task loss"] = task_loss
                total = total + task_loss
            if not aligning:
                if checked and self.nonfinite.all_finite(checked, step):
                    self._record("task_loss", task_loss)
                return total
            batch = send_to_device(self.alignment_stream.batch(step, micro_step), self.args.device)
            model.train()
            with self.compute_loss_context_manager():
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
        measured steps the task part (and the other buffered parts) too; `conflict_statistic="pooled"`
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
                for buffer in splitter.buffers.values():
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

    # ---- logging: averaged per optimizer step, merged before Trainer.log fans out ----

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

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._measurements_since_log:
            logs.update(mean_logs(self._measurements_since_log))
            self._measurements_since_log = []
        if "loss" in logs and self._metric_steps:
            keys = sorted(self._metric_steps)
            sums = torch.stack([self._metric_sums[key] for key in keys])
            sums = self.accelerator.reduce(sums, reduction="mean") if self.args.world_size > 1 else sums
            for key, value in zip(keys, sums.tolist()):
                logs[key] = value / self._metric_steps[key]
            self._metric_sums.clear()
            self._metric_steps.clear()
        if "loss" in logs and self.alignment_args.skip_nonfinite_steps > 0:
            logs[SKIPPED_STEPS_LOG_KEY] = len(self.nonfinite.skipped)  # in the whole run so far
        super().log(logs, start_time)

    # ---- loss-owned parameters: optimized, saved, restored ----

    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        created = self.optimizer is None
        optimizer = super().create_optimizer(model)
        if created and self.alignment_args.head_learning_rate is not None:
            self._give_head_its_learning_rate(optimizer, model if model is not None else self.model)
        loss_params = [(n, p) for n, p in self.alignment_losses.named_parameters() if p.requires_grad]
        if created and loss_params:
            decay = set(self.get_decay_parameter_names(self.alignment_losses))
            for names, weight_decay in ((decay, self.args.weight_decay), (None, 0.0)):
                group = [p for n, p in loss_params if (n in decay) == (names is not None)]
                if group:
                    optimizer.add_param_group({"params": group, "weight_decay": weight_decay})
        return optimizer

    def _give_head_its_learning_rate(self, optimizer: torch.optim.Optimizer, model: nn.Module) -> None:
        """Move the task head's parameters into groups of their own at `head_learning_rate`."""
        unwrapped = self.accelerator.unwrap_model(model)
        prefix = encoder_prefix(unwrapped)
        if encoder_of(unwrapped) is task_model(unwrapped):
            raise ValueError("head_learning_rate: the model is a bare encoder, it has no task head.")
        head = {id(p) for name, p in unwrapped.named_parameters() if not name.startswith(prefix + ".")}
        # Before the first step the optimizer holds no state, so its groups can still be re-cut.
        for group in list(optimizer.param_groups):
            head_params = [p for p in group["params"] if id(p) in head]
            if head_params:
                group["params"] = [p for p in group["params"] if id(p) not in head]
                optimizer.add_param_group(
                    {**group, "params": head_params, "lr": self.alignment_args.head_learning_rate}
                )
        optimizer.param_groups[:] = [group for group in optimizer.param_groups if group["params"]]

    def _with_loss_parameters(self, model: nn.Module) -> nn.Module:
        """`model`, or with loss-owned parameters one module holding `model` and the losses (each parameter once).

        Trainer's clipping and gradient norm read `model.parameters()`: given this module they clip the
        loss-owned heads with the model as one norm, and log that norm, through every path of theirs.
        """
        if not any(True for _ in self.alignment_losses.parameters()):
            return model
        return nn.ModuleList([model, self.alignment_losses])

    def _clip_grad_norm(self, model: nn.Module) -> torch.Tensor:
        return super()._clip_grad_norm(self._with_loss_parameters(model))

    def _get_grad_norm(self, model: nn.Module, grad_norm: torch.Tensor | float | None = None):
        return super()._get_grad_norm(self._with_loss_parameters(model), grad_norm)

    def save_model(self, output_dir: str | None = None, **kwargs: Any) -> None:
        """Save as [`~transformers.Trainer.save_model`], then what alignment adds beside the model.

        `alignment_losses.safetensors` (the loss-owned heads), `alignment_config.json`, the combining
        rules' state and the skipped steps when they are in use, and the alignment model card; into
        checkpoints too, which Trainer saves through this method. Without alignment configured (plain
        `TrainingArguments`, no alignment data or loss), Trainer's files alone.
        """
        super().save_model(output_dir, **kwargs)
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if not self.args.should_save or not self.alignment_configured:
            return
        os.makedirs(output_dir, exist_ok=True)
        loss_state = {k: v.detach().contiguous().cpu() for k, v in self.alignment_losses.state_dict().items()}
        if loss_state:
            save_file(loss_state, os.path.join(output_dir, ALIGNMENT_LOSSES_NAME), metadata={"format": "pt"})
        with open(os.path.join(output_dir, ALIGNMENT_CONFIG_NAME), "w", encoding="utf-8") as f:
            json.dump(self.alignment_config(), f, indent=2)
        if self.alignment_args.gradient_combination != "sum":
            with open(os.path.join(output_dir, COMBINATION_STATE_NAME), "w", encoding="utf-8") as f:
                json.dump(self.combination_state.to_dict(), f, indent=2)
        if self.alignment_args.skip_nonfinite_steps > 0:  # the skips left after a resume
            with open(os.path.join(output_dir, SKIPPED_STEPS_NAME), "w", encoding="utf-8") as f:
                json.dump(self.nonfinite.state_dict(), f, indent=2)
        self._write_model_card(output_dir)

    # ---- model card and Hub: the card is written from the saved files, as TRL writes its cards on save ----

    def _write_model_card(self, folder: str, model_name: str | None = None, **card_options: Any) -> None:
        repo_id = self.hub_model_id or self.args.hub_model_id
        card = build_model_card(folder, repo_id, model_name=model_name, **card_options)
        card.save(os.path.join(folder, MODEL_CARD_NAME))

    def create_model_card(
        self,
        language: str | None = None,
        license: str | None = None,
        tags: str | list[str] | None = None,
        model_name: str | None = None,
        finetuned_from: str | None = None,
        tasks: str | list[str] | None = None,
        dataset_tags: str | list[str] | None = None,
        dataset: str | list[str] | None = None,
        dataset_args: str | list[str] | None = None,
    ) -> None:
        """Write `output_dir/README.md`: the alignment card (`hf_xalign.model_card`) instead of Trainer's generic one.

        The card's facts come from the saved files (languages, base model and datasets included);
        `license`, `tags` and `model_name` are added, the other arguments are Trainer's and unused.
        Without alignment configured, Trainer's own card.
        """
        if not self.alignment_configured:
            return super().create_model_card(
                language, license, tags, model_name, finetuned_from, tasks, dataset_tags, dataset, dataset_args
            )
        if not self.is_world_process_zero():
            return
        extra_tags = [tags] if isinstance(tags, str) else list(tags or [])
        self._write_model_card(self.args.output_dir, model_name=model_name, license=license, tags=extra_tags)

    def push_to_hub(
        self,
        commit_message: str | None = "End of training",
        blocking: bool = True,
        token: str | None = None,
        revision: str | None = None,
        private: bool | None = None,
        **kwargs: Any,
    ) -> str | None:
        """Save the model and push `output_dir` to `args.hub_model_id` with the alignment card.

        As [`~transformers.Trainer.push_to_hub`], but what is uploaded is what `hf_xalign.hub` publishes:
        no pickles (`training_args.bin`), no checkpoints or alignment stage, and the loss-owned heads
        only with `hub_push_loss_heads`. Blocking; returns the commit URL on the main process.
        """
        if not self.alignment_configured:
            return super().push_to_hub(commit_message, blocking, token, revision, private, **kwargs)
        self.callback_handler.on_push_begin(self.args, self.state, self.control)
        token = token if token is not None else self.args.hub_token
        if self.hub_model_id is None:
            self.init_hf_repo(token=token, private=private)
        save_model_without_push(self)
        if not self.is_world_process_zero():
            return None
        finish_current_push(self)
        return push_aligned(
            self.args.output_dir,
            self.hub_model_id,
            token=token,
            revision=revision if revision is not None else self.args.hub_revision,
            commit_message=commit_message or "End of training",
            include_loss_heads=self.alignment_args.hub_push_loss_heads,
            model_name=kwargs.get("model_name"),
        )

    def alignment_config(self) -> dict[str, Any]:
        """How this model is being aligned, for `alignment_config.json` and the model card.

        The losses (options and weights), λ and its schedule, the mode (and whether the run is
        alignment-only: no task data), the layer and pooling the losses read, the parallel data
        (pairs per language pair), steps and seeds, the base model and the package version; for a
        PEFT model, under `adapter`, the wrapped model's class and labels, which the saved adapter
        does not record and [`~hf_xalign.load_aligned`] needs to rebuild it.
        """
        args = self.alignment_args
        unwrapped = self.accelerator.unwrap_model(self.model)
        model = task_model(unwrapped)
        model_config = getattr(model, "config", None)
        num_layers = num_blocks(model)
        pairs = self.alignment_stream.dataset if self.alignment_stream else None
        return {
            "hf_xalign_version": __version__,
            "base_model": getattr(model_config, "name_or_path", None) or None,
            "losses": [
                {
                    "name": loss.name,
                    "key": key,
                    "weight": weight,
                    "config": loss.get_config_dict(),
                    "citation": loss.citation,
                }
                for key, weight, loss in zip(
                    self.alignment_loss_names, self.alignment_loss_weights, self.alignment_losses
                )
            ],
            "lambda": args.alignment_lambda,
            "lambda_schedule": args.alignment_lambda_schedule,
            "mode": args.alignment_mode,
            "alignment_only": self.task_dataset is None,  # no task data: an encoder aligned for later fine-tuning
            "layer": resolve_layer(args.alignment_layer, num_layers) if num_layers else args.alignment_layer,
            "pooling": args.alignment_pooling,
            "alignment_batch_size": args.alignment_batch_size,
            "alignment_pairs": len(pairs) if pairs is not None else 0,
            "language_pairs": language_pair_counts(pairs) if pairs is not None else {},
            "steps": self.state.global_step,
            "alignment_steps": args.alignment_steps if args.alignment_mode == "sequential" else 0,
            "seed": self.args.seed,
            "alignment_seed": args.alignment_seed,
            "gradient_combination": args.gradient_combination,
            **({"adapter": adapted_model_facts(unwrapped)} if is_peft_model(unwrapped) else {}),
        }

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        state_path = os.path.join(resume_from_checkpoint, COMBINATION_STATE_NAME)
        if os.path.isfile(state_path):  # GradVac targets / adaptive EMA: an exact resume needs them
            with open(state_path, encoding="utf-8") as f:
                self.combination_state = CombinationState.from_dict(json.load(f))
        skipped_path = os.path.join(resume_from_checkpoint, SKIPPED_STEPS_NAME)
        if os.path.isfile(skipped_path):
            with open(skipped_path, encoding="utf-8") as f:
                self.nonfinite.load_state_dict(json.load(f))
        path = os.path.join(resume_from_checkpoint, ALIGNMENT_LOSSES_NAME)
        if os.path.isfile(path):
            self.alignment_losses.load_state_dict(load_file(path, device=str(self.args.device)))
        elif any(True for _ in self.alignment_losses.parameters()):
            raise FileNotFoundError(
                f"{path} is missing: the checkpoint has no state for the loss-owned parameters "
                f"({', '.join(self.alignment_loss_names)})."
            )

    # ---- sequential mode: an alignment stage, then the task stage ----

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs: Any):
        """Trains as [`~transformers.Trainer.train`]; in `sequential` mode, the alignment stage first.

        `resume_from_checkpoint` may point into either stage: a checkpoint under
        `output_dir/_alignment_stage` finishes the stage, then trains the task; a checkpoint of the
        task stage skips the finished alignment stage. `True` resumes from the task stage's last
        checkpoint if there is one, else from the alignment stage's. The stage's log history is
        kept in `alignment_stage_log_history`. The alignment stream's prefetch thread is stopped
        when training ends, however it ends.
        """
        try:
            return self._train_stages(resume_from_checkpoint, **kwargs)
        finally:
            if self.alignment_stream is not None:
                self.alignment_stream.close()

    def _train_stages(self, resume_from_checkpoint: str | bool | None, **kwargs: Any):
        if not self.alignment_stage:
            resume = _complete_resume_point(resume_from_checkpoint, self.args.output_dir)
            return super().train(resume_from_checkpoint=resume, **kwargs)
        stage_args = self._alignment_stage_args()
        resume_stage, resume_task = _split_resume(resume_from_checkpoint, self.args.output_dir, stage_args.output_dir)
        if resume_task is None:
            self._run_alignment_stage(stage_args, resume_stage, **kwargs)
        else:
            self.alignment_stage_log_history = _saved_log_history(stage_args.output_dir)
        self.alignment_stage = False
        self.optimizer, self.lr_scheduler = None, None  # the task stage starts with a fresh optimizer
        return super().train(resume_from_checkpoint=resume_task, **kwargs)

    def _alignment_stage_args(self) -> AlignmentTrainingArguments:
        """The alignment stage's own arguments: its folder, its length, and no Hub push.

        A shallow copy, not `dataclasses.replace`: rebuilding the arguments runs `__post_init__`,
        whose device setup resets accelerate's shared `AcceleratorState`, which this trainer's
        accelerator reads. The copy keeps the resolved device and distributed state, and the
        user's arguments stay as they were.
        """
        stage_args = copy.copy(self.args)
        stage_args.output_dir = os.path.join(self.args.output_dir, ALIGNMENT_STAGE_DIR)
        stage_args.max_steps = self.alignment_args.alignment_steps
        # A push from inside the stage would upload the stage's folder as the model repository.
        stage_args.push_to_hub = False
        # The stage has no task to evaluate: no evaluation, so no best model to keep or load. Its checkpoints
        # (for a resume inside the stage) follow the user's save strategy; `best` has no metric here.
        stage_args.eval_strategy = IntervalStrategy.NO
        stage_args.load_best_model_at_end = False
        if stage_args.save_strategy == SaveStrategy.BEST:
            stage_args.save_strategy = SaveStrategy.NO
        return stage_args

    def _run_alignment_stage(self, stage_args: AlignmentTrainingArguments, resume: str | None, **kwargs: Any) -> None:
        """Trains the stage on its own arguments and alignment-only steps, then puts back the task's."""
        task_settings = (self.args, self.train_dataset, self.data_collator)
        self.args = stage_args
        self.train_dataset, self.data_collator = self._alignment_only_data(stage_args, stage_args.max_steps)
        # Early stopping watches the task's evaluations, which the stage does not run (and it refuses a run
        # without them): it sits the stage out.
        early_stopping = [c for c in self.callback_handler.callbacks if isinstance(c, EarlyStoppingCallback)]
        for callback in early_stopping:
            self.remove_callback(callback)
        try:
            super().train(resume_from_checkpoint=resume, **kwargs)
            if task_settings[0].save_strategy != SaveStrategy.NO:
                # The stage's log history, for a run later resumed from a task-stage checkpoint.
                os.makedirs(stage_args.output_dir, exist_ok=True)
                self.save_state()
            self.alignment_stage_log_history = list(self.state.log_history)
        finally:
            self.args, self.train_dataset, self.data_collator = task_settings
            for callback in early_stopping:
                self.add_callback(callback)


def _check_vocabulary(model: nn.Module, tokenizer: Any) -> None:
    """A tokenizer whose ids the model's embeddings cannot look up fails here, not inside the first forward."""
    if not isinstance(tokenizer, PreTrainedTokenizerBase):
        return
    try:
        embeddings = model.get_input_embeddings()
    except (AttributeError, NotImplementedError):
        return
    rows = getattr(embeddings, "num_embeddings", None)
    largest_id = max(tokenizer.get_vocab().values(), default=-1)
    if rows is not None and largest_id >= rows:
        raise ValueError(
            f"The tokenizer (processing_class) has {len(tokenizer)} tokens, ids up to {largest_id}, but the model's "
            f"input embeddings have {rows} rows (ids 0 to {rows - 1}): those tokens would index past the embedding "
            "table. Use the tokenizer the model was trained with, or grow the table with "
            "model.resize_token_embeddings(len(tokenizer)) before building the trainer."
        )


@contextlib.contextmanager
def _no_capture(objective: str):
    yield


def _unique_names(names: list[str]) -> list[str]:
    """Loss keys for logs: the name, suffixed with its position when a name repeats."""
    return [name if names.count(name) == 1 else f"{name}_{i}" for i, name in enumerate(names)]


def _requested_unsupported_engine(args: AlignmentTrainingArguments) -> str | None:
    """FSDP1 or DeepSpeed, and what asked for it, if the arguments or the launcher do; else `None`.

    `accelerate launch --use_fsdp` / `--use_deepspeed` (and an `Accelerator` built with such a
    plugin) set `ACCELERATE_USE_FSDP` / `ACCELERATE_USE_DEEPSPEED`, and `FSDP_VERSION` (accelerate
    reads a missing one as 1); the training arguments' `fsdp_config["version"]` defaults to 2.
    """
    if args.fsdp or args.fsdp_config:
        version = int((args.fsdp_config or {}).get("version", SUPPORTED_FSDP_VERSION))
        if version != SUPPORTED_FSDP_VERSION:
            return f"FSDP{version} (the `fsdp` / `fsdp_config` training arguments, fsdp_config['version'] = {version})"
    if parse_flag_from_env("ACCELERATE_USE_FSDP"):
        version = int(os.environ.get("FSDP_VERSION", "1"))
        if version != SUPPORTED_FSDP_VERSION:
            return f"FSDP{version} (`accelerate launch --use_fsdp` with fsdp_version {version}, or ACCELERATE_USE_FSDP set)"
    if args.deepspeed:
        return "DeepSpeed (the `deepspeed` training argument)"
    if parse_flag_from_env("ACCELERATE_USE_DEEPSPEED"):
        return "DeepSpeed (`accelerate launch --use_deepspeed`, or ACCELERATE_USE_DEEPSPEED set)"
    return None


def _unsupported_engine_message(engine: str) -> str:
    fix = (
        "Launch with FSDP2 instead (`fsdp_version: 2` in the accelerate config, `accelerate launch --use_fsdp "
        "--fsdp_version 2`, or fsdp_config={'version': 2}), or with DDP"
        if engine.startswith("FSDP")
        else "Launch with FSDP2 or DDP instead"
    )
    return (
        f"AlignmentTrainer does not support {engine} yet: the split of task and alignment gradients, its "
        "statistics and the gradient averaging follow full gradients (DDP) or FSDP2's DTensor gradient shards, not "
        f"this engine's, so training would run but be wrong. {fix} (`accelerate launch --multi_gpu ...` or "
        "`torchrun --nproc_per_node N ...`), or on one process; to save memory, lower per_device_train_batch_size "
        "and raise gradient_accumulation_steps, or set activation_checkpointing=True."
    )


def _saved_log_history(output_dir: str) -> list[dict[str, Any]]:
    """The log history a finished run saved in `output_dir` (`Trainer.save_state`); empty if none."""
    path = os.path.join(output_dir, TRAINER_STATE_NAME)
    return TrainerState.load_from_json(path).log_history if os.path.isfile(path) else []


def _complete_resume_point(resume: str | bool | None, output_dir: str) -> str | bool | None:
    """`resume_from_checkpoint` with `True` resolved to the last checkpoint written completely in `output_dir`.

    A folder named explicitly must be complete too; anything else goes to Trainer as given.
    """
    if resume is True:
        checkpoint = last_complete_checkpoint(output_dir)
        if checkpoint is None:
            # Trainer's message first, so that code matching it still does; then why a folder may not count.
            raise ValueError(
                f"No valid checkpoint found in output directory ({output_dir}): no checkpoint there was written "
                f"completely ({TRAINER_STATE_NAME} last)."
            )
        return checkpoint
    if isinstance(resume, str) and os.path.isdir(resume):
        check_checkpoint_complete(resume)
    return resume


def _split_resume(resume: str | bool | None, output_dir: str, stage_dir: str) -> tuple[str | None, str | None]:
    """Which stage a `resume_from_checkpoint` value resumes: `(alignment stage ckpt, task stage ckpt)`."""
    if resume is None or resume is False:
        return None, None
    if resume is True:
        task = last_complete_checkpoint(output_dir)
        if task is not None:
            return None, task
        stage = last_complete_checkpoint(stage_dir)
        if stage is None:
            raise ValueError(
                f"No valid checkpoint found in output directory ({output_dir}), nor in the alignment stage's "
                f"({stage_dir}): no checkpoint there was written completely ({TRAINER_STATE_NAME} last)."
            )
        return stage, None
    resume = _complete_resume_point(resume, output_dir)
    resume = os.path.abspath(resume)
    if os.path.commonpath([resume, os.path.abspath(stage_dir)]) == os.path.abspath(stage_dir):
        return resume, None
    return None, resume
