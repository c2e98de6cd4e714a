# Copyright 2025 The hf-xalign Authors.
# Licensed under the Apache License, Version 2.0.
"""Readers for parallel text.

Every reader returns a [`datasets.Dataset`] with the same five columns:

| column      | type                 | meaning                                                          |
|-------------|----------------------|------------------------------------------------------------------|
| `src`       | `str`                | source sentence                                                  |
| `tgt`       | `str`                | target sentence                                                  |
| `src_lang`  | `str`                | source language code, `""` if unknown                            |
| `tgt_lang`  | `str`                | target language code, `""` if unknown                            |
| `alignment` | `list[list[int]]`    | word links `[i, j]` between whitespace-split words of `src` (`i`) |
|             |                      | and `tgt` (`j`), 0-based; `[]` when not given                    |

Problems in the input raise [`ParallelDataError`] (a [`~hf_xalign.data.reading.DataFileError`]), whose
message always starts with the place: `"{path}:{line}: ..."` (1-based line) for files, `"dataset row {k}: ..."`
(0-based, so that `dataset[k]` shows it) for an in-memory dataset; its `path`, `line` and `row` attributes
hold the same.

Example:

```python
>>> from hf_xalign.data import load_parallel
>>> pairs = load_parallel("train.tsv", src_lang="en", tgt_lang="de")
>>> pairs = load_parallel(("train.en", "train.de"))  # languages taken from the suffixes
>>> pairs = load_parallel(["en-de.tsv", "en-fr.jsonl", ("train.en", "train.tr")])  # one dataset from three
>>> pairs[0]
{'src': 'Hello world', 'tgt': 'Hallo Welt', 'src_lang': 'en', 'tgt_lang': 'de', 'alignment': []}
```
"""

from __future__ import annotations

import numbers
import os
import random
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import datasets

from . import reading

__all__ = [
    "PARALLEL_COLUMNS",
    "PARALLEL_FEATURES",
    "ParallelDataError",
    "load_parallel",
    "drop_pairs_containing",
    "hold_out_pairs",
    "language_pair_counts",
    "parse_alignment",
]

PathLike = str | os.PathLike
ParallelSource = PathLike | tuple[PathLike, PathLike] | datasets.Dataset

PARALLEL_COLUMNS = ("src", "tgt", "src_lang", "tgt_lang", "alignment")

# `datasets.Sequence` (rather than `datasets.List`, added in datasets 4.0) keeps the
# `datasets>=3.0` pin honest; on datasets>=4 it builds the very same `List` features.
PARALLEL_FEATURES = datasets.Features(
    {
        "src": datasets.Value("string"),
        "tgt": datasets.Value("string"),
        "src_lang": datasets.Value("string"),
        "tgt_lang": datasets.Value("string"),
        "alignment": datasets.Sequence(datasets.Sequence(datasets.Value("int32"), length=2)),
    }
)

# Columns a TSV header may name; `src` and `tgt` are required among them.
_TSV_HEADER_NAMES = frozenset(PARALLEL_COLUMNS)
_REQUIRED_COLUMNS = ("src", "tgt")
# The fields of a TSV line without a header: the alignment may be left out.
_HEADERLESS_COLUMNS = ("src", "tgt", "alignment")

# One alignment link "i-j". The sign is captured so that "-1-2" gets the clearer
# "negative index" message instead of "malformed". ASCII digits only: `int()` would
# accept other scripts' digits, which no aligner writes.
_LINK_PATTERN = re.compile(r"(-?[0-9]+)-(-?[0-9]+)", re.ASCII)
# No sentence has a billion words: an index of more digits is out of range unread, and `int()`, which refuses
# more than 4,300 digits, never sees it.
_MAX_INDEX_DIGITS = 9


