"""`AlignmentTrainer`: a `transformers.Trainer` that adds cross-lingual alignment losses.

This module holds the class and its public surface: construction, `train`, `log`, the optimizer (with the
loss-owned parameters) and the hooks a subclass overrides. The rest of its methods come from one mixin per
job: the training step ([`~hf_xalign.trainer.step`]), the sequential mode's stages and resuming
([`~hf_xalign.trainer.stages`]), what is saved and loaded ([`~hf_xalign.trainer.saving`]) and the engines
refused ([`~hf_xalign.trainer.engines`]).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import datasets
import torch
from torch import nn
from transformers import (
    BaseImageProcessor,
    DataCollator,
    EvalPrediction,
    FeatureExtractionMixin,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    ProcessorMixin,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from ..adapters import encoder_of, encoder_prefix, task_model
from ..args import AlignmentConfig, AlignmentTrainingArguments
from ..conflict import ConflictMeasurement, GradientConflictCallback, GradientSplitter, mean_logs
from ..data.collator import ParallelCollator
from ..data.parallel import load_parallel
from ..data.stream import AlignmentStream
from ..distributed import PendingAverage
from ..layers import num_blocks, resolve_layer
from ..losses import AlignmentLoss, get_loss_class
from ..nonfinite import SKIPPED_STEPS_LOG_KEY, NonfiniteSteps
from ..pooling import ParallelEncoding
from ..process_group import destroy_process_group_at_exit
from ..schedules import alignment_lambda_at
from ..surgery import CombinationOptions, CombinationState
from .engines import EnginesMixin
from .saving import SavingMixin
from .stages import StagesMixin
from .step import StepMixin

# The objective name of the alignment backward shared by the losses that read the source+target forward.
SHARED_FORWARD = "shared"


class AlignmentTrainer(StepMixin, StagesMixin, SavingMixin, EnginesMixin, Trainer):
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
        self._task_average: PendingAverage | None = None  # DDP: the average of `T` in flight, on measured steps
        self._metric_sums: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), device=args.device))
        self._metric_steps: dict[str, int] = defaultdict(int)
        self._step_sums: dict[str, torch.Tensor] = {}  # the current optimizer step's values, until it is applied
        self.nonfinite = NonfiniteSteps(settings.skip_nonfinite_steps)
        self._measurements_since_log: list[ConflictMeasurement] = []

    # ---- construction helpers ----

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

    # ---- the alignment objective of one batch (the training step is in step.py) ----

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

    # ---- logging: averaged per optimizer step, merged before Trainer.log fans out ----

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

    # ---- loss-owned parameters: optimized, and clipped with the model (saved and restored: saving.py) ----

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

    # ---- training: in sequential mode an alignment stage, then the task stage (stages.py) ----

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


def _unique_names(names: list[str]) -> list[str]:
    """Loss keys for logs: the name, suffixed with its position when a name repeats."""
    return [name if names.count(name) == 1 else f"{name}_{i}" for i, name in enumerate(names)]
