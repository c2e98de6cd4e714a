"""Measures of cross-lingual alignment between paired sentence vectors.

Every measure takes `source` and `target` of shape `(n, dim)` in which row `i` of `source` and
row `i` of `target` are the vectors of a translation pair (the pooled states of one layer, as
[`~hf_xalign.analysis.analyze`] gives them), and returns a Python `float`. Everything is computed
in float64, whatever the input's dtype.

Notation: `s_i`, `t_i` are the rows, `cos(u, v) = u·v / (|u| |v|)` (0 when either vector is zero,
as `torch.nn.functional.cosine_similarity` gives with its `eps`), `|·|` the L2 norm.

| name (in [`MEASURES`] order) | what it says | perfectly aligned |
|---|---|---|
| `pair_cosine` | mean cosine of translation pairs | 1 |
| `cosine_gap` | `pair_cosine` minus the mean cosine of non-translations | large; 0 when collapsed |
| `pair_l2` | mean L2 distance of translation pairs | 0 |
| `linear_cka` | linear CKA between the two sets (Kornblith et al., 2019) | 1 |
| `retrieval_src_to_tgt` | P@1 of finding `t_i` as the nearest target of `s_i` (XTREME's Tatoeba) | 1 |
| `retrieval_tgt_to_src` | the same, from targets to sources | 1 |
"""

from __future__ import annotations

import torch

__all__ = ["MEASURES", "cosine_gap", "linear_cka", "measure_all", "pair_cosine", "pair_l2", "retrieval_accuracy"]

MEASURES: tuple[str, ...] = (
    "pair_cosine",
    "cosine_gap",
    "pair_l2",
    "linear_cka",
    "retrieval_src_to_tgt",
    "retrieval_tgt_to_src",
)

# The smallest norm a vector is divided by, as `torch.nn.functional.cosine_similarity`'s `eps`.
_EPS = 1e-8


