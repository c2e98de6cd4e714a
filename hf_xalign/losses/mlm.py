"""Masked language modelling on parallel text: MLM on each side, TLM on concatenated pairs."""

from __future__ import annotations

import json
import os

import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import nn
from transformers.utils import cached_file

from ..pooling import ParallelEncoding
from .base import AlignmentLoss, hold_unregistered, register_loss

MLM_CITATION = """\
@inproceedings{devlin-etal-2019-bert,
    title = {{BERT}: Pre-training of Deep Bidirectional Transformers for Language Understanding},
    author = {Devlin, Jacob and Chang, Ming-Wei and Lee, Kenton and Toutanova, Kristina},
    booktitle = {Proceedings of the 2019 Conference of the North {A}merican Chapter of the Association for Computational Linguistics: Human Language Technologies, Volume 1 (Long and Short Papers)},
    year = {2019},
    publisher = {Association for Computational Linguistics},
    pages = {4171--4186},
    doi = {10.18653/v1/N19-1423},
    url = {https://aclanthology.org/N19-1423},
}
"""

TLM_CITATION = """\
@inproceedings{conneau2019cross,
    title = {Cross-lingual Language Model Pretraining},
    author = {Conneau, Alexis and Lample, Guillaume},
    booktitle = {Advances in Neural Information Processing Systems},
    volume = {32},
    year = {2019},
    url = {https://arxiv.org/abs/1901.07291},
}
"""


class MaskedLMHead(nn.Module):
    """Transform + LayerNorm + decoder tied to the input embeddings (the BERT/XLM-R LM head).

    The decoder weight is the model's input embedding matrix, passed to `forward`, so the head
    owns only `dense`, `layer_norm` and the output `bias`.
    """

    def __init__(self, hidden_size: int, vocab_size: int, layer_norm_eps: float = 1e-5, init_std: float = 0.02) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.layer_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(vocab_size))
        nn.init.normal_(self.dense.weight, std=init_std)
        nn.init.zeros_(self.dense.bias)

    def forward(self, hidden: torch.Tensor, decoder_weight: torch.Tensor) -> torch.Tensor:
        """Logits `(tokens, vocab)` from hidden states `(tokens, dim)`."""
        transformed = self.layer_norm(F.gelu(self.dense(hidden)))
        return F.linear(transformed, decoder_weight, self.bias)


# Where masked-LM checkpoints keep the parts of their LM head, by [`MaskedLMHead`]'s names. The decoder is
# tied to the input embeddings in both layouts, so only the transform and the output bias are read.
PRETRAINED_HEAD_LAYOUTS: dict[str, dict[str, str]] = {
    "roberta": {  # RoBERTa, XLM-R: `lm_head`
        "dense.weight": "lm_head.dense.weight",
        "dense.bias": "lm_head.dense.bias",
        "layer_norm.weight": "lm_head.layer_norm.weight",
        "layer_norm.bias": "lm_head.layer_norm.bias",
        "bias": "lm_head.bias",
    },
    "bert": {  # BERT, mBERT: `cls.predictions`
        "dense.weight": "cls.predictions.transform.dense.weight",
        "dense.bias": "cls.predictions.transform.dense.bias",
        "layer_norm.weight": "cls.predictions.transform.LayerNorm.weight",
        "layer_norm.bias": "cls.predictions.transform.LayerNorm.bias",
        "bias": "cls.predictions.bias",
    },
}


def _checkpoint_files(model_name_or_path: str) -> list[str]:
    """The safetensors files of a checkpoint (a folder or a Hub id); `[]` when it has none."""
    single = cached_file(model_name_or_path, "model.safetensors", _raise_exceptions_for_missing_entries=False)
    if single is not None:
        return [single]
    index = cached_file(model_name_or_path, "model.safetensors.index.json", _raise_exceptions_for_missing_entries=False)
    if index is None:
        return []
    with open(index, encoding="utf-8") as f:
        shards = sorted(set(json.load(f)["weight_map"].values()))
    return [cached_file(model_name_or_path, shard) for shard in shards]


