"""`hub:PATH[:CONFIG]:SPLIT`: a split (or a slice of one, `train[:1000]`) of a Hub dataset, named inside a config like a file path."""

from __future__ import annotations

import datasets

HUB_PREFIX = "hub:"


def is_hub_spec(source: object) -> bool:
    return isinstance(source, str) and source.startswith(HUB_PREFIX)


def load_hub_split(spec: str) -> datasets.Dataset:
    """`hub:facebook/xnli:fr:test` or `hub:PATH:SPLIT` through `datasets.load_dataset` (needs a network or a cache).

    The split may take a slice in `datasets`' syntax, colons included: `hub:Helsinki-NLP/opus-100:de-en:train[:50000]`.
    """
    rest = spec[len(HUB_PREFIX) :]
    head, bracket, split_slice = rest.partition("[")  # a slice's own colons are not separators
    parts = head.split(":")
    if len(parts) not in (2, 3) or not all(parts) or (bracket and not split_slice.endswith("]")):
        raise ValueError(f"{spec!r}: expected hub:PATH[:CONFIG]:SPLIT, e.g. hub:universal_dependencies:en_ewt:train")
    path, config, split = (parts[0], None, parts[1]) if len(parts) == 2 else parts
    return datasets.load_dataset(path, config, split=split + bracket + split_slice)