def _paired(source: torch.Tensor, target: torch.Tensor, same_dim: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Both sets as float64 `(n, dim)` tensors, checked to hold the same number `n >= 1` of rows."""
    source = torch.as_tensor(source).to(torch.float64)
    target = torch.as_tensor(target).to(torch.float64)
    if source.ndim != 2 or target.ndim != 2 or source.shape[0] != target.shape[0] or source.shape[0] == 0:
        raise ValueError(
            f"source and target must be (n, dim) with the same n >= 1 rows (row i a translation pair); "
            f"got shapes {tuple(source.shape)} and {tuple(target.shape)}"
        )
    if same_dim and source.shape[1] != target.shape[1]:
        raise ValueError(f"source and target vectors differ in size: {source.shape[1]} and {target.shape[1]}")
    return source, target


def _unit(vectors: torch.Tensor) -> torch.Tensor:
    """Rows scaled to norm 1 (zero rows stay zero)."""
    return vectors / vectors.norm(dim=1, keepdim=True).clamp_min(_EPS)  # (n, dim)


def pair_cosine(source: torch.Tensor, target: torch.Tensor) -> float:
    """Mean cosine of the translation pairs: `(1/n) Σ_i cos(s_i, t_i)`.

    Args:
        source (`torch.Tensor` of shape `(n, dim)`): source sentence vectors.
        target (`torch.Tensor` of shape `(n, dim)`): their translations' vectors, in the same order.
    """
    source, target = _paired(source, target)
    return (_unit(source) * _unit(target)).sum(dim=1).mean().item()


def cosine_gap(source: torch.Tensor, target: torch.Tensor) -> float:
    """Mean cosine of translation pairs minus that of all non-translation pairs.

    `(1/n) Σ_i cos(s_i, t_i) - (1/(n(n-1))) Σ_{i≠j} cos(s_i, t_j)`.

    High similarity alone can come from an anisotropic space where every vector points the same
    way; the gap discounts it. In a collapsed space (all vectors equal) the mean cosine is 1 and
    the gap is 0. The off-diagonal sum is computed without the `n × n` matrix, as
    `(Σ_i ŝ_i)·(Σ_j t̂_j) - Σ_i ŝ_i·t̂_i` over the unit vectors `ŝ`, `t̂`.

    Args:
        source (`torch.Tensor` of shape `(n, dim)`, `n >= 2`): source sentence vectors.
        target (`torch.Tensor` of shape `(n, dim)`): their translations' vectors, in the same order.
    """
    source, target = _paired(source, target)
    n = source.shape[0]
    if n < 2:
        raise ValueError("cosine_gap needs at least 2 pairs (there are no non-translation pairs in 1)")
    unit_source, unit_target = _unit(source), _unit(target)  # (n, dim)
    pair_sum = (unit_source * unit_target).sum()
    all_sum = unit_source.sum(dim=0) @ unit_target.sum(dim=0)
    return (pair_sum / n - (all_sum - pair_sum) / (n * (n - 1))).item()


def pair_l2(source: torch.Tensor, target: torch.Tensor) -> float:
    """Mean L2 (Euclidean) distance of the translation pairs: `(1/n) Σ_i |s_i - t_i|`.

    Args:
        source (`torch.Tensor` of shape `(n, dim)`): source sentence vectors.
        target (`torch.Tensor` of shape `(n, dim)`): their translations' vectors, in the same order.
    """
    source, target = _paired(source, target)
    return (source - target).norm(dim=1).mean().item()


def linear_cka(source: torch.Tensor, target: torch.Tensor) -> float:
    """Linear centered kernel alignment between the two sets (Kornblith et al., ICML 2019).

    With `X`, `Y` the column-centered `source` and `target` (each row minus the set's mean row):

    `CKA(X, Y) = |Yᵀ X|_F² / (|Xᵀ X|_F |Yᵀ Y|_F)`

    (their Eq. 6; `|·|_F` the Frobenius norm). It lies in `[0, 1]` and is invariant to orthogonal
    transforms and isotropic scaling of either set, so it compares the geometry of the two sets
    rather than the position of each pair. NaN when either set is constant (all rows equal).
    The two sets may differ in `dim`. With fewer pairs than dimensions the same value comes cheaper
    from the `n × n` Gram matrices `K = X Xᵀ`, `L = Y Yᵀ`: `|Yᵀ X|_F² = ⟨K, L⟩_F` and `|Xᵀ X|_F = |K|_F`.

    Args:
        source (`torch.Tensor` of shape `(n, dim)`): source sentence vectors.
        target (`torch.Tensor` of shape `(n, dim_target)`): their translations' vectors, in the same order.

    References:
        Simon Kornblith, Mohammad Norouzi, Honglak Lee, Geoffrey Hinton. "Similarity of Neural Network
        Representations Revisited." ICML 2019. https://arxiv.org/abs/1905.00414
    """
    source, target = _paired(source, target, same_dim=False)
    x = source - source.mean(dim=0)  # (n, dim)
    y = target - target.mean(dim=0)  # (n, dim_target)
    n, dim, dim_target = x.shape[0], x.shape[1], y.shape[1]
    if n * (dim + dim_target) < dim**2 + dim_target**2 + dim * dim_target:  # fewer multiplications
        gram, gram_target = x @ x.T, y @ y.T  # (n, n) each: K and L
        cross = (gram * gram_target).sum()
        norms = torch.linalg.matrix_norm(gram) * torch.linalg.matrix_norm(gram_target)
    else:
        cross = torch.linalg.matrix_norm(y.T @ x) ** 2
        norms = torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y)
    return (cross / norms).item() if norms > 0 else float("nan")


def retrieval_accuracy(source: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    """Precision at 1 of finding each sentence's translation by nearest neighbour, in both directions.

    Each source `s_i` retrieves the target of highest cosine among all `n` targets of the set, and
    counts as correct when that is `t_i`; targets retrieve sources the same way:

    `P@1(src→tgt) = (1/n) Σ_i [argmax_j cos(s_i, t_j) = i]`,  `P@1(tgt→src) = (1/n) Σ_j [argmax_i cos(s_i, t_j) = j]`.

    As in XTREME's Tatoeba / BUCC sentence retrieval (Hu et al., 2020), with cosine as the
    similarity. A tie goes to the lowest index (`torch.argmax`). Chance level is `1/n`.

    Args:
        source (`torch.Tensor` of shape `(n, dim)`): source sentence vectors.
        target (`torch.Tensor` of shape `(n, dim)`): their translations' vectors, in the same order.

    Returns:
        `tuple[float, float]`: `(source_to_target, target_to_source)`.

    References:
        Junjie Hu, Sebastian Ruder, Aditya Siddhant, Graham Neubig, Orhan Firat, Melvin Johnson. "XTREME: A
        Massively Multilingual Multi-task Benchmark for Evaluating Cross-lingual Generalization." ICML 2020.
        https://arxiv.org/abs/2003.11080
    """
    source, target = _paired(source, target)
    similarity = _unit(source) @ _unit(target).T  # (n_source, n_target)
    expected = torch.arange(source.shape[0], device=similarity.device)  # (n,)
    source_to_target = (similarity.argmax(dim=1) == expected).double().mean().item()
    target_to_source = (similarity.argmax(dim=0) == expected).double().mean().item()
    return source_to_target, target_to_source


def measure_all(source: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Every measure of [`MEASURES`], keyed by name in that order, on one set of `n >= 2` pairs `(n, dim)`."""
    source, target = _paired(source, target)
    source_to_target, target_to_source = retrieval_accuracy(source, target)
    return {
        "pair_cosine": pair_cosine(source, target),
        "cosine_gap": cosine_gap(source, target),
        "pair_l2": pair_l2(source, target),
        "linear_cka": linear_cka(source, target),
        "retrieval_src_to_tgt": source_to_target,
        "retrieval_tgt_to_src": target_to_source,
    }