class ParallelDataError(reading.DataFileError):
    """Malformed parallel data.

    The message names the place and what was expected:
    `"{path}:{line}: {what is wrong} (expected {what})"` for files (1-based line numbers),
    `"dataset row {k}: ..."` for an in-memory [`datasets.Dataset`] (0-based row index);
    the attributes `path`, `line` and `row` hold the same (see [`~hf_xalign.data.reading.DataFileError`]).
    """


def parse_alignment(links: str | list, *, n_src: int, n_tgt: int, where: reading.Place | str) -> list[list[int]]:
    """Parses and checks word alignment links.

    Args:
        links (`str` or `list`):
            Either Pharaoh format, whitespace-separated `"i-j"` links such as `"0-0 1-2 2-1"`, or a list of
            `[i, j]` pairs. An empty string or list means no links.
        n_src (`int`):
            Number of whitespace-split words of the source sentence; every `i` must be below it.
        n_tgt (`int`):
            Number of whitespace-split words of the target sentence; every `j` must be below it.
        where ([`~hf_xalign.data.reading.Place`] or `str`):
            The place the links come from, such as `Place("train.tsv", line=12)` or `"dataset row 3"`; it
            starts every error message and is the error's `path`/`line`/`row`.

    Returns:
        `list[list[int]]`: the links as `[i, j]` pairs of Python ints, in input order.

    Raises:
        [`ParallelDataError`]: a link is not two integers, is negative, or points past the end of its sentence.

    Example:

    ```python
    >>> parse_alignment("0-0 1-2 2-1", n_src=3, n_tgt=3, where="train.tsv:1")
    [[0, 0], [1, 2], [2, 1]]
    ```
    """
    alignment = []
    if isinstance(links, str):
        for link in links.split():
            match = _LINK_PATTERN.fullmatch(link)
            if match is None:
                raise ParallelDataError(
                    where, f"malformed alignment link {link!r:.40}", "'i-j' with non-negative integers i and j"
                )
            digits = max(len(match[1].removeprefix("-")), len(match[2].removeprefix("-")))
            if digits > _MAX_INDEX_DIGITS:
                raise ParallelDataError(
                    where,
                    f"alignment link {link!r:.40} has an index of {digits} digits",
                    f"word indices below the sentence lengths ({n_src} source and {n_tgt} target words)",
                )
            alignment.append([int(match[1]), int(match[2])])
    elif isinstance(links, (list, tuple)):
        for link in links:
            if not (
                isinstance(link, (list, tuple)) and len(link) == 2 and _is_integer(link[0]) and _is_integer(link[1])
            ):
                raise ParallelDataError(
                    where, f"malformed alignment link {link!r}", "a pair [i, j] of non-negative integers"
                )
            alignment.append([int(link[0]), int(link[1])])
    else:
        raise ParallelDataError(
            where,
            f"alignment is a {type(links).__name__}",
            "a string of 'i-j' links or a list of [i, j] pairs",
        )

    # Range checks after parsing, on ints, so that both input forms share them.
    for src_index, tgt_index in alignment:
        if 0 <= src_index < n_src and 0 <= tgt_index < n_tgt:
            continue
        link = f"{src_index}-{tgt_index}"
        if src_index < 0 or tgt_index < 0:
            raise ParallelDataError(where, f"negative index in alignment link {link!r}", "non-negative word indices")
        if src_index >= n_src:
            raise ParallelDataError(
                where,
                f"alignment link {link!r} points to source word {src_index}, but the source has {n_src} words",
                f"a source index below {n_src}",
            )
        raise ParallelDataError(
            where,
            f"alignment link {link!r} points to target word {tgt_index}, but the target has {n_tgt} words",
            f"a target index below {n_tgt}",
        )
    return alignment


def _is_integer(value: Any) -> bool:
    # bool is an int subclass, but `[True, 0]` is a bug in the data, not link 1-0.
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


