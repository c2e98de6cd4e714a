"""Gradient clipping and the logged `grad_norm` with loss-owned parameters (the `mlm` loss's LM head).

The head is clipped together with the model as one norm, and `grad_norm` is that norm, with or without
clipping. Oracle: `torch.nn.utils.clip_grad_norm_` applied by hand to copies of the unclipped gradients
of every trainable parameter (model and head), taken from the same run without clipping.
"""

from __future__ import annotations

import pytest
import torch
from test_trainer import make_args, make_trainer
from transformers import TrainerCallback

MAX_GRAD_NORM = 1e-3  # far below the gradients' norm: every gradient is scaled down


class GradientCapture(TrainerCallback):
    """Copies every trainable parameter's gradient (model, then loss-owned) just before the optimizer step."""

    def __init__(self) -> None:
        self.trainer = None
        self.gradients: dict[str, torch.Tensor] = {}

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self.gradients = {
            name: param.grad.detach().clone()
            for name, param in self.trainer._named_trainable_parameters()
            if param.grad is not None
        }


def train_one_step(tokenizer, task_dataset, parallel_dataset, task_collator, tmp_path, max_grad_norm):
    args = make_args(
        tmp_path, max_steps=1, optim="sgd", alignment_loss="mlm", max_grad_norm=max_grad_norm, alignment_lambda=0.7
    )
    capture = GradientCapture()
    trainer = make_trainer(tokenizer, task_dataset, parallel_dataset, task_collator, args, callbacks=[capture])
    capture.trainer = trainer
    trainer.train()
    (log,) = [entry for entry in trainer.state.log_history if "grad_norm" in entry]
    return capture.gradients, log["grad_norm"]


def by_hand(gradients: dict[str, torch.Tensor], max_norm: float) -> tuple[float, dict[str, torch.Tensor]]:
    """`clip_grad_norm_` over copies of all the gradients: (the norm before clipping, the clipped gradients)."""
    holders = {name: torch.nn.Parameter(torch.zeros_like(grad)) for name, grad in gradients.items()}
    for name, holder in holders.items():
        holder.grad = gradients[name].clone()
    norm = torch.nn.utils.clip_grad_norm_(list(holders.values()), max_norm)
    return float(norm), {name: holder.grad for name, holder in holders.items()}


@pytest.fixture
def unclipped(tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator):
    return train_one_step(tokenizer, task_dataset, parallel_dataset, task_collator, tmp_path / "unclipped", 0.0)


def test_loss_owned_head_has_gradients_to_clip(unclipped):
    gradients, _ = unclipped
    head = [name for name in gradients if name.startswith("loss.mlm.")]
    assert head and all(gradients[name].abs().sum() > 0 for name in head)


def test_logged_grad_norm_without_clipping_is_the_norm_over_model_and_head(unclipped):
    gradients, logged = unclipped
    norm, _ = by_hand(gradients, float("inf"))
    model_only, _ = by_hand({k: v for k, v in gradients.items() if not k.startswith("loss.")}, float("inf"))
    assert logged == pytest.approx(norm, rel=1e-6)
    assert logged != pytest.approx(model_only, rel=1e-6)  # the head counts


def test_head_is_clipped_with_the_model_as_one_norm(
    unclipped, tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator
):
    clipped, logged = train_one_step(
        tokenizer, task_dataset, parallel_dataset, task_collator, tmp_path / "clipped", MAX_GRAD_NORM
    )
    norm, expected = by_hand(unclipped[0], MAX_GRAD_NORM)
    assert logged == pytest.approx(norm, rel=1e-6)  # the norm before clipping
    assert set(clipped) == set(expected)
    for name, gradient in expected.items():
        torch.testing.assert_close(clipped[name], gradient, rtol=1e-5, atol=1e-12, msg=name)