def pretrained_head_state(model_name_or_path: str | os.PathLike) -> dict[str, torch.Tensor] | None:
    """The LM head of a masked-LM checkpoint (RoBERTa/XLM-R or BERT layout) as a [`MaskedLMHead`] state dict.

    Read from the checkpoint's safetensors files alone (the encoder's weights are not loaded). `None` when the
    checkpoint has no LM head in a known layout (a bare encoder such as a sentence-embedding model): MLM and TLM
    then start from a fresh head.
    """
    files = _checkpoint_files(str(model_name_or_path))
    for layout in PRETRAINED_HEAD_LAYOUTS.values():
        state = {}
        for path in files:
            with safe_open(path, framework="pt") as checkpoint:
                names = set(checkpoint.keys())
                state.update(
                    {ours: checkpoint.get_tensor(theirs) for ours, theirs in layout.items() if theirs in names}
                )
        if len(state) == len(layout):
            return state
    return None


class _MaskedLMBase(AlignmentLoss):
    """Shared part of MLM and TLM: an owned LM head tied to the model's input embeddings."""

    input_key = ""  # batch key of the masked input ids
    mask_key = ""  # batch key of its attention mask
    labels_key = ""  # batch key of the labels (-100 = not masked)

    def __init__(self) -> None:
        super().__init__()
        self.head: MaskedLMHead | None = None

    def setup(self, model: nn.Module) -> None:
        embeddings = model.get_input_embeddings()
        config = model.config
        hold_unregistered(self, "word_embeddings", embeddings)
        if self.head is None:
            self.head = MaskedLMHead(
                config.hidden_size,
                embeddings.num_embeddings,
                getattr(config, "layer_norm_eps", 1e-5),
                getattr(config, "initializer_range", 0.02),
            ).to(device=embeddings.weight.device, dtype=embeddings.weight.dtype)

    def reads_shared_forward(self) -> bool:
        return False

    def forward(self, encoding: ParallelEncoding) -> torch.Tensor:
        if self.head is None:
            raise RuntimeError(f"The {self.name!r} loss has no LM head yet: call setup(model) first.")
        batch = encoding.batch
        hidden = encoding.encode(batch[self.input_key], batch[self.mask_key])[-1]  # (rows, seq, dim)
        return self.compute_loss_from_hidden(hidden, batch[self.labels_key])

    def compute_loss_from_hidden(self, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy at the masked positions (`labels != -100`) of `hidden` `(rows, seq, dim)`."""
        masked = labels != -100  # (rows, seq)
        if not masked.any():
            return hidden.sum() * 0.0  # keeps the graph: no token was masked
        # Only masked positions go through the vocabulary projection: with a 250k vocabulary
        # the full (rows, seq, vocab) logits would dominate memory.
        logits = self.head(hidden[masked], self.word_embeddings.weight)  # (masked, vocab)
        return F.cross_entropy(logits, labels[masked])


@register_loss("mlm")
class MaskedLMLoss(_MaskedLMBase):
    r"""Masked language modelling on each side of the parallel text separately.

    $$L = -\frac{1}{|M|}\sum_{t\in M}\log p_\theta(x_t \mid \tilde{x})$$
    over the masked positions $M$ of the source and target sentences ($\tilde{x}$: the
    sentence with BERT-style corruption: of the selected 15%, 80% `<mask>`, 10% random, 10% kept).
    The LM head is owned by the loss, tied to the input embeddings, trained and saved. It starts
    fresh; [`pretrained_head_state`] reads a masked-LM checkpoint's own head for it (as
    `hf_xalign.experiment.align_encoder` does).

    Inputs:
        | batch views | labels |
        |---|---|
        | masked copies of both sides (`mlm`) | the original ids at masked positions |

    References:
        - Devlin et al., 2019, "BERT"; Conneau et al., 2020, "Unsupervised Cross-lingual Representation Learning at Scale".
    """

    requires = frozenset({"mlm"})
    input_key, mask_key, labels_key = "mlm_input_ids", "attention_mask", "mlm_labels"

    @property
    def citation(self) -> str:
        return MLM_CITATION


@register_loss("tlm")
class TranslationLMLoss(_MaskedLMBase):
    r"""Translation language modelling: MLM on the concatenated pair `src </s></s> tgt`.

    Same loss as [`MaskedLMLoss`], but a masked word can be recovered from its translation,
    which rewards cross-lingual attention.

    Inputs:
        | batch views | labels |
        |---|---|
        | masked concatenated pairs (`tlm`) | the original ids at masked positions |

    References:
        - Conneau & Lample, 2019, "Cross-lingual Language Model Pretraining" (XLM).
    """

    requires = frozenset({"tlm"})
    input_key, mask_key, labels_key = "tlm_input_ids", "tlm_attention_mask", "tlm_labels"

    @property
    def citation(self) -> str:
        return TLM_CITATION