class _PairColumns:
    """The five column lists, filled record by record; every record is checked where it is read."""

    def __init__(self, src_lang: str | None, tgt_lang: str | None):
        self.default_src_lang = src_lang or ""
        self.default_tgt_lang = tgt_lang or ""
        self.columns: dict[str, list] = {name: [] for name in PARALLEL_COLUMNS}

    def add(self, place: reading.Place, record: dict[str, Any]) -> None:
        src = reading.check_text(record["src"], "src", place, ParallelDataError)
        tgt = reading.check_text(record["tgt"], "tgt", place, ParallelDataError)
        languages = [record.get("src_lang"), record.get("tgt_lang")]
        for name, lang in zip(("src_lang", "tgt_lang"), languages):
            if lang is not None and not isinstance(lang, str):
                raise ParallelDataError(
                    place, f"{name} is {reading.describe(lang)}", f"a language code string for {name}"
                )

        alignment = record.get("alignment")
        if alignment is None or (isinstance(alignment, (str, list, tuple)) and len(alignment) == 0):
            links = []
        else:
            links = parse_alignment(alignment, n_src=len(src.split()), n_tgt=len(tgt.split()), where=place)

        columns = self.columns
        columns["src"].append(src)
        columns["tgt"].append(tgt)
        # Codes in the data win; the reader's keyword arguments only fill the gaps.
        columns["src_lang"].append((languages[0] or "").strip() or self.default_src_lang)
        columns["tgt_lang"].append((languages[1] or "").strip() or self.default_tgt_lang)
        columns["alignment"].append(links)

    def to_dataset(self) -> datasets.Dataset:
        return reading.dataset_from_columns(self.columns, PARALLEL_FEATURES)


def _tsv_records(path: Path) -> Iterator[reading.Record]:
    lines = reading.read_lines(path, ParallelDataError)
    first = lines[0].split("\t") if lines else []
    # The first line is a header when every field is a column name: no sentence is "src".
    if first and all(field.strip() in _TSV_HEADER_NAMES for field in first):
        header = reading.check_header(first, _REQUIRED_COLUMNS, reading.Place(str(path), 1), ParallelDataError)
        return reading.tsv_records(path, lines, header, start=1, unit="pair", error=ParallelDataError)
    return reading.tsv_records(
        path, lines, _HEADERLESS_COLUMNS, start=0, optional=1, unit="pair", error=ParallelDataError
    )


def _jsonl_records(path: Path) -> Iterator[reading.Record]:
    return reading.jsonl_records(
        path, reading.read_lines(path, ParallelDataError), _REQUIRED_COLUMNS, unit="pair", error=ParallelDataError
    )


def _from_translation_column(dataset: datasets.Dataset) -> datasets.Dataset:
    """A dataset in the Hub's translation layout (a `translation` column of `{language: text}`, as in
    opus-100 or opus_books) with two languages, as `src`/`tgt` columns; others are returned as they are.

    The languages keep the order the `Translation` feature names them (opus-100's `de-en`: de → en).
    """
    feature = dataset.features.get("translation")
    if "src" in dataset.column_names or not isinstance(feature, datasets.Translation) or len(feature.languages) != 2:
        return dataset
    src_lang, tgt_lang = feature.languages
    rows = dataset["translation"]
    return datasets.Dataset.from_dict(
        {
            "src": [row[src_lang] for row in rows],
            "tgt": [row[tgt_lang] for row in rows],
            "src_lang": [src_lang] * len(rows),
            "tgt_lang": [tgt_lang] * len(rows),
        }
    )


def _dataset_records(dataset: datasets.Dataset, name: str) -> Iterator[reading.Record]:
    optional = ("src_lang", "tgt_lang", "alignment")
    return reading.dataset_records(
        _from_translation_column(dataset),
        _REQUIRED_COLUMNS,
        name=name,
        unit="pair",
        error=ParallelDataError,
        optional=optional,
    )


_FILE_READERS = {".tsv": _tsv_records, ".jsonl": _jsonl_records}
_ACCEPTS = (
    "a .tsv or .jsonl file, a tuple of two line-aligned text files like ('train.en', 'train.de'), "
    "a datasets.Dataset or hub:PATH[:CONFIG]:SPLIT"
)


