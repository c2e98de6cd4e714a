"""What changes on a GPU: the alignment losses there equal the CPU's, and a step under bf16 autocast there agrees
with the fp32 step on the CPU to a stated tolerance.

Marked `cuda` (tests/conftest.py): on a machine with a CUDA device they run there (`benchmarks/gpu_check.py` runs
them); without one they are skipped, unless `XALIGN_TEST_DEVICE=cpu` runs them on the CPU (`gpu_check.py
--dry-run`), where the first test compares the CPU with itself and the second bf16 autocast on the CPU with fp32.
"""

from __future__ import annotations

import copy

import pytest
import torch
import transformers
from _corpus import corpus_tokenizer, english_spanish_rows
from conftest import make_model
from test_trainer import make_args, make_trainer

from hf_xalign.data.collator import ParallelCollator
from hf_xalign.losses import LOSS_REGISTRY, get_loss
from hf_xalign.pooling import ParallelEncoding
from hf_xalign.tiny import tiny_xlmr_config

pytestmark = pytest.mark.cuda

# fp32 on both sides: only the order of the sums differs (cuBLAS against the CPU's kernels; TF32 is off by default)
SAME_PRECISION = dict(rtol=1e-4, atol=1e-6)
# bf16 autocast against fp32 (8 bits of mantissa), task and alignment forwards both under autocast: measured on the
# CPU (torch 2.13), bf16 moved the cosine by 1.8e-3, the task gradient's norm by 6.6e-4 relative, the alignment
# gradient's by 2.4e-3 and the step's update by 1.9e-2 relative (the contrastive loss divides bf16-rounded
# similarities by its temperature, 0.05); the bounds are about 10x that, for the GPU's kernels (not yet run on one)
COSINE_ATOL = 0.02
NORM_RTOL = 0.03
UPDATE_RTOL = 0.2


@pytest.fixture(scope="module")
def corpus():
    return corpus_tokenizer()


def on(device: torch.device, batch: dict) -> dict:
    return {key: value.to(device) if torch.is_tensor(value) else value for key, value in batch.items()}


@pytest.mark.parametrize("name", sorted(LOSS_REGISTRY))
def test_alignment_loss_and_its_gradients_on_the_device_equal_the_cpu_ones(corpus, device, name):
    torch.manual_seed(0)
    cpu_model = transformers.XLMRobertaForTokenClassification(tiny_xlmr_config(corpus, num_labels=3)).eval()
    with torch.no_grad():  # away from the start point, where drift and distill are exactly 0
        for parameter in cpu_model.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    device_model = copy.deepcopy(cpu_model).to(device)
    results = []
    for model in (cpu_model, device_model):
        torch.manual_seed(1)  # a loss's own head starts the same on both
        loss = get_loss(name)
        loss.setup(model)
        loss.to(model.device)
        batch = ParallelCollator(corpus, views=loss.requires)(
            english_spanish_rows(4), generator=torch.Generator().manual_seed(0)
        )
        value = loss(ParallelEncoding(model.base_model, on(model.device, batch)))
        parameters = list(model.base_model.parameters())
        grads = torch.autograd.grad(value, parameters, allow_unused=True)
        results.append((value, grads))
    (cpu_value, cpu_grads), (device_value, device_grads) = results
    assert device_value.device.type == device.type
    torch.testing.assert_close(device_value.cpu(), cpu_value, **SAME_PRECISION)
    for cpu_grad, device_grad in zip(cpu_grads, device_grads):
        assert (cpu_grad is None) == (device_grad is None)
        if cpu_grad is not None:
            torch.testing.assert_close(device_grad.cpu(), cpu_grad, **SAME_PRECISION)


def one_step(tmp_path, data, **options):
    """One SGD step of the joint objective, measured: the trainer, and every parameter's change."""
    tokenizer, task_dataset, parallel_dataset, task_collator = data
    args = make_args(
        tmp_path,
        max_steps=1,
        optim="sgd",
        learning_rate=0.1,
        max_grad_norm=0.0,
        per_device_train_batch_size=8,
        alignment_lambda=0.7,
        conflict_every=1,
        **options,
    )
    model = make_model(tokenizer)
    before = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    trainer = make_trainer(tokenizer, task_dataset, parallel_dataset, task_collator, args, model=model)
    trainer.train()
    change = torch.cat(
        [(parameter.detach().cpu() - before[name]).flatten() for name, parameter in model.named_parameters()]
    )
    return trainer, change


def test_bf16_autocast_step_on_the_device_agrees_with_the_fp32_cpu_step(
    tmp_path, device, tokenizer, task_dataset, parallel_dataset, task_collator
):
    data = tokenizer, task_dataset, parallel_dataset, task_collator
    reference, reference_change = one_step(tmp_path / "fp32", data)
    trainer, change = one_step(tmp_path / "bf16", data, bf16=True, use_cpu=device.type == "cpu")

    assert trainer.accelerator.mixed_precision == "bf16"
    assert next(trainer.model.parameters()).device.type == device.type
    (expected,) = reference.conflict_callback.measurements
    (measured,) = trainer.conflict_callback.measurements
    assert measured.task_norm != expected.task_norm  # the task forward did run in bf16: the comparison is not fp32's
    assert measured.cosine == pytest.approx(expected.cosine, abs=COSINE_ATOL)
    assert measured.task_norm == pytest.approx(expected.task_norm, rel=NORM_RTOL)
    assert measured.align_norm == pytest.approx(expected.align_norm, rel=NORM_RTOL)
    assert float((change - reference_change).norm() / reference_change.norm()) <= UPDATE_RTOL
