"""Token accuracy for tagging: the share of labelled tokens whose predicted tag is right.

A local `evaluate` module (it loads offline, by path):
`evaluate.load(hf_xalign.metrics.metric_path("token_accuracy"))`.
"""

import datasets
import evaluate

_DESCRIPTION = """Token accuracy: correct predictions / labelled tokens. Positions whose reference is
`ignore_index` (default -100: special tokens, padding, non-first sub-tokens) are not counted."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[list[int]]`): predicted tag ids per token, one list per sentence.
    references (`list[list[int]]`): gold tag ids per token (same shapes), `ignore_index` where unlabelled.
    ignore_index (`int`, *optional*, defaults to -100): reference value of unlabelled positions.
Returns:
    accuracy (`float`): correct / counted tokens.
    tokens (`int`): counted tokens.
Examples:
    >>> metric = evaluate.load("token_accuracy")
    >>> metric.compute(predictions=[[1, 2, 0]], references=[[1, 3, -100]])
    {'accuracy': 0.5, 'tokens': 2}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class TokenAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("int64")),
                    "references": datasets.Sequence(datasets.Value("int64")),
                }
            ),
        )

    def _compute(self, predictions, references, ignore_index=-100):
        correct = counted = 0
        for predicted, gold in zip(predictions, references):
            if len(predicted) != len(gold):
                raise ValueError(f"A prediction has {len(predicted)} tokens and its reference {len(gold)}.")
            for p, g in zip(predicted, gold):
                if g != ignore_index:
                    counted += 1
                    correct += int(p == g)
        return {"accuracy": correct / counted if counted else float("nan"), "tokens": counted}
