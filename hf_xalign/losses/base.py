"""The `AlignmentLoss` base class and the loss registry."""

from __future__ import annotations

import copy
import difflib
import inspect
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from ..layers import resolve_layer
from ..pooling import ParallelEncoding, Pooling

# Options that several losses share, and the `AlignmentTrainingArguments` field that sets each.
SHARED_OPTIONS: dict[str, str] = {
    "layer": "alignment_layer",
    "pooling": "alignment_pooling",
    "temperature": "alignment_temperature",
    "distance": "alignment_token_distance",
}


class AlignmentLoss(nn.Module):
    """Base class of the alignment losses.

    A loss reads a [`~hf_xalign.pooling.ParallelEncoding`] of a parallel batch and returns a
    scalar. It may own parameters (an LM head, a projection): they are given to the
    optimizer, saved in checkpoints next to the model and restored on resume.

    Subclasses set:
        - `name` (`str`): the registry name (set by [`register_loss`]).
        - `requires` (`frozenset[str]`): extra views of the batch the collator must build:
          `"word_ids"` (word index per token), `"mlm"` (masked copies of both sides),
          `"tlm"` (masked concatenated pairs).
    and implement `forward(encoding) -> torch.Tensor`. A loss that reads the shared forward
    overrides [`layers_read`] with the layers it reads, so that the forward stops after the
    highest one (the default reads every layer: the full forward); [`SingleLayerLoss`] declares one
    layer, [`PairedSentenceLoss`] also pools it into sentence vectors. Losses that need the model itself
    (to tie a head to its embeddings, or to keep a frozen copy) override [`setup`]; a loss
    from a paper overrides the `citation` property with its BibTeX entry.
    """

    name: ClassVar[str] = ""
    requires: ClassVar[frozenset[str]] = frozenset()

    def setup(self, model: nn.Module) -> None:
        """Called once by the trainer with the unwrapped task model before the optimizer is built."""

    def reads_shared_forward(self) -> bool:
        """Whether the loss reads the shared source+target forward (then its backward is shared too).

        Losses that run a forward of their own (masked inputs, concatenated pairs) return `False`:
        the trainer gives them a backward, and so a measured gradient, of their own.
        """
        return True

    def layers_read(self, num_layers: int) -> set[int]:
        """The layers this loss reads from the shared forward, as non-negative numbers ([`hf_xalign.layers`]).

        The shared forward stops after the highest layer any loss reads. The default is every layer
        (`0..num_layers`), so a loss that does not declare what it reads gets the full forward; a
        loss with no shared forward ([`reads_shared_forward`] `False`) reads none.

        Args:
            num_layers (`int`): the model's number of transformer blocks (`config.num_hidden_layers`).
        """
        if not self.reads_shared_forward():
            return set()
        return set(range(num_layers + 1))

    def forward(self, encoding: ParallelEncoding) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def citation(self) -> str | None:
        """BibTeX of the paper the loss comes from, one entry, for model cards; `None` when there is none."""
        return None

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's hyper-parameters, for logs and model cards."""
        signature = inspect.signature(type(self).__init__)
        return {
            name: getattr(self, name)
            for name in signature.parameters
            if name != "self" and hasattr(self, name) and isinstance(getattr(self, name), (int, float, str, bool))
        }

    @classmethod
    def from_training_args(cls, args: Any) -> AlignmentLoss:
        """Build the loss with the shared options (layer, pooling, temperature) taken from `args`."""
        accepted = inspect.signature(cls.__init__).parameters
        options = {option: getattr(args, field) for option, field in SHARED_OPTIONS.items() if option in accepted}
        return cls(**options)


class SingleLayerLoss(AlignmentLoss):
    """An alignment loss that reads one layer of the shared forward, so the forward stops after it.

    Args:
        layer (`int`, *optional*, defaults to -1): the hidden state read (0 = the embeddings, negative counts from
            the top, as in [`hf_xalign.layers`]).
    """

    def __init__(self, layer: int = -1) -> None:
        super().__init__()
        self.layer = layer

    def layers_read(self, num_layers: int) -> set[int]:
        return {resolve_layer(self.layer, num_layers)} if self.reads_shared_forward() else set()


class PairedSentenceLoss(SingleLayerLoss):
    """A loss of each source sentence vector and its translation's: pools `layer` with `pooling` on both sides
    and hands the two `(pairs, dim)` matrices to `compute_loss_from_embeddings`, which subclasses implement.

    Args:
        layer (`int`, *optional*, defaults to -1): the hidden state pooled.
        pooling (`str`, *optional*, defaults to `"mean"`): `"mean"` over content tokens or `"cls"`.
    """

    def __init__(self, layer: int = -1, pooling: Pooling = "mean") -> None:
        super().__init__(layer)
        self.pooling = pooling

    def forward(self, encoding: ParallelEncoding) -> torch.Tensor:
        src, tgt = encoding.sentence_embeddings(self.layer, self.pooling)
        return self.compute_loss_from_embeddings(src, tgt)

    def compute_loss_from_embeddings(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        """The loss from paired sentence vectors `src`, `tgt`, each `(pairs, dim)`."""
        raise NotImplementedError


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy of `module` in eval mode with gradients off (a fixed reference model)."""
    reference = copy.deepcopy(module)
    reference.eval()
    reference.requires_grad_(False)
    return reference


def hold_unregistered(owner: nn.Module, attribute: str, module: nn.Module) -> None:
    """Keep a reference to `module` without making it a submodule of `owner`.

    Used for modules a loss reads but does not own (the model's input embeddings, a frozen
    reference copy): as submodules they would be saved in the loss's checkpoint and handed
    to the optimizer a second time.
    """
    object.__setattr__(owner, attribute, module)


LOSS_REGISTRY: dict[str, type[AlignmentLoss]] = {}


def register_loss(name: str) -> Callable[[type[AlignmentLoss]], type[AlignmentLoss]]:
    """Class decorator adding an [`AlignmentLoss`] subclass to the registry under `name`."""

    def decorator(cls: type[AlignmentLoss]) -> type[AlignmentLoss]:
        if name in LOSS_REGISTRY and LOSS_REGISTRY[name] is not cls:
            raise ValueError(
                f"An alignment loss named {name!r} is already registered ({LOSS_REGISTRY[name].__name__})."
            )
        cls.name = name
        LOSS_REGISTRY[name] = cls
        return cls

    return decorator


def get_loss_class(name: str) -> type[AlignmentLoss]:
    """The registered loss class called `name`; an unknown name suggests the closest and lists the known ones."""
    if name not in LOSS_REGISTRY:
        known = ", ".join(sorted(LOSS_REGISTRY))
        close = difflib.get_close_matches(name, LOSS_REGISTRY, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"Unknown alignment loss {name!r}.{hint} Known losses: {known}.")
    return LOSS_REGISTRY[name]


def get_loss(name: str, **options: Any) -> AlignmentLoss:
    """Instantiate the registered loss `name` with `options`."""
    return get_loss_class(name)(**options)
