"""Combining rules: each rule's rewritten gradient against hand arithmetic.

Hand vectors first (the defining property of each rule, worked out in the comments), then one
training step of the tiny model whose gradient just before the optimizer step is compared to
the rule applied by hand to autograd's task and alignment gradients of an identical model.
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import make_model
from test_conflict import hand_group
from test_trainer import GradientCapture, hand_contrastive, make_args, train_recording_task_batches

from hf_xalign.surgery import CombinationOptions, CombinationState, apply_combination, combination_coefficients


def sums(*groups):
    """`(groups, 3)` rows `[T·A, |T|², |A|²]` from `(T, A)` vector pairs, one pair per group."""
    rows = [[float(t @ a), float(t @ t), float(a @ a)] for t, a in groups]
    return torch.tensor(rows, dtype=torch.float64)


def vec(*values):
    return torch.tensor(values, dtype=torch.float64)


def combine(rule, pairs, state=None, options=None):
    """Run the rule on parameters holding `G = T + A`, one 2-element parameter per group: the new `.grad`s."""
    params = []
    for task, align in pairs:
        param = torch.nn.Parameter(torch.zeros(len(task), dtype=torch.float64))
        param.grad = (task + align).clone()
        params.append(param)
    alphas, betas = combination_coefficients(
        rule,
        sums(*pairs),
        [f"g{i}" for i in range(len(pairs))],
        state if state is not None else CombinationState(),
        options or CombinationOptions(),
    )
    apply_combination(params, [task for task, _ in pairs], list(range(len(pairs))), alphas, betas)
    return [p.grad for p in params]


def cosine(first, second):
    return float(first @ second / (first.norm() * second.norm()))


# ---- PCGrad ----


def test_pcgrad_projects_each_gradient_off_the_other_when_they_conflict():
    task, align = vec(1.0, 0.0), vec(-1.0, 1.0)  # T·A = -1, |T|² = 1, |A|² = 2
    # T' = T - (T·A/|A|²) A = [1, 0] + 0.5 [-1, 1] = [0.5, 0.5]
    # A' = A - (A·T/|T|²) T = [-1, 1] + [1, 0]      = [0, 1]
    (grad,) = combine("pcgrad", [(task, align)])
    torch.testing.assert_close(grad, vec(0.5, 1.5), atol=1e-12, rtol=0)


def test_pcgrad_on_two_one_element_parameters_of_one_group():
    params = [torch.nn.Parameter(torch.zeros(1, dtype=torch.float64)) for _ in range(2)]
    params[0].grad, params[1].grad = vec(0.0), vec(1.0)  # G = T + A = [1, 0] + [-1, 1]
    alphas, betas = combination_coefficients(
        "pcgrad", sums((vec(1.0, 0.0), vec(-1.0, 1.0))), ["g"], CombinationState(), CombinationOptions()
    )
    apply_combination(params, [vec(1.0), vec(0.0)], [0, 0], alphas, betas)
    assert (float(params[0].grad), float(params[1].grad)) == pytest.approx((0.5, 1.5), abs=1e-12)


def test_pcgrad_leaves_agreeing_gradients_alone():
    (grad,) = combine("pcgrad", [(vec(1.0, 0.0), vec(1.0, 1.0))])  # T·A = 1 >= 0
    torch.testing.assert_close(grad, vec(2.0, 1.0), atol=0, rtol=0)


def test_pcgrad_projects_the_whole_model_not_each_group():
    pairs = [(vec(1.0, 0.0), vec(-1.0, 1.0)), (vec(0.0, 1.0), vec(0.0, 0.5))]  # group g1 agrees on its own
    # whole model: T = [1, 0, 0, 1], A = [-1, 1, 0, 0.5]; T·A = -0.5, |T|² = 2, |A|² = 2.25
    task, align = vec(1.0, 0.0, 0.0, 1.0), vec(-1.0, 1.0, 0.0, 0.5)
    projected_task = task - (-0.5 / 2.25) * align
    projected_align = align - (-0.5 / 2.0) * task
    grads = combine("pcgrad", pairs)
    torch.testing.assert_close(torch.cat(grads), projected_task + projected_align, atol=1e-12, rtol=0)


# ---- GradVac ----

# T = [1, 0], A = [-1, 1]: φ = cos(T, A) = -1/√2, below the target φ̂ = 1/2.
# A' = A + c_A T = [c_A - 1, 1] with cos(A', T) = (c_A - 1)/√((c_A - 1)² + 1) = 1/2  =>  c_A = 1 + 1/√3.
# T' = T + c_T A = [1 - c_T, c_T] with cos(T', A) = (2c_T - 1)/(√2 √((1 - c_T)² + c_T²)) = 1/2
#   =>  6c_T² - 6c_T + 1 = 0, the root with 2c_T - 1 > 0:  c_T = 1/2 + √3/6.
GRADVAC_TASK, GRADVAC_ALIGN, GRADVAC_TARGET = vec(1.0, 0.0), vec(-1.0, 1.0), 0.5
C_ALIGN, C_TASK = 1 + 1 / math.sqrt(3), 0.5 + math.sqrt(3) / 6


def test_gradvac_lifts_each_gradient_to_the_target_similarity():
    task, align = GRADVAC_TASK, GRADVAC_ALIGN
    lifted_align, lifted_task = align + C_ALIGN * task, task + C_TASK * align
    # GradVac's defining property (Wang et al., 2021, §3): the hand solutions reach φ̂ exactly
    assert cosine(lifted_align, task) == pytest.approx(GRADVAC_TARGET, abs=1e-12)
    assert cosine(lifted_task, align) == pytest.approx(GRADVAC_TARGET, abs=1e-12)
    state = CombinationState(gradvac_targets={"g0": GRADVAC_TARGET})
    (grad,) = combine("gradvac", [(task, align)], state)
    torch.testing.assert_close(grad, lifted_task + lifted_align, atol=1e-12, rtol=0)


def test_gradvac_leaves_gradients_at_or_above_the_target_alone():
    state = CombinationState(gradvac_targets={"g0": 0.5})
    (grad,) = combine("gradvac", [(vec(1.0, 0.0), vec(1.0, 1.0))], state)  # cos = 1/√2 >= 0.5
    torch.testing.assert_close(grad, vec(2.0, 1.0), atol=0, rtol=0)


def test_gradvac_target_is_an_ema_of_the_observed_cosine():
    state = CombinationState(gradvac_targets={"g0": 0.5})
    combine("gradvac", [(GRADVAC_TASK, GRADVAC_ALIGN)], state, CombinationOptions(gradvac_beta=0.1))
    assert state.gradvac_targets["g0"] == pytest.approx(0.9 * 0.5 + 0.1 * (-1 / math.sqrt(2)), abs=1e-12)
    combine("gradvac", [(vec(1.0, 0.0), vec(1.0, 1.0))], state, CombinationOptions(gradvac_beta=0.1))
    previous = 0.9 * 0.5 + 0.1 * (-1 / math.sqrt(2))
    assert state.gradvac_targets["g0"] == pytest.approx(0.9 * previous + 0.1 / math.sqrt(2), abs=1e-12)


def test_gradvac_coefficients_are_per_group():
    # g0 conflicts (cos = -1/√2); g1 agrees perfectly (cos = 1), though the whole model's cosine is 0 < φ̂
    pairs = [(GRADVAC_TASK, GRADVAC_ALIGN), (vec(0.0, 1.0), vec(0.0, 1.0))]
    state = CombinationState(gradvac_targets={"g0": 0.5, "g1": 0.5})
    alphas, betas = combination_coefficients("gradvac", sums(*pairs), ["g0", "g1"], state, CombinationOptions())
    # G' = T' + A' = (1 + c_A) T + (1 + c_T) A in g0; unchanged in g1
    assert alphas == pytest.approx([1 + C_ALIGN, 1.0], abs=1e-12)
    assert betas == pytest.approx([1 + C_TASK, 1.0], abs=1e-12)


# ---- balance and adaptive ----


def test_balance_rescales_the_alignment_gradient_to_r_times_the_task_norm():
    task, align, ratio = vec(3.0, 4.0), vec(2.0, -1.0), 0.5  # |T| = 5, |A| = √5
    (grad,) = combine("balance", [(task, align)], options=CombinationOptions(balance_ratio=ratio))
    new_align = grad - task  # the task part is kept as it is
    assert float(new_align.norm()) == pytest.approx(ratio * 5.0, abs=1e-12)
    torch.testing.assert_close(new_align, align * ratio * 5.0 / math.sqrt(5.0), atol=1e-12, rtol=0)


def test_adaptive_multiplier_is_clipped_one_plus_gain_times_cosine_ema():
    options = CombinationOptions(adaptive_gain=2.0, adaptive_max=1.5, adaptive_beta=0.5)
    state = CombinationState()
    # T = [1, 0], A = [cos, sin]: the step's cosine is `cos`
    #   call 1: cos = 0.8 -> ema = 0.8 (first value)          -> 1 + 2 * 0.8   = 2.6 -> clipped to 1.5
    #   call 2: cos = -1  -> ema = 0.5 * 0.8 + 0.5 * (-1) = -0.1 -> 1 + 2 * -0.1 = 0.8
    #   call 3: cos = -1  -> ema = 0.5 * -0.1 + 0.5 * (-1) = -0.55 -> 1 - 1.1 = -0.1 -> clipped to 0
    expected = [(0.8, 0.8, 1.5), (-1.0, -0.1, 0.8), (-1.0, -0.55, 0.0)]
    for cos, ema, multiplier in expected:
        pair = (vec(1.0, 0.0), vec(cos, math.sqrt(1 - cos**2)))
        alphas, betas = combination_coefficients("adaptive", sums(pair), ["g0"], state, options)
        assert state.adaptive_cosine == pytest.approx(ema, abs=1e-12)
        assert alphas == [1.0]
        assert betas == pytest.approx([multiplier], abs=1e-12)


def test_sum_changes_nothing():
    (grad,) = combine("sum", [(GRADVAC_TASK, GRADVAC_ALIGN)])
    torch.testing.assert_close(grad, GRADVAC_TASK + GRADVAC_ALIGN, atol=0, rtol=0)


# ---- one training step of the tiny model ----


def hand_rule(rule: str, task: torch.Tensor, align: torch.Tensor, balance_ratio: float) -> torch.Tensor:
    """The rule on the whole model's gradient as one vector (float64)."""
    dot, task_sq, align_sq = float(task @ align), float(task @ task), float(align @ align)
    if rule == "pcgrad":
        assert dot < 0  # the step does conflict, so the projection is exercised
        return (task - dot / align_sq * align) + (align - dot / task_sq * task)
    if rule == "balance":
        return task + balance_ratio * math.sqrt(task_sq / align_sq) * align
    raise AssertionError(rule)


