"""Analysis of cross-lingual alignment: measures per layer, tables, the `xalign analyze` command."""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "analyze": ["COLUMNS", "analyze", "analyze_model", "read_table", "write_table"],
    "measures": ["MEASURES", "cosine_gap", "linear_cka", "measure_all", "pair_cosine", "pair_l2", "retrieval_accuracy"],
}

__all__ = [
    "COLUMNS",
    "MEASURES",
    "analyze",
    "analyze_model",
    "cosine_gap",
    "linear_cka",
    "measure_all",
    "pair_cosine",
    "pair_l2",
    "read_table",
    "retrieval_accuracy",
    "write_table",
]

if TYPE_CHECKING:
    from .analyze import COLUMNS, analyze, analyze_model, read_table, write_table
    from .measures import MEASURES, cosine_gap, linear_cka, measure_all, pair_cosine, pair_l2, retrieval_accuracy

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
