"""`AlignmentTrainingArguments`: `TrainingArguments` plus the alignment and its schedule."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
from transformers import TrainingArguments

from .losses import get_loss_class
from .losses.token import TOKEN_DISTANCES
from .pooling import POOLINGS
from .schedules import LAMBDA_SCHEDULES
from .surgery import COMBINATIONS

ALIGNMENT_MODES: tuple[str, ...] = ("joint", "sequential", "alternate", "none")
CONFLICT_STATISTICS: tuple[str, ...] = ("averaged", "pooled")


@dataclass
class AlignmentConfig:
    r"""
    The alignment settings of [`AlignmentTrainer`], without the training ones.

    [`AlignmentTrainingArguments`] holds these fields beside those of [`~transformers.TrainingArguments`]; an
    `AlignmentTrainer` given a plain `TrainingArguments` (or a subclass of the user's own) reads its alignment
    settings from the defaults below instead.

    Parameters that control the alignment losses:
        alignment_loss (`list[str]`, *optional*, defaults to `["contrastive"]`):
            Registry names of the alignment losses (`contrastive`, `mse`, `cosine`, `token`, `mlm`,
            `tlm`, `distill`, `drift`, or a name added with `register_loss`). Several are summed with
            `alignment_loss_weights`.
        alignment_loss_weights (`list[float]`, *optional*):
            One weight per loss, in order; defaults to 1 for each. They also weigh losses passed to
            [`AlignmentTrainer`] as `alignment_loss=`, which must then be as many.
        alignment_layer (`int`, *optional*, defaults to `-1`):
            Layer the sentence/word losses read, numbered as in [`hf_xalign.layers`]: 0 = embedding
            output, `k` = output of the k-th transformer block, -1 = last.
        alignment_pooling (`str`, *optional*, defaults to `"mean"`):
            Sentence vector: `"mean"` over non-special tokens, or `"cls"`.
        alignment_temperature (`float`, *optional*, defaults to `0.05`):
            Temperature of the contrastive loss.
        alignment_token_distance (`str`, *optional*, defaults to `"l2"`):
            Distance of the `token` loss between aligned words: `"l2"` (squared Euclidean, as Cao et al.;
            it can be lowered by shrinking all vectors) or `"cosine"` (`1 - cos`, scale-free).
        mlm_probability (`float`, *optional*, defaults to `0.15`):
            Share of tokens corrupted for the `mlm` / `tlm` losses.

    Parameters that control λ, the weight of the alignment loss against the task loss:
        alignment_lambda (`float`, *optional*, defaults to `1.0`):
            λ in `task_loss + λ * alignment_loss` (the base value of the schedule).
        alignment_lambda_schedule (`str`, *optional*, defaults to `"constant"`):
            `constant`, `linear_warmup` (over `alignment_lambda_warmup_steps`), `linear_decay` (to 0 at
            the last step), or `step` (values from `alignment_lambda_milestones`).
        alignment_lambda_warmup_steps (`int`, *optional*, defaults to `0`):
            Steps of the linear warm-up.
        alignment_lambda_milestones (`list[int]`, *optional*):
            Steps at which the `step` schedule switches to the matching `alignment_lambda_milestone_values`.
        alignment_lambda_milestone_values (`list[float]`, *optional*):
            λ from each milestone on.

    Parameters that control when alignment runs:
        alignment_mode (`str`, *optional*, defaults to `"joint"`):
            `joint`: task + λ·alignment at every step. `sequential`: `alignment_steps` alignment-only
            steps first (a stage of its own, with its own optimizer, checkpoints under
            `output_dir/_alignment_stage`, never pushed to the Hub), then task-only training.
            `alternate`: task loss every step, alignment added on every `alignment_every`-th step
            only. `none`: task fine-tuning alone (the baseline of a comparison: same trainer, same
            loss scaling, no parallel data needed).
        alignment_steps (`int`, *optional*, defaults to `0`):
            Length of the alignment stage in `sequential` mode.
        alignment_every (`int`, *optional*, defaults to `2`):
            In `alternate` mode, alignment is added on steps where `(step + 1) % alignment_every == 0`.

    Parameters that control the gradient measurement and what is done with it:
        conflict_every (`int`, *optional*, defaults to `1`):
            Measure task vs alignment gradients (cosine, norms, per layer) every N optimizer steps;
            0 turns it off. Results go to the logs (`conflict/...`) and `output_dir/conflict.jsonl`.
        conflict_split_shared_forward (`bool`, *optional*, defaults to `False`):
            Give each loss that reads the shared source+target forward its own gradient and cosine
            (costs one extra backward per such loss). Losses with a forward of their own (`mlm`,
            `tlm`) always get their own.
        conflict_statistic (`str`, *optional*, defaults to `"averaged"`):
            Under DDP, which gradients the statistics describe (one process: the same either way).
            `averaged`: the step's averaged task and alignment gradients, the ones the optimizer
            applies; costs one more parameter-sized all-reduce (of the task part) on measured steps,
            amortized by `conflict_every`. `pooled`: each process's own gradients, their partial
            sums added over processes (`Σ_r T_r·A_r / √(Σ_r |T_r|² · Σ_r |A_r|²)`), with no extra
            all-reduce; a different, noisier quantity: per-process gradients carry more noise, so its
            cosine is pulled toward 0, more so the more processes run, and its norms are root sums of
            squares over processes. `pooled` needs `gradient_combination="sum"`.
        gradient_combination (`str`, *optional*, defaults to `"sum"`):
            How task and alignment gradients are combined before clipping and the optimizer step:
            `sum`, `pcgrad`, `gradvac`, `balance` or `adaptive` (see `hf_xalign.surgery`). Any rule
            but `sum` needs `conflict_every=1`.
        gradvac_beta (`float`, *optional*, defaults to `0.01`):
            EMA rate of GradVac's per-layer target similarity.
        balance_ratio (`float`, *optional*, defaults to `1.0`):
            `balance`: the alignment gradient is rescaled to this multiple of the task gradient's norm.
        adaptive_lambda_gain (`float`, *optional*, defaults to `1.0`), adaptive_lambda_max (`float`,
        *optional*, defaults to `2.0`), adaptive_lambda_beta (`float`, *optional*, defaults to `0.1`):
            `adaptive`: the alignment gradient is scaled by `clip(1 + gain * cos_ema, 0, max)`, where
            `cos_ema` is an EMA (rate `beta`) of the measured cosine.

    Parameters that control the parallel data:
        alignment_batch_size (`int`, *optional*, defaults to `16`):
            Translation pairs per micro-batch and device (each pair is 2 sentences in the forward).
        alignment_max_length (`int`, *optional*, defaults to `128`):
            Tokens per sentence of parallel text.
        alignment_seed (`int`, *optional*):
            Seed of the alignment stream; defaults to `seed`.
        alignment_prefetch (`bool`, *optional*, defaults to `True`):
            Collate the next alignment batch on a background thread while the current step trains.
            The batches are the same either way (a function of seed, step, micro-step and rank).

    Parameters that control the optimizer:
        head_learning_rate (`float`, *optional*):
            Learning rate of the task head (the parameters outside the encoder, e.g. `classifier.*`);
            defaults to `learning_rate`. A freshly initialized head learns faster with a larger rate
            than the pretrained encoder tolerates (as SetFit's `head_learning_rate`); the schedule
            scales both alike.

    Parameters that control what happens when a loss is not finite:
        skip_nonfinite_steps (`int`, *optional*, defaults to `0`):
            How many optimizer steps of the run may be skipped because the task loss or an alignment loss
            was NaN or infinite. A skipped step applies no update (all its gradients, every micro-step's
            under gradient accumulation, are dropped, so parameters and optimizer state stay as they
            were); `global_step`, λ's and the learning rate's schedules still advance, and its batches are
            not replayed. Each skip logs a warning, the logs carry `skipped_nonfinite_steps` (the count so
            far), and nothing of the step reaches the logged losses, `conflict.jsonl` or the combining
            rules' state. One more non-finite step, or any with the default 0, stops training with a
            `FloatingPointError` naming the step and the loss; checkpoints already saved are kept.

    Parameters that control what is published (with `push_to_hub`):
        hub_push_loss_heads (`bool`, *optional*, defaults to `False`):
            Also push the parameters the alignment losses own (`alignment_losses.safetensors`, e.g. an MLM
            head); the published model is the encoder and its task head without them.
    """

    alignment_loss: list[str] = field(
        default_factory=lambda: ["contrastive"], metadata={"help": "Alignment loss name(s), e.g. contrastive mlm."}
    )
    alignment_loss_weights: list[float] | None = field(
        default=None, metadata={"help": "One weight per alignment loss (default: 1 each)."}
    )
    alignment_layer: int = field(
        default=-1,
        metadata={
            "help": "Layer for sentence/word losses (hf_xalign.layers: 0 = embedding output, k = k-th block's output, -1 = last)."
        },
    )
    alignment_pooling: str = field(default="mean", metadata={"help": "Sentence pooling: mean or cls."})
    alignment_temperature: float = field(
        default=0.05, metadata={"help": "Contrastive temperature (smaller = sharper, harder negatives)."}
    )
    alignment_token_distance: str = field(
        default="l2", metadata={"help": "token loss distance: l2 (squared Euclidean) or cosine (1 - cos)."}
    )
    mlm_probability: float = field(default=0.15, metadata={"help": "Share of tokens corrupted for mlm / tlm."})
    alignment_lambda: float = field(default=1.0, metadata={"help": "λ in task_loss + λ * alignment_loss."})
    alignment_lambda_schedule: str = field(
        default="constant", metadata={"help": f"λ schedule: {', '.join(LAMBDA_SCHEDULES)}."}
    )
    alignment_lambda_warmup_steps: int = field(default=0, metadata={"help": "Steps of λ's linear warm-up."})
    alignment_lambda_milestones: list[int] | None = field(
        default=None, metadata={"help": "Steps where the 'step' λ schedule changes value."}
    )
    alignment_lambda_milestone_values: list[float] | None = field(
        default=None, metadata={"help": "λ from each milestone on ('step' schedule)."}
    )
    alignment_mode: str = field(default="joint", metadata={"help": f"One of {', '.join(ALIGNMENT_MODES)}."})
    alignment_steps: int = field(default=0, metadata={"help": "Alignment-only steps of the sequential mode."})
    alignment_every: int = field(default=2, metadata={"help": "Alternate mode: align on every k-th step."})
    conflict_every: int = field(
        default=1, metadata={"help": "Measure task vs alignment gradients every N steps (0 = off)."}
    )
    conflict_split_shared_forward: bool = field(
        default=False, metadata={"help": "Own gradient per loss of the shared forward (one extra backward each)."}
    )
    conflict_statistic: str = field(
        default="averaged",
        metadata={
            "help": "Under DDP: 'averaged' (the step's averaged gradients) or 'pooled' (each process's own, sums added)."
        },
    )
    gradient_combination: str = field(default="sum", metadata={"help": f"Combining rule: {', '.join(COMBINATIONS)}."})
    gradvac_beta: float = field(default=0.01, metadata={"help": "GradVac: EMA rate of the target similarity."})
    balance_ratio: float = field(default=1.0, metadata={"help": "balance: |align grad| = ratio * |task grad|."})
    adaptive_lambda_gain: float = field(default=1.0, metadata={"help": "adaptive: multiplier 1 + gain * cos_ema."})
    adaptive_lambda_max: float = field(default=2.0, metadata={"help": "adaptive: largest multiplier."})
    adaptive_lambda_beta: float = field(default=0.1, metadata={"help": "adaptive: EMA rate of the cosine."})
    alignment_batch_size: int = field(default=16, metadata={"help": "Translation pairs per micro-batch and device."})
    alignment_max_length: int = field(default=128, metadata={"help": "Max tokens per parallel sentence."})
    alignment_seed: int | None = field(default=None, metadata={"help": "Seed of the alignment stream (default: seed)."})
    alignment_prefetch: bool = field(
        default=True, metadata={"help": "Collate the next alignment batch on a background thread."}
    )
    head_learning_rate: float | None = field(
        default=None, metadata={"help": "Learning rate of the task head (default: learning_rate)."}
    )
    skip_nonfinite_steps: int = field(
        default=0,
        metadata={
            "help": "Skip up to N optimizer steps whose task or alignment loss is NaN/inf (no update, a warning "
            "each); 0 = stop at the first with an error naming the step and the loss."
        },
    )
    hub_push_loss_heads: bool = field(
        default=False,
        metadata={"help": "push_to_hub also uploads the loss-owned heads (alignment_losses.safetensors)."},
    )

    def __post_init__(self) -> None:
        if isinstance(self.alignment_loss, str):
            self.alignment_loss = [name.strip() for name in self.alignment_loss.split(",") if name.strip()]
        for name in self.alignment_loss:
            get_loss_class(name)  # raises with the list of known names
        # Left None when unset (1 each, resolved by the trainer), so that weights the user gave can be
        # told apart and also applied to losses passed to AlignmentTrainer by name.
        if self.alignment_loss_weights is not None and len(self.alignment_loss_weights) != len(self.alignment_loss):
            raise ValueError(
                f"alignment_loss_weights: got {len(self.alignment_loss_weights)} weights for "
                f"{len(self.alignment_loss)} losses ({', '.join(self.alignment_loss)})."
            )
        if self.alignment_token_distance not in TOKEN_DISTANCES:
            raise ValueError(
                f"alignment_token_distance must be one of {TOKEN_DISTANCES}, got {self.alignment_token_distance!r}."
            )
        if self.alignment_pooling not in POOLINGS:
            raise ValueError(f"alignment_pooling must be one of {POOLINGS}, got {self.alignment_pooling!r}.")
        if self.alignment_lambda_schedule not in LAMBDA_SCHEDULES:
            raise ValueError(
                f"alignment_lambda_schedule must be one of {LAMBDA_SCHEDULES}, got {self.alignment_lambda_schedule!r}."
            )
        milestones = self.alignment_lambda_milestones or []
        values = self.alignment_lambda_milestone_values or []
        if len(milestones) != len(values):
            raise ValueError(
                f"alignment_lambda_milestones ({len(milestones)}) and alignment_lambda_milestone_values "
                f"({len(values)}) must have the same length."
            )
        if self.alignment_lambda_schedule == "step" and not milestones:
            raise ValueError("alignment_lambda_schedule='step' needs alignment_lambda_milestones and their values.")
        if list(milestones) != sorted(milestones):
            raise ValueError(f"alignment_lambda_milestones must be increasing, got {milestones}.")
        if self.alignment_mode not in ALIGNMENT_MODES:
            raise ValueError(f"alignment_mode must be one of {ALIGNMENT_MODES}, got {self.alignment_mode!r}.")
        if self.alignment_mode == "none":
            self.conflict_every = 0  # nothing to measure without an alignment gradient
        if self.alignment_mode == "sequential" and self.alignment_steps < 1:
            raise ValueError("alignment_mode='sequential' needs alignment_steps >= 1 (the alignment stage's length).")
        if self.alignment_mode == "alternate" and self.alignment_every < 1:
            raise ValueError(f"alignment_every must be >= 1, got {self.alignment_every}.")
        if self.head_learning_rate is not None and self.head_learning_rate <= 0:
            raise ValueError(f"head_learning_rate must be > 0, got {self.head_learning_rate}.")
        if self.conflict_every < 0:
            raise ValueError(f"conflict_every must be >= 0 (0 = off), got {self.conflict_every}.")
        if self.conflict_statistic not in CONFLICT_STATISTICS:
            raise ValueError(
                f"conflict_statistic must be one of {CONFLICT_STATISTICS}, got {self.conflict_statistic!r}."
            )
        if self.conflict_statistic == "pooled" and self.gradient_combination != "sum":
            raise ValueError(
                f"conflict_statistic='pooled' measures each process's own gradients, but gradient_combination="
                f"{self.gradient_combination!r} rewrites the averaged gradient from its averaged parts: use "
                "conflict_statistic='averaged' (the default) with a combining rule."
            )
        if self.gradient_combination not in COMBINATIONS:
            raise ValueError(f"gradient_combination must be one of {COMBINATIONS}, got {self.gradient_combination!r}.")
        if self.gradient_combination != "sum" and self.conflict_every != 1:
            raise ValueError(
                f"gradient_combination={self.gradient_combination!r} rewrites every step's gradient from its "
                f"measured parts: it needs conflict_every=1 (got {self.conflict_every})."
            )
        if self.skip_nonfinite_steps < 0:
            raise ValueError(
                f"skip_nonfinite_steps must be >= 0 (0 = stop at the first), got {self.skip_nonfinite_steps}."
            )
        if self.alignment_batch_size < 1:
            raise ValueError(f"alignment_batch_size must be >= 1, got {self.alignment_batch_size}.")


@dataclass
class AlignmentTrainingArguments(AlignmentConfig, TrainingArguments):
    r"""
    [`~transformers.TrainingArguments`] for [`AlignmentTrainer`], with the alignment settings of [`AlignmentConfig`].

    Works from the command line and from YAML through [`~transformers.HfArgumentParser`]. Every field of
    [`AlignmentConfig`] is a field here, after those of `TrainingArguments`.

    Secrets: `hub_token` (and every `*_token` field) is left out when the arguments are pickled, so
    `training_args.bin` in saved folders never holds it.
    """

    def __post_init__(self) -> None:
        AlignmentConfig.__post_init__(self)
        if not self.use_cpu and int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.accelerator.is_available():
            # Launched as several processes on a machine without accelerator: TrainingArguments would
            # otherwise give each process a separate single-process run (no gradient averaging at all).
            self.use_cpu = True
        if self.use_cpu or not torch.accelerator.is_available():
            # Pinned memory only serves copies to an accelerator; without one, torch warns on every dataloader.
            self.dataloader_pin_memory = False
        TrainingArguments.__post_init__(self)
        if self.alignment_seed is None:
            self.alignment_seed = self.seed

    def __getstate__(self) -> dict:
        # Trainer pickles the arguments into every saved folder (training_args.bin): a token must not go with them.
        state = dict(self.__dict__)
        for name in state:
            if name.endswith("_token") and state[name] is not None:
                state[name] = None
        return state
