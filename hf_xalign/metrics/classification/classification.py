"""Classification scores: accuracy and macro-averaged F1, one class id per example.

A local `evaluate` module (it loads offline, by path):
`evaluate.load(hf_xalign.metrics.metric_path("classification"))`.
"""

import datasets
import evaluate

_DESCRIPTION = """Accuracy: correct predictions / examples.
Macro-F1: for each class c, F1_c = 2·TP_c / (2·TP_c + FP_c + FN_c); the score is the unweighted mean of F1_c.
Every class counts the same however rare it is, so always predicting the majority class scores far below its
accuracy. A class that is neither in the references nor predicted has no F1 and is left out of the mean."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[int]`): predicted class id per example.
    references (`list[int]`): gold class id per example.
    labels (`list[int]`, *optional*): the classes macro-F1 averages over; defaults to those in references or
        predictions (a listed class absent from both is still left out).
Returns:
    accuracy (`float`): correct / examples (NaN without examples).
    macro_f1 (`float`): mean per-class F1 (NaN when no class has one).
    per_class_f1 (`dict[int, float]`): F1 of each class in the mean.
    examples (`int`): number of examples.
Examples:
    >>> metric = evaluate.load("classification")
    >>> metric.compute(predictions=[0, 0, 1, 1], references=[0, 1, 1, 1])
    {'accuracy': 0.75, 'macro_f1': 0.7333333333333334, 'per_class_f1': {0: 0.6666666666666666, 1: 0.8}, 'examples': 4}
"""

_FEATURES = datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")})


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Classification(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation="", inputs_description=_KWARGS_DESCRIPTION, features=_FEATURES
        )

    def _compute(self, predictions, references, labels=None):
        pairs = list(zip(predictions, references))
        classes = sorted(set(references) | set(predictions)) if labels is None else list(labels)
        per_class_f1 = {}
        for c in classes:
            true_pos = sum(1 for p, g in pairs if p == c and g == c)
            wrong = sum(1 for p, g in pairs if (p == c) != (g == c))  # false positives + false negatives
            if true_pos or wrong:
                per_class_f1[c] = 2 * true_pos / (2 * true_pos + wrong)
        return {
            "accuracy": sum(1 for p, g in pairs if p == g) / len(pairs) if pairs else float("nan"),
            "macro_f1": sum(per_class_f1.values()) / len(per_class_f1) if per_class_f1 else float("nan"),
            "per_class_f1": per_class_f1,
            "examples": len(pairs),
        }
