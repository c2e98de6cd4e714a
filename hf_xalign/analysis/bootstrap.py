"""Bootstrap confidence intervals for per-language accuracies and for the difference between two variants.

Test sets are small (56 examples per language in the classification demo, a few hundred sentences
in POS), so a gap of a few points may be noise. The intervals here say how far a score would move
if the test set had been drawn again.

What is resampled: EXAMPLES (rows), with replacement. A POS sentence is one example whose tokens
stay together, because tokens of one sentence are not independent draws; the accuracy of a
resample is the ratio of sums `sum(correct) / sum(total)`, the same micro-average the token
accuracy metric reports. A difference between two variants is bootstrapped PAIRED: both were
scored on the same test examples, so each resample takes the same rows from both, which cancels
the difficulty the two share and gives a narrower, honest interval for the difference.

The resampling is done by `scipy.stats.bootstrap` with `paired=True`: it draws one matrix of row
indices per batch and hands the gathered rows to our vectorized ratio statistic, `batch` bounds
the memory, and its percentile interval is a tested implementation we do not need to repeat.
"""

from __future__ import annotations

import numpy as np
from packaging.version import Version

from ..extras import missing_extra

try:
    import scipy
    from scipy import stats
except ModuleNotFoundError as error:
    raise missing_extra(
        error, "the bootstrap intervals of the recipes and the report (hf_xalign.analysis.bootstrap)"
    ) from None

# Values per gathered array in one batch of resamples (32 MiB of int64): memory stays bounded
# however many examples and resamples are asked for.
_MAX_VALUES_PER_BATCH = 2**22
# scipy 1.15 renamed `bootstrap(random_state=...)` to `rng=...`; setup.cfg allows scipy>=1.10.
_RNG_KEYWORD = "rng" if Version(scipy.__version__) >= Version("1.15") else "random_state"
# A bootstrap resamples examples: with one, every resample is that example and there is no spread to measure.
MIN_BOOTSTRAP_EXAMPLES = 2


def example_outcomes(
    predictions: np.ndarray, label_ids: np.ndarray, ignore_index: int = -100
) -> tuple[np.ndarray, np.ndarray]:
    """Counts of right and of labelled predictions per example, the unit the bootstrap resamples.

    Args:
        predictions (`np.ndarray` of shape `(examples,)` or `(examples, tokens)`): predicted class
            ids (argmax already taken); padded positions may hold any value, e.g. -100.
        label_ids (`np.ndarray` of the same shape): gold ids, `ignore_index` where unlabelled
            (padding, special tokens, non-first sub-tokens).
        ignore_index (`int`, *optional*, defaults to `-100`): label of positions that are not counted.

    Returns:
        `tuple[np.ndarray, np.ndarray]`: `correct` and `total`, integer arrays of shape `(examples,)`.
        For classification (1-D) each example has `total` 1; for token classification `correct` counts
        the right labelled tokens of the row and `total` its labelled tokens. The accuracy is
        `correct.sum() / total.sum()`.
    """
    predictions = np.asarray(predictions)
    label_ids = np.asarray(label_ids)
    if predictions.shape != label_ids.shape:
        raise ValueError(
            f"predictions have shape {predictions.shape} but label_ids {label_ids.shape}; "
            "pass predicted ids (argmax over classes) aligned with the labels."
        )
    if label_ids.ndim not in (1, 2):
        raise ValueError(
            f"Expected 1-D (classification) or 2-D (token classification) arrays, got {label_ids.ndim}-D; "
            "take the argmax over the class axis first."
        )
    if label_ids.ndim == 1:  # one example = one prediction
        predictions, label_ids = predictions[:, None], label_ids[:, None]
    labelled = label_ids != ignore_index  # (examples, tokens)
    correct = ((predictions == label_ids) & labelled).sum(axis=1)
    return correct, labelled.sum(axis=1)