def _text_pair_records(
    paths: tuple[PathLike, PathLike] | list[PathLike], src_lang: str | None, tgt_lang: str | None
) -> Iterator[reading.Record]:
    if len(paths) != 2:
        raise ValueError(
            f"got {len(paths)} paths; a plain-text source is a pair of line-aligned files like ('train.en', 'train.de')"
        )
    src_path, tgt_path = Path(paths[0]), Path(paths[1])
    src_lines = reading.read_lines(src_path, ParallelDataError)
    tgt_lines = reading.read_lines(tgt_path, ParallelDataError)
    if len(src_lines) != len(tgt_lines):
        (shorter, n_shorter), (longer, n_longer) = sorted(
            [(src_path, len(src_lines)), (tgt_path, len(tgt_lines))], key=lambda path_and_count: path_and_count[1]
        )
        raise ParallelDataError(
            reading.Place(str(longer), n_shorter + 1),
            f"line has no counterpart: {shorter} ends at line {n_shorter}, {longer} has {n_longer} lines",
            "line-aligned files with the same number of lines",
        )
    if not src_lines:
        raise reading.no_records_error(src_path, 1, "pair", ParallelDataError)
    # Moses naming, "train.en" -> "en"; languages passed to the reader win over the suffixes.
    languages = {
        "src_lang": src_lang if src_lang is not None else src_path.suffix.removeprefix("."),
        "tgt_lang": tgt_lang if tgt_lang is not None else tgt_path.suffix.removeprefix("."),
    }
    for number, (src, tgt) in enumerate(zip(src_lines, tgt_lines), start=1):
        # Each side is checked against its own file, so that an empty line is reported where it is.
        reading.check_text(src, "src", reading.Place(str(src_path), number), ParallelDataError)
        reading.check_text(tgt, "tgt", reading.Place(str(tgt_path), number), ParallelDataError)
        yield reading.Place(str(src_path), number), {"src": src, "tgt": tgt, **languages}


def load_parallel(
    source: ParallelSource | list[ParallelSource | list[PathLike]],
    *,
    src_lang: str | None = None,
    tgt_lang: str | None = None,
) -> datasets.Dataset:
    """Reads parallel text into a [`datasets.Dataset`] with columns `src`, `tgt`, `src_lang`, `tgt_lang`, `alignment`.

    Accepted sources:

    - a `.tsv` file: UTF-8, one pair per line, `src<TAB>tgt` or `src<TAB>tgt<TAB>alignment` (alignment as
      `"0-0 1-2 2-1"`). The first line is a header if all its fields are column names from `src`, `tgt`,
      `alignment`, `src_lang`, `tgt_lang`; the columns then follow the header. Fields are the raw text between tabs
      (no csv quoting).
    - a `.jsonl` file: one JSON object per line with keys `src`, `tgt` and optional `src_lang`, `tgt_lang`,
      `alignment` (an `"i-j ..."` string or a list of `[i, j]` pairs).
    - a **tuple** of two line-aligned plain-text files in Moses style, such as `("train.en", "train.de")`.
      The file suffixes give the languages unless `src_lang`/`tgt_lang` are passed.
    - a [`datasets.Dataset`] with `src` and `tgt` columns and optionally the other three, or in the Hub's
      translation layout: one `translation` column (a `datasets.Translation` of two languages, as opus-100).
    - `"hub:PATH[:CONFIG]:SPLIT"`: that split of a Hub dataset with those columns (needs a network or a cache).
    - a **list** of the above, read as one dataset in list order. Inside the list, a two-element list is a
      plain-text pair as a tuple is (YAML configs have no tuples): `[["train.en", "train.de"], "more.tsv"]`.

    So a tuple is always one pair of files and a list always several sources: `["a.en", "a.de"]` is two files
    of unsupported type, not a pair. Files are UTF-8, with or without a byte-order mark, with LF or CRLF line
    ends. Blank lines at the end of a file are ignored; a blank line before the end is an error.

    Args:
        source (`str`, `os.PathLike`, tuple of paths, [`datasets.Dataset`], or a list of those):
            Where the pairs come from, as listed above.
        src_lang (`str`, *optional*):
            Source language code for pairs whose data has none. Codes present in the data are kept.
        tgt_lang (`str`, *optional*):
            Target language code for pairs whose data has none. Codes present in the data are kept.

    Returns:
        [`datasets.Dataset`]: the pairs, in input order, with features [`PARALLEL_FEATURES`].

    Raises:
        [`ParallelDataError`]: (a `ValueError`) malformed input; the message starts with `"{path}:{line}:"` or
            `"{dataset} row {k}:"` and ends with what was expected.
        `ValueError`: a file of another type, or an empty list; the message lists what is accepted.
        `FileNotFoundError`: a file does not exist; the message names the path.
    """
    sources = source if isinstance(source, list) else [source]
    if not sources:
        raise ValueError(f"no source given (expected {_ACCEPTS}, or a list of them)")
    columns = _PairColumns(src_lang, tgt_lang)
    for item in sources:
        if isinstance(item, (tuple, list)):
            records = _text_pair_records(item, src_lang, tgt_lang)
        else:
            records = reading.records_of(item, _FILE_READERS, _dataset_records, accepts=_ACCEPTS)
        for place, record in records:
            columns.add(place, record)
    return columns.to_dataset()


