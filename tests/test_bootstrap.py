"""Bootstrap intervals of per-language accuracies and of paired differences (hf_xalign.analysis.bootstrap)."""

import numpy as np
import pytest

from hf_xalign.analysis.bootstrap import delta_interval, example_outcomes, excludes_zero, score_interval


def _token_outcomes(seed: int, examples: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Random POS-like outcomes: 1 to 20 labelled tokens per sentence, about 80% right."""
    rng = np.random.default_rng(seed)
    total = rng.integers(1, 21, examples)
    return rng.binomial(total, 0.8), total


def test_example_outcomes_of_token_classification_count_labelled_tokens_per_sentence():
    label_ids = np.array(
        [
            [-100, 3, 1, -100, 2, -100],  # 3 labelled tokens
            [-100, 0, 0, 4, -100, -100],  # 3 labelled tokens, then padding
            [-100, -100, -100, -100, -100, -100],  # nothing labelled
        ]
    )
    predictions = np.array(
        [
            [7, 3, 2, 1, 2, 9],  # right at 3 and 2, wrong at 1; unlabelled positions do not count
            [-100, 0, 0, 4, -100, -100],  # padded with -100; all 3 labelled tokens right
            [-100, -100, -100, -100, -100, -100],
        ]
    )

    correct, total = example_outcomes(predictions, label_ids)

    np.testing.assert_array_equal(correct, [2, 3, 0])
    np.testing.assert_array_equal(total, [3, 3, 0])
    assert correct.sum() / total.sum() == 5 / 6  # 5 right of 6 labelled tokens, counted by hand


def test_example_outcomes_of_classification_give_one_prediction_per_example():
    correct, total = example_outcomes(np.array([0, 2, 1, 1]), np.array([0, 1, 1, 2]))

    np.testing.assert_array_equal(correct, [1, 0, 1, 0])
    np.testing.assert_array_equal(total, [1, 1, 1, 1])


def test_example_outcomes_refuse_logits():
    with pytest.raises(ValueError, match="argmax"):
        example_outcomes(np.zeros((2, 5, 3)), np.zeros((2, 5, 3)))


def test_identical_variants_give_a_delta_interval_of_exactly_zero():
    correct, total = _token_outcomes(seed=0)

    assert delta_interval(correct, total, correct.copy(), total.copy()) == (0.0, 0.0)


def test_a_variant_right_everywhere_beats_one_right_on_half_the_examples():
    n = 56  # examples per language in the classification demo
    total = np.ones(n, dtype=int)
    all_right = np.ones(n, dtype=int)
    half_right = np.arange(n) % 2  # accuracy 0.5, so the true difference is 0.5

    interval = delta_interval(all_right, total, half_right, total)

    assert excludes_zero(interval)
    assert 0.0 < interval[0] <= 0.5 <= interval[1] <= 1.0


def test_score_interval_covers_the_true_accuracy_95_percent_of_the_time():
    true_p, n, simulations = 0.7, 100, 400
    covered = 0
    for simulation in range(simulations):
        correct = np.random.default_rng(simulation).binomial(1, true_p, n)  # a fresh test set
        low, high = score_interval(correct, np.ones(n, dtype=int), n_resamples=1000, seed=10_000 + simulation)
        covered += low <= true_p <= high

    assert abs(covered / simulations - 0.95) <= 0.03


def test_score_interval_of_all_correct_is_exactly_one():
    total = np.array([5, 12, 3, 8])

    assert score_interval(total.copy(), total) == (1.0, 1.0)


def test_score_interval_contains_the_point_estimate():
    correct, total = _token_outcomes(seed=1)
    accuracy = correct.sum() / total.sum()

    low, high = score_interval(correct, total)

    assert low < accuracy < high


def test_intervals_are_reproducible_from_the_seed():
    correct, total = _token_outcomes(seed=2)

    assert score_interval(correct, total, seed=3) == score_interval(correct, total, seed=3)
    assert score_interval(correct, total, seed=3) != score_interval(correct, total, seed=4)


def test_examples_without_labelled_tokens_are_left_out():
    correct, total = _token_outcomes(seed=3)
    with_empty_sentences = np.insert(correct, [0, 10], 0), np.insert(total, [0, 10], 0)

    assert score_interval(*with_empty_sentences) == score_interval(correct, total)


def test_delta_interval_refuses_variants_of_different_lengths():
    with pytest.raises(ValueError, match="variant a has 3 examples, variant b has 2"):
        delta_interval(np.array([1, 0, 1]), np.ones(3), np.array([1, 0]), np.ones(2))


def test_delta_interval_refuses_different_totals():
    with pytest.raises(ValueError, match=r"totals differ at 1 examples \(first at row 1: total_a 4, total_b 5\)"):
        delta_interval(np.array([1, 2, 3]), np.array([3, 4, 5]), np.array([1, 2, 3]), np.array([3, 5, 5]))


def test_empty_input_is_refused():
    with pytest.raises(ValueError, match="empty"):
        score_interval(np.array([], dtype=int), np.array([], dtype=int))
    with pytest.raises(ValueError, match="empty"):
        delta_interval(np.array([]), np.array([]), np.array([]), np.array([]))


def test_more_correct_than_labelled_is_refused():
    with pytest.raises(ValueError, match="correct <= total"):
        score_interval(np.array([2, 1]), np.array([1, 1]))


def test_excludes_zero():
    assert excludes_zero((0.01, 0.2))
    assert excludes_zero((-0.2, -0.01))
    assert not excludes_zero((-0.01, 0.2))
    assert not excludes_zero((0.0, 0.0))