def one_step(tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator, rule, lam=0.7, ratio=0.5):
    """One step with `rule`: the model gradients before the optimizer step, and the oracle's `T` and `A`
    (autograd on an identical model) per parameter name, plus the trainer."""
    seed = 1  # seed 1: task and alignment gradients conflict at step 0, in every layer
    args = make_args(
        tmp_path,
        max_steps=1,
        max_grad_norm=0.0,
        alignment_loss=["contrastive"],
        alignment_lambda=lam,
        conflict_every=1,
        gradient_combination=rule,
        balance_ratio=ratio,
    )
    model, reference = make_model(tokenizer, seed=seed).double(), make_model(tokenizer, seed=seed).double()
    capture = GradientCapture(model)
    trainer, seen = train_recording_task_batches(
        tokenizer, task_dataset, parallel_dataset, task_collator, args, model, callbacks=[capture]
    )

    named = list(reference.named_parameters())
    params = [p for _, p in named]

    def grads_of(loss):
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        return {n: (torch.zeros_like(p) if g is None else g) for (n, p), g in zip(named, grads)}

    task = grads_of(reference(**seen[0]).loss)
    align = grads_of(
        lam * hand_contrastive(reference.base_model, trainer.alignment_stream.batch(0, 0), args.alignment_temperature)
    )
    got = {n: capture.grads.get(n, torch.zeros_like(p)) for n, p in named}
    return got, task, align, trainer


