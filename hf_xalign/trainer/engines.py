"""The engines: DDP and FSDP2 are supported; FSDP1 and DeepSpeed are refused before they could train wrongly."""

from __future__ import annotations

import os

from accelerate.utils import DistributedType, parse_flag_from_env

from ..args import AlignmentTrainingArguments

# The FSDP version whose sharded gradients the split follows (`fully_shard`, gradients as DTensor shards).
SUPPORTED_FSDP_VERSION = 2


class EnginesMixin:
    """[`AlignmentTrainer`]'s accelerator: built as `Trainer` builds it, with the engines not supported yet refused.
    Mixed into `AlignmentTrainer`."""

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
