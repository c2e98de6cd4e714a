# Copyright 2025 The hf-xalign Authors.
# Licensed under the Apache License, Version 2.0.
"""The reading core every input reader shares: files to lines and records, one error type, rows to a dataset.

The parallel-text, classification and CoNLL-U readers differ in what a record means; how a file is opened and
decoded, how TSV, CSV and JSONL lines become records, how a dataset's rows are read, how a bad value is shown
and how collected rows become a [`datasets.Dataset`] is done here, once.

Every problem is a [`DataFileError`] (each reader raises its own subclass) whose message starts with the
[`Place`]: `"{path}:{line}: {problem} (expected {what})"` with a 1-based line for files,
`"{name} row {k}: ..."` with a 0-based row (so that `dataset[k]` shows it) for datasets.

Why not `datasets.load_dataset("json" | "csv")`: its errors carry Arrow block offsets or pandas row numbers,
not file lines; pandas skips blank lines and applies quoting to TSV, and Arrow's JSON reader refuses a column
that is a string in one line and a list in another (both alignment forms). The rows then could not be traced
back to file:line, which the readers promise, so files are read line by line here.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import datasets
import pyarrow as pa

from . import hub

__all__ = [
    "DataFileError",
    "Place",
    "Record",
    "check_header",
    "check_text",
    "csv_records",
    "dataset_from_columns",
    "dataset_records",
    "describe",
    "jsonl_records",
    "no_records_error",
    "read_lines",
    "records_of",
    "tsv_records",
]


class Place(NamedTuple):
    """Where a record comes from: a line of a file, a row of a dataset, or a whole source.

    A `NamedTuple` because the readers make one per row: it is as cheap as the tuple it is.

    Args:
        source (`str`): the file path, or the dataset's name (`"dataset"`, `"hub:facebook/xnli:fr:test"`).
        line (`int`, *optional*): 1-based line number in the file.
        row (`int`, *optional*): 0-based row index in the dataset.
    """

    source: str
    line: int | None = None
    row: int | None = None

    def __str__(self) -> str:
        if self.line is not None:
            return f"{self.source}:{self.line}"
        if self.row is not None:
            return f"{self.source} row {self.row}"
        return self.source


Record = tuple[Place, dict[str, Any]]


class DataFileError(ValueError):
    """Malformed input data: names the place and what was expected.

    The message is `"{place}: {problem} (expected {expected})"`, such as
    `"train.tsv:12: empty tgt text (expected a non-empty tgt in every row)"`.

    Args:
        place ([`Place`] or `str`): where the problem is; a `str` is shown as given.
        problem (`str`): what is wrong.
        expected (`str`): what was expected instead.

    Attributes:
        path (`str`): the file (or the dataset's name, or the `str` place as given).
        line (`int` or `None`): the 1-based line of the file, `None` when the place is not a line.
        row (`int` or `None`): the 0-based row of a dataset, `None` when the place is not a row.
        place ([`Place`]), problem (`str`), expected (`str`): the arguments, as given.
    """

    def __init__(self, place: Place | str, problem: str, expected: str):
        self.place = place if isinstance(place, Place) else Place(place)
        self.problem, self.expected = problem, expected
        self.path, self.line, self.row = self.place
        super().__init__(f"{self.place}: {problem} (expected {expected})")

    def __reduce__(self):
        # The default rebuilds from `args` (the message alone), which this __init__ does not take; errors must
        # survive pickling to cross process boundaries (dataloader workers, `map(num_proc=...)`).
        return type(self), (self.place, self.problem, self.expected)


def describe(value: Any) -> str:
    """A value as error messages show it: `"null"`, or its type and a repr cut to 40 characters."""
    if value is None:
        return "null"
    return f"of type {type(value).__name__} ({value!r:.40})"


def check_text(value: Any, column: str, place: Place, error: type[DataFileError]) -> str:
    """`value` if it is a string with a non-blank character; else `error` naming `column` and `place`."""
    if not isinstance(value, str):
        raise error(place, f"{column} is {describe(value)}", f"a non-empty string in {column}")
    if not value.strip():
        raise error(place, f"empty {column} text", f"a non-empty {column} in every row")
    return value


def read_lines(path: Path, error: type[DataFileError] = DataFileError) -> list[str]:
    """The lines of a UTF-8 file, without line ends (LF or CRLF), a leading byte-order mark or trailing blank lines.

    Raises:
        `error`: bytes that are not UTF-8; the message names the line and shows the bytes.
        `FileNotFoundError`: the file does not exist.
    """
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as decode_error:
        line = data.count(b"\n", 0, decode_error.start) + 1
        bad_bytes = data[decode_error.start : decode_error.end]
        raise error(Place(str(path), line), f"bytes {bad_bytes!r} are not UTF-8", "UTF-8 text") from None
    # A byte-order mark is how some Windows editors say "UTF-8"; it is not part of the first field.
    # `str.splitlines` would also break on U+2028, U+0085, form feeds..., which may sit inside a sentence
    # and would shift line numbers (against the other file of a plain-text pair, too).
    lines = text.removeprefix("\ufeff").split("\n")
    if "\r" in text:  # LF files, nearly all of them, skip the per-line pass
        lines = [line.removesuffix("\r") for line in lines]
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def check_header(fields: Sequence[str], required: Sequence[str], place: Place, error: type[DataFileError]) -> list[str]:
    """The column names of a header line, stripped; each named once and the `required` ones among them."""
    names = [field.strip() for field in fields]
    # Counted once: `names.count` per name took minutes on a line of 140,000 tabs.
    repeated = sorted(name for name, count in Counter(names).items() if count > 1)
    if repeated:
        raise error(place, f"header repeats column {', '.join(map(repr, repeated))}", "each column named once")
    missing = [name for name in required if name not in names]
    if missing:
        raise error(
            place,
            f"header {names} lacks column {', '.join(map(repr, missing))}",
            f"a first line naming the columns {', '.join(required)}",
        )
    return names


def tsv_records(
    path: Path,
    lines: list[str],
    columns: Sequence[str],
    *,
    start: int,
    unit: str,
    error: type[DataFileError],
    optional: int = 0,
) -> Iterator[Record]:
    """Records of the tab-separated `lines[start:]`, each a dict of `columns` to raw field text.

    Fields are the text between tabs, without csv quoting: quotes in sentences stay as they are.

    Args:
        path (`Path`): the file the lines come from, for the [`Place`]s.
        lines (`list[str]`): the file's lines from [`read_lines`].
        columns (`Sequence[str]`): the names of the fields, in order.
        start (`int`): index of the first data line; `1` means line 1 is a header that named `columns`.
        unit (`str`): what one line holds, for messages (`"pair"`, `"example"`).
        error (`type[DataFileError]`): the reader's error type.
        optional (`int`, *optional*, defaults to `0`): how many of the last columns a line may leave out.

    Raises:
        `error`: a blank line, a line with another number of fields, or no data line at all.
    """
    if len(lines) <= start:
        raise no_records_error(path, start + 1, unit, error)
    required = len(columns) - optional
    counts = f"{required} or {len(columns)}" if optional else str(required)
    names = ", ".join(columns[:required]) + "".join(f"[, {name}]" for name in columns[required:])
    expected = f"{counts}{' as in the header' if start else ''}: {names}"
    for index in range(start, len(lines)):
        place = Place(str(path), index + 1)
        line = lines[index]
        if not line.strip():
            raise error(place, "blank line", f"one {unit} per line")
        fields = line.split("\t")
        if not required <= len(fields) <= len(columns):
            raise error(place, f"{len(fields)} tab-separated fields", expected)
        yield place, dict(zip(columns, fields))


def csv_records(
    path: Path, lines: list[str], required: Sequence[str], *, unit: str, error: type[DataFileError]
) -> Iterator[Record]:
    """Records of RFC 4180 CSV `lines` whose first line names the columns (the `required` ones among them).

    A record's [`Place`] is the line it starts on: a quoted field may span lines.
    """
    reader = csv.reader(io.StringIO("\n".join(lines)))
    first = 1  # the line the row being read starts on
    try:
        header = check_header(next(reader, []), required, Place(str(path), 1), error)
        expected = f"{len(header)} as in the header: {', '.join(header)}"
        first = data_start = reader.line_num + 1
        for row in reader:
            place = Place(str(path), first)
            if not row:
                raise error(place, "blank line", f"one {unit} per line")
            if len(row) != len(header):
                raise error(place, f"{len(row)} comma-separated fields", expected)
            yield place, dict(zip(header, row))
            first = reader.line_num + 1
    except csv.Error as csv_error:
        raise error(Place(str(path), first), f"malformed CSV: {csv_error}", "RFC 4180 CSV with a header line") from None
    if first == data_start:
        raise no_records_error(path, first, unit, error)


def jsonl_records(
    path: Path, lines: list[str], required: Sequence[str], *, unit: str, error: type[DataFileError]
) -> Iterator[Record]:
    """Records of JSON Lines: one object per line, with at least the `required` keys.

    Raises:
        `error`: a line that is not a JSON object, lacks a required key, nests deeper or holds a longer integer
            than Python's parser takes, or escapes a lone surrogate (`"\\ud800"`) in a string value.
    """
    if not lines:
        raise no_records_error(path, 1, unit, error)
    keys = _and_list([repr(key) for key in required])
    for index, line in enumerate(lines):
        place = Place(str(path), index + 1)
        try:
            record = json.loads(line)
        except json.JSONDecodeError as decode_error:
            problem = (
                f"invalid JSON: {decode_error.msg} at column {decode_error.colno}" if line.strip() else "blank line"
            )
            raise error(place, problem, "one JSON object per line") from None
        except (ValueError, RecursionError) as limit_error:
            # Valid JSON past the parser's limits: an integer of more than `sys.get_int_max_str_digits()` digits
            # (ValueError), arrays or objects nested deeper than the recursion limit (RecursionError).
            problem = f"JSON beyond the parser's limits: {limit_error}"
            raise error(place, problem, "one JSON object per line, nested a few levels at most") from None
        if not isinstance(record, dict):
            raise error(place, f"JSON {type(record).__name__} is not an object", f"an object with keys {keys}")
        missing = [key for key in required if key not in record]
        if missing:
            raise error(place, f"missing key {', '.join(map(repr, missing))}", f"keys {keys}")
        if "\\u" in line:  # only an escape makes a lone surrogate; raw ones are not UTF-8 and failed decoding
            _check_encodable(record, place, error)
        yield place, record


def _check_encodable(record: dict[str, Any], place: Place, error: type[DataFileError]) -> None:
    """Raise `error` for a string value with a lone surrogate: json accepts the escape, UTF-8 and Arrow do not."""
    for key, value in record.items():
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as encode_error:
                character = value[encode_error.start]
                raise error(
                    place,
                    f"the string of key {key!r} escapes a lone surrogate ({character!r})",
                    "surrogate escapes only in pairs, as \\ud83d\\ude00 for one emoji",
                ) from None


def no_records_error(path: Path, line: int, unit: str, error: type[DataFileError]) -> DataFileError:
    """The error for a file without records; `line` is where the first was expected (1, or after the header)."""
    return error(Place(str(path), line), f"file has no {unit}s", f"at least one {unit}")


def _and_list(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def dataset_records(
    dataset: datasets.Dataset,
    required: Sequence[str],
    *,
    name: str,
    unit: str,
    error: type[DataFileError],
    optional: Sequence[str] = (),
) -> Iterator[Record]:
    """Records of a [`datasets.Dataset`]: its `required` columns and those of `optional` it has.

    Raises:
        `error`: a required column is missing, or the dataset has no rows.
    """
    missing = [column for column in required if column not in dataset.column_names]
    if missing:
        raise error(
            Place(name),
            f"missing column {', '.join(map(repr, missing))}",
            f"columns {', '.join(required)}; found {', '.join(dataset.column_names) or 'none'}",
        )
    if len(dataset) == 0:
        raise error(Place(name), "no rows", f"at least one {unit}")
    columns = [*required, *(column for column in optional if column in dataset.column_names)]
    # Whole columns, one Arrow read each: row by row, `dataset[k]` goes through Arrow for every row.
    values = {column: list(dataset[column]) for column in columns}
    for row in range(len(dataset)):
        yield Place(name, row=row), {column: values[column][row] for column in columns}


def records_of(
    source: Any,
    file_readers: Mapping[str, Callable[[Path], Iterator[Record]]],
    read_dataset: Callable[[datasets.Dataset, str], Iterator[Record]],
    *,
    accepts: str,
) -> Iterator[Record]:
    """The records of one source: a [`datasets.Dataset`], a `hub:PATH[:CONFIG]:SPLIT` spec or a file.

    Args:
        source: the source.
        file_readers (`Mapping[str, Callable]`): the reader of each file suffix the caller accepts (`".tsv"`).
        read_dataset (`Callable`): reads a dataset's records, given the dataset and its name for messages.
        accepts (`str`): every kind of source the caller accepts, for the messages of the errors below.

    Raises:
        `ValueError`: a file suffix without a reader.
        `FileNotFoundError`: the file does not exist.
        `TypeError`: a source of another type.
    """
    if isinstance(source, datasets.Dataset):
        return read_dataset(source, "dataset")
    if hub.is_hub_spec(source):
        return read_dataset(hub.load_hub_split(source), source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        reader = file_readers.get(path.suffix.lower())
        if reader is None:
            raise ValueError(f"{path}: unsupported file type {path.suffix!r} (expected {accepts})")
        if not path.is_file():
            raise FileNotFoundError(f"No such file: {path}")
        return reader(path)
    raise TypeError(f"source is a {type(source).__name__} (expected {accepts})")


def dataset_from_columns(columns: Mapping[str, list], features: datasets.Features) -> datasets.Dataset:
    """A [`datasets.Dataset`] of column lists already in `features`' storage form (class ids, not names).

    Arrow arrays rather than Python lists: `from_dict` then casts whole columns instead of encoding every value
    through `Features.encode_column`, about 10x faster at 10^5 rows.
    """
    schema = features.arrow_schema
    arrays = {name: pa.array(values, type=schema.field(name).type) for name, values in columns.items()}
    return datasets.Dataset.from_dict(arrays, features=features)