def flat(grads, names):
    return torch.cat([grads[n].flatten() for n in names])


@pytest.mark.parametrize("rule", ["pcgrad", "balance"])
def test_rule_on_a_training_step_equals_hand_rule_on_autograd_gradients(
    tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator, rule
):
    ratio = 0.5
    got, task, align, _ = one_step(
        tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator, rule, ratio=ratio
    )
    names = list(task)  # the whole model is one vector for these rules
    expected = hand_rule(rule, flat(task, names), flat(align, names), ratio)
    torch.testing.assert_close(flat(got, names), expected, atol=1e-6, rtol=0)
    assert not torch.allclose(flat(got, names), flat(task, names) + flat(align, names), atol=1e-4)  # it acted


def test_gradvac_on_a_training_step_projects_each_conflicting_group(
    tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator
):
    got, task, align, trainer = one_step(tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator, "gradvac")
    # A fresh state has target φ̂ = 0 in every group. Lifting cos to 0 is solving cos(A + c_A T, T) = 0, i.e.
    # c_A = -T·A/|T|² (and c_T = -T·A/|A|²): GradVac at φ̂ = 0 is PCGrad within each group with T·A < 0.
    observed = {}
    for group in sorted({hand_group(n) for n in task}):
        names = [n for n in task if hand_group(n) == group]
        t, a = flat(task, names), flat(align, names)
        dot, task_sq, align_sq = float(t @ a), float(t @ t), float(a @ a)
        if group == "head":
            assert align_sq == 0  # alignment never reaches the task head: nothing to lift
            expected = t + a
        else:
            assert dot < 0, group  # every encoder group conflicts at this step
            expected = (t - dot / align_sq * a) + (a - dot / task_sq * t)
            observed[group] = dot / math.sqrt(task_sq * align_sq)
        torch.testing.assert_close(flat(got, names), expected, atol=1e-6, rtol=0, msg=group)
    # and each group's target moved by the EMA from 0: φ̂ = 0.99 * 0 + 0.01 * φ_g (gradvac_beta = 0.01),
    # kept under the group's name (layer k = hidden_states[k]; the head never gets alignment, so no target)
    assert set(trainer.combination_state.gradvac_targets) == {"layer.0", "layer.1", "layer.2"}
    for group, value in observed.items():
        assert trainer.combination_state.gradvac_targets[group] == pytest.approx(0.01 * value, abs=1e-9), group
