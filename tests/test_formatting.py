"""The one number formatter (`hf_xalign/formatting.py`) that the results table, the reports and the card share.

The oracles: numbers written out by hand, and the results table, which must write a value as the formatter does.
"""

from __future__ import annotations

import math

import pytest

from hf_xalign.experiment.report import results_markdown
from hf_xalign.formatting import gradient_summary_lines, number, with_interval
from hf_xalign.results import CellResult


@pytest.mark.parametrize(
    ("value", "signed", "digits", "expected"),
    [
        (0.81234, False, 4, "0.8123"),
        (0.81236, False, 4, "0.8124"),
        (0.0123, True, 4, "+0.0123"),
        (-0.5, True, 3, "-0.500"),
        (3, False, 4, "3.0000"),
        (None, False, 4, "–"),
        (math.nan, True, 4, "–"),
        (math.inf, False, 4, "–"),
    ],
)
def test_number(value, signed, digits, expected):
    assert number(value, signed, digits) == expected


def test_an_interval_follows_its_number_with_its_own_decimals():
    assert with_interval(0.81234, [0.79, 0.83]) == "0.8123 [0.7900, 0.8300]"
    assert with_interval(0.01, (-0.02, 0.04), signed=True, interval_digits=3) == "+0.0100 [-0.020, +0.040]"
    assert with_interval(0.5, None) == with_interval(0.5, []) == "0.5000"
    assert with_interval(math.nan, [0.1, 0.2]) == "–"


def test_the_results_table_writes_a_score_that_is_not_finite_as_the_reports_do():
    """An infinite score was `inf` in results.md and the card, `–` in the reports: now `–` everywhere."""
    cell = CellResult(name="a", task="pos", metric="accuracy", source_language="en")
    cell.scores = {"en": {"accuracy": 0.5}, "de": {"accuracy": math.inf}}
    rows = {line.split(" | ")[0]: line for line in results_markdown([cell]).splitlines() if line.startswith("| ")}
    assert rows["| de"] == "| de | – |"
    assert rows["| en (source)"] == "| en (source) | 0.5000 |"


def test_a_gradient_summary_without_a_defined_cosine_says_so_in_one_sentence():
    """Every step skipped (non-finite gradients): one sentence, not a row of `–` values."""
    summary = {"measured_steps": 0, "skipped_steps": 3}  # what `summarize` returns for three skipped steps
    assert gradient_summary_lines(summary, "aligned") == [
        "Task vs alignment gradients (aligned): no measured step with a defined cosine."
    ]
    assert gradient_summary_lines(summary) == ["Task vs alignment gradients: no measured step with a defined cosine."]
