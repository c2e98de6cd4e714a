"""Data: parallel text for alignment (readers, the collator, the seeded alignment stream) and classification examples.

Every reader raises a subclass of [`DataFileError`] (from the shared reading core, `hf_xalign.data.reading`).
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "classification": ["ClassificationDataError", "load_classification", "tokenize_classification"],
    "collator": ["ParallelCollator", "mask_tokens"],
    "parallel": [
        "PARALLEL_COLUMNS",
        "PARALLEL_FEATURES",
        "ParallelDataError",
        "drop_pairs_containing",
        "hold_out_pairs",
        "load_parallel",
        "parse_alignment",
    ],
    "reading": ["DataFileError"],
    "stream": ["AlignmentStream"],
}

__all__ = [
    "PARALLEL_COLUMNS",
    "PARALLEL_FEATURES",
    "AlignmentStream",
    "ClassificationDataError",
    "DataFileError",
    "ParallelCollator",
    "ParallelDataError",
    "drop_pairs_containing",
    "hold_out_pairs",
    "load_classification",
    "load_parallel",
    "mask_tokens",
    "parse_alignment",
    "tokenize_classification",
]

if TYPE_CHECKING:
    from .classification import ClassificationDataError, load_classification, tokenize_classification
    from .collator import ParallelCollator, mask_tokens
    from .parallel import (
        PARALLEL_COLUMNS,
        PARALLEL_FEATURES,
        ParallelDataError,
        drop_pairs_containing,
        hold_out_pairs,
        load_parallel,
        parse_alignment,
    )
    from .reading import DataFileError
    from .stream import AlignmentStream

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
