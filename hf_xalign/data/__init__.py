"""Parallel text for alignment: readers, the collator and the seeded alignment stream."""

from .collator import ParallelCollator, mask_tokens
from .parallel import PARALLEL_COLUMNS, PARALLEL_FEATURES, ParallelDataError, load_parallel, parse_alignment
from .stream import AlignmentStream

__all__ = [
    "PARALLEL_COLUMNS",
    "PARALLEL_FEATURES",
    "AlignmentStream",
    "ParallelCollator",
    "ParallelDataError",
    "load_parallel",
    "mask_tokens",
    "parse_alignment",
]
