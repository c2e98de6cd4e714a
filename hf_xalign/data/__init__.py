"""Data: parallel text for alignment (readers, the collator, the seeded alignment stream) and classification examples."""

from .classification import ClassificationDataError, load_classification, tokenize_classification
from .collator import ParallelCollator, mask_tokens
from .parallel import (
    PARALLEL_COLUMNS,
    PARALLEL_FEATURES,
    ParallelDataError,
    drop_pairs_containing,
    load_parallel,
    parse_alignment,
)
from .stream import AlignmentStream

__all__ = [
    "PARALLEL_COLUMNS",
    "PARALLEL_FEATURES",
    "AlignmentStream",
    "ClassificationDataError",
    "ParallelCollator",
    "ParallelDataError",
    "drop_pairs_containing",
    "load_classification",
    "load_parallel",
    "mask_tokens",
    "parse_alignment",
    "tokenize_classification",
]
