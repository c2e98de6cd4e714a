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

Problems in the input raise [`ParallelDataError`], whose message always starts with the place:
`"{path}:{line}: ..."` (1-based line) for files, `"dataset row {k}: ..."` (0-based, so that
`dataset[k]` shows it) for an in-memory dataset.

Example:

```python
>>> from hf_xalign.data import load_parallel
>>> pairs = load_parallel("train.tsv", src_lang="en", tgt_lang="de")
>>> pairs = load_parallel(("train.en", "train.de"))  # languages taken from the suffixes
>>> pairs[0]
{'src': 'Hello world', 'tgt': 'Hallo Welt', 'src_lang': 'en', 'tgt_lang': 'de', 'alignment': []}
```
"""

from __future__ import annotations

import json
import numbers
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa

__all__ = [
    "PARALLEL_COLUMNS",
    "PARALLEL_FEATURES",
    "ParallelDataError",
    "load_parallel",
    "drop_pairs_containing",
    "parse_alignment",
]

PathLike = str | os.PathLike

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

# One alignment link "i-j". The sign is captured so that "-1-2" gets the clearer
# "negative index" message instead of "malformed". ASCII digits only: `int()` would
# accept other scripts' digits, which no aligner writes.
_LINK_PATTERN = re.compile(r"(-?[0-9]+)-(-?[0-9]+)", re.ASCII)


class ParallelDataError(ValueError):
    """Malformed parallel data.

    The message names the place and what was expected:
    `"{path}:{line}: {what is wrong} (expected {what})"` for files (1-based line numbers),
    `"dataset row {k}: ..."` for an in-memory [`datasets.Dataset`] (0-based row index).
    """


def _error(where: str, problem: str, expected: str) -> ParallelDataError:
    return ParallelDataError(f"{where}: {problem} (expected {expected})")


def parse_alignment(links: str | list, *, n_src: int, n_tgt: int, where: str) -> list[list[int]]:
    """Parses and checks word alignment links.

    Args:
        links (`str` or `list`):
            Either Pharaoh format, whitespace-separated `"i-j"` links such as `"0-0 1-2 2-1"`, or a list of
            `[i, j]` pairs. An empty string or list means no links.
        n_src (`int`):
            Number of whitespace-split words of the source sentence; every `i` must be below it.
        n_tgt (`int`):
            Number of whitespace-split words of the target sentence; every `j` must be below it.
        where (`str`):
            The place the links come from, such as `"train.tsv:12"` or `"dataset row 3"`; it starts every error
            message.

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
                raise _error(where, f"malformed alignment link {link!r}", "'i-j' with non-negative integers i and j")
            alignment.append([int(match[1]), int(match[2])])
    elif isinstance(links, (list, tuple)):
        for link in links:
            if not (
                isinstance(link, (list, tuple)) and len(link) == 2 and _is_integer(link[0]) and _is_integer(link[1])
            ):
                raise _error(where, f"malformed alignment link {link!r}", "a pair [i, j] of non-negative integers")
            alignment.append([int(link[0]), int(link[1])])
    else:
        raise _error(
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
            raise _error(where, f"negative index in alignment link {link!r}", "non-negative word indices")
        if src_index >= n_src:
            raise _error(
                where,
                f"alignment link {link!r} points to source word {src_index}, but the source has {n_src} words",
                f"a source index below {n_src}",
            )
        raise _error(
            where,
            f"alignment link {link!r} points to target word {tgt_index}, but the target has {n_tgt} words",
            f"a target index below {n_tgt}",
        )
    return alignment


def _is_integer(value: Any) -> bool:
    # bool is an int subclass, but `[True, 0]` is a bug in the data, not link 1-0.
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


class _PairColumns:
    """Column lists that every reader fills row by row, checked the same way."""

    def __init__(self, src_lang: str | None, tgt_lang: str | None):
        self.default_src_lang = src_lang or ""
        self.default_tgt_lang = tgt_lang or ""
        self.columns: dict[str, list] = {name: [] for name in PARALLEL_COLUMNS}

    def add(
        self,
        where: str,
        src: Any,
        tgt: Any,
        src_lang: Any = None,
        tgt_lang: Any = None,
        alignment: Any = None,
    ) -> None:
        for name, text in (("src", src), ("tgt", tgt)):
            if not isinstance(text, str):
                raise _error(where, f"{name} is {_describe(text)}", f"a non-empty string for {name}")
            if not text.strip():
                raise _error(where, f"empty {name} text", f"a non-empty {name} sentence in every pair")
        for name, lang in (("src_lang", src_lang), ("tgt_lang", tgt_lang)):
            if lang is not None and not isinstance(lang, str):
                raise _error(where, f"{name} is {_describe(lang)}", f"a language code string for {name}")

        if alignment is None or (isinstance(alignment, (str, list, tuple)) and len(alignment) == 0):
            links = []
        else:
            links = parse_alignment(alignment, n_src=len(src.split()), n_tgt=len(tgt.split()), where=where)

        columns = self.columns
        columns["src"].append(src)
        columns["tgt"].append(tgt)
        # Codes in the data win; the reader's keyword arguments only fill the gaps.
        columns["src_lang"].append((src_lang or "").strip() or self.default_src_lang)
        columns["tgt_lang"].append((tgt_lang or "").strip() or self.default_tgt_lang)
        columns["alignment"].append(links)

    def __len__(self) -> int:
        return len(self.columns["src"])

    def to_dataset(self) -> datasets.Dataset:
        # Arrow arrays rather than Python lists: from_dict then casts whole columns instead of
        # encoding every value through `Features.encode_column`, about 10x faster at 10^5 rows.
        arrow_schema = PARALLEL_FEATURES.arrow_schema
        arrow_columns = {
            name: pa.array(values, type=arrow_schema.field(name).type) for name, values in self.columns.items()
        }
        return datasets.Dataset.from_dict(arrow_columns, features=PARALLEL_FEATURES)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    return f"of type {type(value).__name__} ({value!r:.40})"


def _read_lines(path: Path) -> list[str]:
    """Returns the lines of a UTF-8 file, without line ends and without trailing blank lines."""
    raw_bytes = path.read_bytes()  # raises FileNotFoundError naming the path
    try:
        text = raw_bytes.decode("utf-8")
    except UnicodeDecodeError as decode_error:
        line_number = raw_bytes.count(b"\n", 0, decode_error.start) + 1
        bad_bytes = raw_bytes[decode_error.start : decode_error.end]
        raise _error(f"{path}:{line_number}", f"undecodable bytes {bad_bytes!r}", "UTF-8 text") from None
    # A byte-order mark is how some Windows editors say "UTF-8"; it is not part of the first field.
    text = text.removeprefix("\ufeff")
    # `str.splitlines` would also break on U+2028, U+0085, form feeds..., which may sit inside a
    # sentence and would shift line numbers against the other file of a plain-text pair.
    lines = text.split("\n")
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _no_pairs_error(path: Path, line_number: int) -> ParallelDataError:
    return _error(f"{path}:{line_number}", "file has no pairs", "at least one sentence pair")


def _parse_tsv_header(fields: list[str], where: str) -> list[str] | None:
    """Returns the column names if `fields` is a header line, else `None`."""
    names = [field.strip() for field in fields]
    if not all(name in _TSV_HEADER_NAMES for name in names):
        return None
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise _error(where, f"header repeats column {', '.join(duplicates)}", "each column named once")
    missing = [name for name in _REQUIRED_COLUMNS if name not in names]
    if missing:
        raise _error(where, f"header lacks column {', '.join(missing)}", "a header naming at least src and tgt")
    return names


def _read_tsv(path: Path, columns: _PairColumns) -> None:
    lines = _read_lines(path)
    if not lines:
        raise _no_pairs_error(path, 1)

    header = _parse_tsv_header(lines[0].split("\t"), f"{path}:1")
    first_data_index = 0 if header is None else 1
    if header is None:
        expected_columns = "2 or 3 tab-separated fields: src, tgt[, alignment]"
    else:
        expected_columns = f"{len(header)} tab-separated fields as in the header: {', '.join(header)}"

    for line_index in range(first_data_index, len(lines)):
        where = f"{path}:{line_index + 1}"
        line = lines[line_index]
        if not line.strip():
            raise _error(where, "blank line (empty pair)", "one sentence pair per line")
        # Raw text between tabs: no csv quoting, so quotes in sentences stay as they are.
        fields = line.split("\t")
        if header is None:
            if len(fields) not in (2, 3):
                raise _error(where, f"found {len(fields)} tab-separated fields", expected_columns)
            columns.add(where, fields[0], fields[1], alignment=fields[2] if len(fields) == 3 else None)
        else:
            if len(fields) != len(header):
                raise _error(where, f"found {len(fields)} tab-separated fields", expected_columns)
            row = dict(zip(header, fields, strict=True))
            columns.add(
                where,
                row["src"],
                row["tgt"],
                src_lang=row.get("src_lang"),
                tgt_lang=row.get("tgt_lang"),
                alignment=row.get("alignment"),
            )

    if len(columns) == 0:
        raise _no_pairs_error(path, first_data_index + 1)


def _read_jsonl(path: Path, columns: _PairColumns) -> None:
    lines = _read_lines(path)
    for line_index, line in enumerate(lines):
        where = f"{path}:{line_index + 1}"
        if not line.strip():
            raise _error(where, "blank line (empty pair)", "one JSON object per line")
        try:
            record = json.loads(line)
        except json.JSONDecodeError as decode_error:
            raise _error(
                where, f"invalid JSON: {decode_error.msg} at column {decode_error.colno}", "a JSON object"
            ) from None
        if not isinstance(record, dict):
            raise _error(
                where, f"JSON {type(record).__name__} is not an object", 'an object like {"src": ..., "tgt": ...}'
            )
        missing = [key for key in _REQUIRED_COLUMNS if key not in record]
        if missing:
            raise _error(where, f"missing key {', '.join(repr(key) for key in missing)}", "keys 'src' and 'tgt'")
        columns.add(
            where,
            record["src"],
            record["tgt"],
            src_lang=record.get("src_lang"),
            tgt_lang=record.get("tgt_lang"),
            alignment=record.get("alignment"),
        )
    if len(columns) == 0:
        raise _no_pairs_error(path, 1)


def _read_text_pair(src_path: Path, tgt_path: Path, columns: _PairColumns) -> None:
    src_lines = _read_lines(src_path)
    tgt_lines = _read_lines(tgt_path)
    if len(src_lines) != len(tgt_lines):
        (shorter, n_shorter), (longer, n_longer) = sorted(
            [(src_path, len(src_lines)), (tgt_path, len(tgt_lines))], key=lambda path_and_count: path_and_count[1]
        )
        raise _error(
            f"{longer}:{n_shorter + 1}",
            f"line has no counterpart: {shorter} ends at line {n_shorter}, {longer} has {n_longer} lines",
            "line-aligned files with the same number of lines",
        )
    if not src_lines:
        raise _no_pairs_error(src_path, 1)
    for line_index, (src, tgt) in enumerate(zip(src_lines, tgt_lines, strict=True)):
        for path, text in ((src_path, src), (tgt_path, tgt)):
            if not text.strip():
                raise _error(f"{path}:{line_index + 1}", "empty line (empty pair)", "a sentence on every line")
        columns.add(f"{src_path}:{line_index + 1}", src, tgt)


def _read_dataset(dataset: datasets.Dataset, columns: _PairColumns) -> None:
    missing = [name for name in _REQUIRED_COLUMNS if name not in dataset.column_names]
    if missing:
        raise ParallelDataError(
            f"dataset: missing column {', '.join(missing)} "
            f"(expected columns src and tgt; found {', '.join(dataset.column_names) or 'none'})"
        )
    if len(dataset) == 0:
        raise ParallelDataError("dataset: no rows (expected at least one sentence pair)")
    # Whole columns at once: row-by-row `dataset[k]` goes through Arrow for every row.
    n_rows = len(dataset)
    column_values = {
        name: (list(dataset[name]) if name in dataset.column_names else [None] * n_rows) for name in PARALLEL_COLUMNS
    }
    for row_index in range(n_rows):
        columns.add(
            f"dataset row {row_index}",
            column_values["src"][row_index],
            column_values["tgt"][row_index],
            src_lang=column_values["src_lang"][row_index],
            tgt_lang=column_values["tgt_lang"][row_index],
            alignment=column_values["alignment"][row_index],
        )


def _language_from_suffix(path: Path) -> str:
    # Moses naming: "train.en" -> "en".
    return path.suffix.removeprefix(".")


def load_parallel(
    source: PathLike | tuple[PathLike, PathLike] | list[PathLike] | datasets.Dataset,
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
    - a pair (tuple or list) of line-aligned plain-text files in Moses style, such as `("train.en", "train.de")`.
      The file suffixes give the languages unless `src_lang`/`tgt_lang` are passed.
    - a [`datasets.Dataset`] with `src` and `tgt` columns and optionally the other three.

    Blank lines at the end of a file are ignored; a blank line before the end is an empty pair and an error.

    Args:
        source (`str`, `os.PathLike`, pair of paths, or [`datasets.Dataset`]):
            Where the pairs come from, as listed above.
        src_lang (`str`, *optional*):
            Source language code for pairs whose data has none. Codes present in the data are kept.
        tgt_lang (`str`, *optional*):
            Target language code for pairs whose data has none. Codes present in the data are kept.

    Returns:
        [`datasets.Dataset`]: the pairs, in input order, with features [`PARALLEL_FEATURES`].

    Raises:
        [`ParallelDataError`]: (a `ValueError`) malformed input; the message starts with `"{path}:{line}:"` or
            `"dataset row {k}:"` and ends with what was expected.
        `FileNotFoundError`: a file does not exist; the message names the path.
    """
    if isinstance(source, datasets.Dataset):
        columns = _PairColumns(src_lang, tgt_lang)
        _read_dataset(source, columns)
        return columns.to_dataset()

    if isinstance(source, (tuple, list)):
        if len(source) != 2:
            raise ValueError(
                f"got {len(source)} paths; a plain-text source is a pair of line-aligned files like "
                "('train.en', 'train.de')"
            )
        src_path, tgt_path = Path(source[0]), Path(source[1])
        columns = _PairColumns(
            src_lang if src_lang is not None else _language_from_suffix(src_path),
            tgt_lang if tgt_lang is not None else _language_from_suffix(tgt_path),
        )
        _read_text_pair(src_path, tgt_path, columns)
        return columns.to_dataset()

    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        columns = _PairColumns(src_lang, tgt_lang)
        suffix = path.suffix.lower()
        if suffix == ".tsv":
            _read_tsv(path, columns)
        elif suffix == ".jsonl":
            _read_jsonl(path, columns)
        else:
            raise ValueError(
                f"{path}: unsupported file type {path.suffix!r} (expected a .tsv or .jsonl file, or a pair of "
                "line-aligned plain-text files)"
            )
        return columns.to_dataset()

    raise TypeError(
        f"source is a {type(source).__name__}; expected a .tsv/.jsonl path, a pair of paths, or a datasets.Dataset"
    )


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
