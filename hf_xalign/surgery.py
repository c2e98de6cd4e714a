"""Combining rules: rewrite the step's gradient from its task part T and alignment part A.

Every rule here is linear in (T, A) with coefficients per parameter group,
`G' = α_g · T + β_g · A`, computed from the partial sums `T·A`, `|T|²`, `|A|²` that the
measurement already has. So a rule costs one pass over the gradients, and no extra buffer.

| rule | α, β |
|---|---|
| `sum` | 1, 1 (nothing changes) |
| `pcgrad` | if `T·A < 0` (whole model): `1 - T·A/|T|²`, `1 - T·A/|A|²`: each gradient loses its component along the other (Yu et al., 2020) |
| `gradvac` | per group `g`, if `cos_g < φ̂_g`: `1 + c_A`, `1 + c_T` lift the similarity to the target `φ̂_g`, an EMA of the observed cosine (Wang et al., 2021) |
| `balance` | 1, `r · |T| / |A|`: the alignment gradient rescaled to `r` times the task gradient's norm |
| `adaptive` | 1, `m = clip(1 + κ · cos_ema, 0, m_max)`: λ scaled up while the gradients agree, down while they conflict |

References:
    - Yu et al., 2020, "Gradient Surgery for Multi-Task Learning" (PCGrad).
    - Wang, Tsvetkov, Firat & Cao, 2021, "Gradient Vaccine: Investigating and Improving Multi-task
      Optimization in Massively Multilingual Models" (GradVac).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .distributed import local_values

COMBINATIONS: tuple[str, ...] = ("sum", "pcgrad", "gradvac", "balance", "adaptive")


@dataclass
class CombinationOptions:
    """Hyper-parameters of the rules (see the module docstring)."""

    gradvac_beta: float = 0.01  # EMA rate of GradVac's per-group target similarity
    balance_ratio: float = 1.0  # r: |A'| = r * |T|
    adaptive_gain: float = 1.0  # κ
    adaptive_max: float = 2.0  # m_max
    adaptive_beta: float = 0.1  # EMA rate of the cosine driving the adaptive multiplier


@dataclass
class CombinationState:
    """What a rule carries from step to step (saved in checkpoints for an exact resume)."""

    # φ̂ per parameter group, keyed by the group's name (`layer.0`, ..., see `conflict.parameter_group`)
    gradvac_targets: dict[str, float] = field(default_factory=dict)
    adaptive_cosine: float | None = None  # EMA of the global cosine

    def to_dict(self) -> dict:
        return {"gradvac_targets": self.gradvac_targets, "adaptive_cosine": self.adaptive_cosine}

    @classmethod
    def from_dict(cls, values: dict) -> CombinationState:
        return cls(dict(values.get("gradvac_targets", {})), values.get("adaptive_cosine"))


def combination_coefficients(
    rule: str,
    group_sums: torch.Tensor,
    group_names: list[str],
    state: CombinationState,
    options: CombinationOptions,
) -> tuple[list[float], list[float]]:
    """`(α, β)` per parameter group for `G' = α T + β A`; updates `state` (EMAs) in place.

    Args:
        rule (`str`): one of `COMBINATIONS`.
        group_sums (`torch.Tensor` of shape `(groups, 3)`): `[T·A, |T|², |A|²]` per group, float64.
        group_names (`list[str]`): the groups' names ([`~hf_xalign.conflict.parameter_group`]), which key
            the per-group GradVac targets.
        state ([`CombinationState`]): carried between steps.
        options ([`CombinationOptions`]): the rules' hyper-parameters.
    """
    sums = group_sums.detach().double().cpu().tolist()
    ones = [1.0] * len(sums)
    dot, task_sq, align_sq = (sum(row[j] for row in sums) for j in range(3))
    if rule == "sum":
        return ones, list(ones)
    if rule == "pcgrad":
        if dot >= 0 or task_sq == 0 or align_sq == 0:
            return ones, list(ones)
        return [1 - dot / task_sq] * len(sums), [1 - dot / align_sq] * len(sums)
    if rule == "balance":
        scale = options.balance_ratio * math.sqrt(task_sq / align_sq) if align_sq > 0 else 1.0
        return ones, [scale] * len(sums)
    if rule == "adaptive":
        if task_sq > 0 and align_sq > 0:
            cosine = dot / math.sqrt(task_sq * align_sq)
            previous = state.adaptive_cosine
            state.adaptive_cosine = (
                cosine if previous is None else (1 - options.adaptive_beta) * previous + options.adaptive_beta * cosine
            )
        multiplier = 1.0 if state.adaptive_cosine is None else 1 + options.adaptive_gain * state.adaptive_cosine
        return ones, [min(max(multiplier, 0.0), options.adaptive_max)] * len(sums)
    if rule == "gradvac":
        alphas, betas = [], []
        for name, (group_dot, group_task_sq, group_align_sq) in zip(group_names, sums):
            alpha, beta = gradvac_coefficients(group_dot, group_task_sq, group_align_sq, state, name, options)
            alphas.append(alpha)
            betas.append(beta)
        return alphas, betas
    raise ValueError(f"Unknown gradient_combination {rule!r}; choose one of {COMBINATIONS}.")


def gradvac_coefficients(
    dot: float, task_sq: float, align_sq: float, state: CombinationState, group: str, options: CombinationOptions
) -> tuple[float, float]:
    """GradVac for one parameter group: `(α, β) = (1 + c_A, 1 + c_T)` where, with `φ = cos(T, A)` below the target `φ̂`,

    `A' = A + c_A·T`, `c_A = |A| (φ̂ √(1-φ²) - φ √(1-φ̂²)) / (|T| √(1-φ̂²))`, and symmetrically
    `T' = T + c_T·A`, `c_T = |T| (...) / (|A| √(1-φ̂²))`; then `φ̂ ← (1-β) φ̂ + β φ`.
    """
    if task_sq <= 0 or align_sq <= 0:
        return 1.0, 1.0
    cosine = max(-1.0, min(1.0, dot / math.sqrt(task_sq * align_sq)))
    target = state.gradvac_targets.get(group, 0.0)
    alpha = beta = 1.0
    if cosine < target:
        task_norm, align_norm = math.sqrt(task_sq), math.sqrt(align_sq)
        lift = (target * math.sqrt(1 - cosine**2) - cosine * math.sqrt(1 - target**2)) / math.sqrt(1 - target**2)
        # G' = T' + A' = (1 + c_A) T + (1 + c_T) A
        alpha = 1 + lift * align_norm / task_norm  # 1 + c_A
        beta = 1 + lift * task_norm / align_norm  # 1 + c_T
    state.gradvac_targets[group] = (1 - options.gradvac_beta) * target + options.gradvac_beta * cosine
    return alpha, beta


def apply_combination(
    params: list[torch.nn.Parameter],
    task_grads: list[torch.Tensor],
    group_of: list[int],
    alphas: list[float],
    betas: list[float],
) -> None:
    """Rewrite `.grad` in place as `α T + β (G - T) = β G + (α - β) T`, per parameter group.

    Under FSDP2 `.grad` is a DTensor and `task_grads` hold this process's shards: the rule runs on the local
    shard of `.grad` (the coefficients are global, from all-reduced sums), which is the whole rule, sharded.
    """
    for param, task, group in zip(params, task_grads, group_of):
        alpha, beta = alphas[group], betas[group]
        if param.grad is None or (alpha == 1.0 and beta == 1.0):
            continue
        grad = local_values(param.grad)
        grad.mul_(beta).add_(task.to(grad.dtype), alpha=alpha - beta)