def drop_pairs_containing(parallel: datasets.Dataset, texts: Iterable[str]) -> datasets.Dataset:
    """`parallel` without the pairs whose source or target is one of `texts`.

    Evaluation sentences must not reach the alignment stream (it would align the very test
    sentences). Texts are compared with all whitespace removed, so a treebank's words and the
    raw sentence match: `"Entrez un nom ."` and `"Entrez un nom."` are the same text here.
    """
    banned = {_without_whitespace(text) for text in texts}
    keep = [
        i
        for i, (src, tgt) in enumerate(zip(parallel["src"], parallel["tgt"]))
        if _without_whitespace(src) not in banned and _without_whitespace(tgt) not in banned
    ]
    return parallel.select(keep)


def _without_whitespace(text: str) -> str:
    return "".join(text.split())


def hold_out_pairs(
    parallel: datasets.Dataset, per_language_pair: int, seed: int
) -> tuple[datasets.Dataset, datasets.Dataset]:
    """Split `parallel` into `(kept, held_out)`: up to `per_language_pair` random pairs of each language
    pair are held out (never more than half of them), for measuring alignment on pairs that
    alignment training never saw. Seeded, so a rerun holds out the same pairs."""
    if per_language_pair < 2:
        raise ValueError(f"per_language_pair must be >= 2 (retrieval needs candidates), got {per_language_pair}.")
    groups: dict[tuple[str, str], list[int]] = {}
    for index, key in enumerate(zip(parallel["src_lang"], parallel["tgt_lang"])):
        groups.setdefault(key, []).append(index)
    rng = random.Random(seed)
    held_out = []
    for indices in groups.values():
        count = min(per_language_pair, len(indices) // 2)
        if count >= 2:
            held_out += rng.sample(indices, count)
    held = set(held_out)
    kept = [index for index in range(len(parallel)) if index not in held]
    return parallel.select(kept), parallel.select(sorted(held_out))


def language_pair_counts(parallel: datasets.Dataset) -> dict[str, int]:
    """`{"en-fr": 329, ...}`: pairs per language pair, sorted (`?` where the data names no language)."""
    counts: dict[str, int] = {}
    # A `datasets.Dataset` given to the trainer directly may have no language columns at all.
    sources, targets = (
        parallel[column] if column in parallel.column_names else [None] * len(parallel)
        for column in ("src_lang", "tgt_lang")
    )
    for source, target in zip(sources, targets):
        key = f"{source or '?'}-{target or '?'}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))
