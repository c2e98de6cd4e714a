# Copyright 2025 The hf-xalign Authors.
# Licensed under the Apache License, Version 2.0.
"""Data readers for cross-lingual alignment."""

from .parallel import PARALLEL_COLUMNS, PARALLEL_FEATURES, ParallelDataError, load_parallel, parse_alignment


__all__ = [
    "PARALLEL_COLUMNS",
    "PARALLEL_FEATURES",
    "ParallelDataError",
    "load_parallel",
    "parse_alignment",
]
