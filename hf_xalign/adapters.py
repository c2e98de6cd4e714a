"""PEFT adapters (LoRA and the like): the model and encoder inside a `peft.PeftModel`.

`peft.get_peft_model(model, config)` wraps a `transformers` model and injects the adapter layers
into its modules in place: the parameter names gain the wrapper's prefix
(`base_model.model.roberta.encoder.layer.0.attention.self.query.lora_A.default.weight`), and the
base parameters are frozen. Because the adapters live inside the model's own modules, calling the
encoder held by the wrapper runs them: the alignment forward (early exit included) and every
layer-numbered name work as for the unwrapped model once the encoder is found through the wrapper.

Prompt learning (prefix or prompt tuning) is refused: its virtual tokens are added by the wrapper's
forward, which the alignment forward of the bare encoder does not pass through.
"""

from __future__ import annotations

from typing import Any

from torch import nn
from transformers.utils import is_peft_available


def is_peft_model(model: nn.Module) -> bool:
    """Whether `model` is a `peft.PeftModel` (`False` when peft is not installed)."""
    if not is_peft_available():
        return False
    from peft import PeftModel

    return isinstance(model, PeftModel)


def task_model(model: nn.Module) -> nn.Module:
    """The `transformers` model itself: the one a `PeftModel` wraps, else `model`.

    Raises:
        `NotImplementedError`: for a prompt-learning wrapper, whose virtual tokens the encoder alone never sees.
    """
    if not is_peft_model(model):
        return model
    if model.active_peft_config.is_prompt_learning:
        raise NotImplementedError(
            f"{model.active_peft_config.peft_type} is prompt learning: its virtual tokens are added by the PeftModel's "
            "forward, which the alignment forward of the bare encoder does not run, so the alignment loss would not "
            "see them. Use an adapter that changes the model's modules, such as LoRA (peft.LoraConfig)."
        )
    return model.get_base_model()


def encoder_of(model: nn.Module) -> nn.Module:
    """The bare encoder of a task model, a bare encoder, or either wrapped by PEFT (`task_model(model).base_model`)."""
    return task_model(model).base_model


def encoder_prefix(model: nn.Module) -> str:
    """The name of the encoder module inside `model`: the prefix of its parameters' names.

    `roberta` for an `XLMRobertaForTokenClassification`, `base_model.model.roberta` for the same
    model wrapped by PEFT, and `""` when `model` is itself the encoder (every parameter is one of its).
    """
    encoder = encoder_of(model)  # `PreTrainedModel.base_model` is always one of the model's modules
    return next(name for name, module in model.named_modules() if module is encoder)


def adapted_model_facts(model: nn.Module) -> dict[str, Any]:
    """What a saved adapter does not say about the model it adapts, and loading it back and its card need.

    PEFT's `adapter_config.json` names the base checkpoint, but not the task model class built on it
    nor its labels (a tagger's `classifier`, trained as a `modules_to_save` copy, has one row per label);
    and its `modules_to_save` lists PEFT's defaults for the task type too (`classifier`, `score`), present or not.

    Args:
        model (`torch.nn.Module`): a `peft.PeftModel`.

    Returns:
        `dict`: `architectures` (the wrapped model's class name, as `config.json` writes it), `id2label`, and
        `trained_in_full`: the modules the adapter holds a full trained copy of (`modules_to_save` that exist).
    """
    from peft.utils import ModulesToSaveWrapper

    inner = task_model(model)
    return {
        "architectures": [type(inner).__name__],
        "id2label": dict(inner.config.id2label),
        "trained_in_full": [name for name, module in inner.named_modules() if isinstance(module, ModulesToSaveWrapper)],
    }
