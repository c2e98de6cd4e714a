"""The reference: the joint training step written by hand in plain PyTorch, with and without a naive measurement."""

from __future__ import annotations

import math

import _environment  # noqa: F401  (first: it switches the Hugging Face libraries offline)
import torch
import torch.nn.functional as F
from _fixtures import TEMPERATURE
from transformers import Trainer

from hf_xalign import AlignmentTrainingArguments
from hf_xalign.conflict import parameter_group


def optimizer_like_trainer(args: AlignmentTrainingArguments, model: torch.nn.Module) -> torch.optim.Optimizer:
    """The optimizer `Trainer.create_optimizer` builds (same class, kwargs and parameter groups)."""
    optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    decay = set(Trainer.get_decay_parameter_names(None, model))
    groups = [
        {
            "params": [p for n, p in model.named_parameters() if n in decay and p.requires_grad],
            "weight_decay": args.weight_decay,
        },
        {"params": [p for n, p in model.named_parameters() if n not in decay and p.requires_grad], "weight_decay": 0.0},
    ]
    return optimizer_cls(groups, **optimizer_kwargs)


def hand_contrastive(
    encoder: torch.nn.Module, batch: dict[str, torch.Tensor], temperature: float = TEMPERATURE
) -> torch.Tensor:
    """Symmetric InfoNCE over mean-pooled last-layer states; source and target rows in ONE forward."""
    pairs = batch["input_ids"].shape[0] // 2
    states = encoder(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
    ).last_hidden_state  # (2p, seq, dim)
    keep = (batch["attention_mask"] * (1 - batch["special_tokens_mask"])).unsqueeze(-1).to(states.dtype)  # (2p, seq, 1)
    sentences = F.normalize((states * keep).sum(1) / keep.sum(1).clamp_min(1.0), dim=-1)  # (2p, dim)
    src, tgt = sentences[:pairs], sentences[pairs:]
    logits = src @ tgt.T / temperature  # (p, p)
    labels = torch.arange(pairs, device=logits.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


class HandLoop:
    """The joint step written by hand in plain PyTorch, on pre-collated batches.

    `measure=False`: task forward + `backward`, alignment forward (source and target rows in
    one batch) + contrastive loss + `backward`, optimizer step, `zero_grad`. `measure=True` is
    the naive measurement: the two gradients from two `torch.autograd.grad` calls (no graph
    retained), per-group `[T·A, |T|², |A|²]` float64 sums from them as `GradientSplitter`
    computes them, a python-float cosine, then `.grad = g_task + g_align` and the same step.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        args: AlignmentTrainingArguments,
        task: list[dict[str, torch.Tensor]],
        align: list[dict[str, torch.Tensor]],
        measure: bool = False,
        lam: float = 1.0,
    ) -> None:
        self.model = model
        self.task, self.align = task, align
        self.measure = measure
        self.lam = lam
        self.optimizer = optimizer_like_trainer(args, model)
        self.params = [p for p in model.parameters() if p.requires_grad]
        groups = [
            parameter_group(name, model.base_model_prefix) for name, p in model.named_parameters() if p.requires_grad
        ]
        names = sorted(set(groups))
        self.group_index = torch.tensor([names.index(g) for g in groups])
        self.n_groups = len(names)
        self.index = 0
        self.last_cosine = float("nan")
        self.held_gradient_bytes = 0  # naive: bytes of distinct gradient tensors alive when .grad is set
        model.train()

    def step(self) -> None:
        task = self.task[self.index % len(self.task)]
        align = self.align[self.index % len(self.align)]
        self.index += 1
        if self.measure:
            self._naive_gradients(task, align)
        else:
            self.model(**task).loss.backward()
            (self.lam * hand_contrastive(self.model.base_model, align)).backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def _naive_gradients(self, task: dict[str, torch.Tensor], align: dict[str, torch.Tensor]) -> None:
        task_loss = self.model(**task).loss
        task_grad = torch.autograd.grad(task_loss, self.params, allow_unused=True)
        align_loss = self.lam * hand_contrastive(self.model.base_model, align)
        align_grad = torch.autograd.grad(align_loss, self.params, allow_unused=True)
        rows = []  # per tensor [T·A, |T|², |A|²], float64 sums
        for t, a in zip(task_grad, align_grad):
            t = torch.zeros_like(a) if t is None else t
            a = torch.zeros_like(t) if a is None else a
            rows.append(torch.stack([_dot64(t, a), _dot64(t, t), _dot64(a, a)]))
        per_group = torch.zeros(self.n_groups, 3, dtype=torch.float64).index_add_(
            0, self.group_index, torch.stack(rows)
        )
        dot, task_sq, align_sq = per_group.sum(0).tolist()
        self.last_cosine = dot / math.sqrt(task_sq * align_sq) if task_sq * align_sq > 0 else float("nan")
        for p, t, a in zip(self.params, task_grad, align_grad):
            p.grad = t if a is None else (a if t is None else t + a)
        live = {
            g.data_ptr(): g.numel() * g.element_size()
            for g in (*task_grad, *align_grad, *(p.grad for p in self.params))
            if g is not None
        }
        self.held_gradient_bytes = sum(live.values())


def _dot64(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    return (first * second).sum(dtype=torch.float64)