def score_interval(
    correct: np.ndarray, total: np.ndarray, *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the accuracy `sum(correct) / sum(total)`.

    Examples (rows) are resampled with replacement, so the tokens of a sentence stay together.
    Examples without labelled tokens (`total` 0) carry no outcome and are left out.

    Args:
        correct (`np.ndarray` of shape `(examples,)`): right predictions per example, as from
            [`example_outcomes`].
        total (`np.ndarray` of shape `(examples,)`): counted predictions per example.
        confidence (`float`, *optional*, defaults to `0.95`): coverage of the interval.
        n_resamples (`int`, *optional*, defaults to `2000`): bootstrap resamples.
        seed (`int`, *optional*, defaults to `0`): seed of the resampling, so reports are reproducible.

    Returns:
        `tuple[float, float]`: the lower and upper bound; `(1.0, 1.0)` when every prediction is right.
    """
    correct, total = _outcomes(correct, total, "")
    labelled = total > 0
    return _ratio_interval(
        correct[labelled], total[labelled], confidence=confidence, n_resamples=n_resamples, seed=seed
    )


def delta_interval(
    correct_a: np.ndarray,
    total_a: np.ndarray,
    correct_b: np.ndarray,
    total_b: np.ndarray,
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Paired percentile bootstrap interval of `accuracy_a - accuracy_b`.

    Both variants were scored on the same test examples, so each resample draws one set of example
    indices and takes those rows from both variants: the difficulty of an example, shared by the
    two, cancels out of the difference. Example `i` must therefore be the same example in both
    inputs, which is checked through its number of labelled tokens.

    Args:
        correct_a (`np.ndarray` of shape `(examples,)`): right predictions per example of variant a.
        total_a (`np.ndarray` of shape `(examples,)`): counted predictions per example of variant a.
        correct_b (`np.ndarray` of shape `(examples,)`): the same for variant b, in the same example order.
        total_b (`np.ndarray` of shape `(examples,)`): must equal `total_a`.
        confidence (`float`, *optional*, defaults to `0.95`): coverage of the interval.
        n_resamples (`int`, *optional*, defaults to `2000`): bootstrap resamples.
        seed (`int`, *optional*, defaults to `0`): seed of the resampling.

    Returns:
        `tuple[float, float]`: the lower and upper bound; `(0.0, 0.0)` when both variants have the
        same outcomes.

    Raises:
        `ValueError`: when the variants have different numbers of examples or different totals,
        i.e. were not scored on the same examples.
    """
    correct_a, total_a = _outcomes(correct_a, total_a, "_a")
    correct_b, total_b = _outcomes(correct_b, total_b, "_b")
    if len(total_a) != len(total_b):
        raise ValueError(
            f"Paired bootstrap needs the same test examples: variant a has {len(total_a)} examples, "
            f"variant b has {len(total_b)}."
        )
    differing = np.flatnonzero(total_a != total_b)
    if differing.size:
        first = differing[0]
        raise ValueError(
            f"Paired bootstrap needs the same test examples, but the totals differ at {differing.size} "
            f"examples (first at row {first}: total_a {total_a[first]}, total_b {total_b[first]}); "
            "score both variants on the same examples, in the same order."
        )
    labelled = total_a > 0
    # accuracy_a - accuracy_b over the shared totals is the ratio of sums of the per-example differences
    return _ratio_interval(
        correct_a[labelled] - correct_b[labelled],
        total_a[labelled],
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
    )


def excludes_zero(interval: tuple[float, float]) -> bool:
    """Whether a difference interval lies entirely on one side of 0 (the gap is not noise at that confidence)."""
    low, high = interval
    return low > 0.0 or high < 0.0


def labelled_examples(total: np.ndarray) -> int:
    """The examples with at least one counted prediction: what a bootstrap resamples (it needs
    [`MIN_BOOTSTRAP_EXAMPLES`] of them)."""
    return int((np.asarray(total) > 0).sum())


def _outcomes(correct: np.ndarray, total: np.ndarray, suffix: str) -> tuple[np.ndarray, np.ndarray]:
    """`correct` and `total` as 1-D int64 arrays of one length, checked to be counts with `correct <= total`."""
    # signed, so that the paired differences `correct_a - correct_b` of unsigned or bool inputs do not wrap
    correct, total = np.asarray(correct, dtype=np.int64), np.asarray(total, dtype=np.int64)
    if correct.ndim != 1 or correct.shape != total.shape:
        raise ValueError(
            f"correct{suffix} and total{suffix} must be 1-D arrays of one length (one value per example), "
            f"got shapes {correct.shape} and {total.shape}."
        )
    if correct.size == 0:
        raise ValueError(f"correct{suffix} and total{suffix} are empty: there is no example to bootstrap.")
    if (correct < 0).any() or (correct > total).any():
        raise ValueError(f"Expected 0 <= correct{suffix} <= total{suffix} for every example.")
    return correct, total


def _accuracy(correct: np.ndarray, total: np.ndarray, axis: int = -1) -> np.ndarray:
    """Ratio-of-sums accuracy of each resample, vectorized over the leading axes."""
    return correct.sum(axis=axis) / total.sum(axis=axis)


def _ratio_interval(
    numerator: np.ndarray,
    total: np.ndarray,
    *,
    confidence: float,
    n_resamples: int,
    seed: int,
) -> tuple[float, float]:
    """Percentile bootstrap interval of `sum(numerator) / sum(total)`, resampling examples (rows of both together).

    The numerator is `correct` for a score, or `correct_a - correct_b` for a paired difference: one
    array fewer to gather than two accuracies, and equal outcomes give exactly 0.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}.")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}.")
    n_examples = len(total)
    if n_examples < MIN_BOOTSTRAP_EXAMPLES:
        raise ValueError(
            f"A bootstrap needs at least {MIN_BOOTSTRAP_EXAMPLES} examples with labelled tokens, got {n_examples}."
        )
    result = stats.bootstrap(
        (numerator, total),
        _accuracy,
        n_resamples=n_resamples,
        batch=max(1, _MAX_VALUES_PER_BATCH // n_examples),
        vectorized=True,
        paired=True,
        confidence_level=confidence,
        method="percentile",
        **{_RNG_KEYWORD: np.random.default_rng(seed)},
    )
    low, high = result.confidence_interval
    return float(low), float(high)
