# Copyright 2025 The hf-xalign Authors.
# Licensed under the Apache License, Version 2.0.
"""Sentence classification data, single sentences and sentence pairs (XNLI, PAWS-X, SIB-200 style).

[`load_classification`] reads one language's examples from TSV, CSV or JSONL files, from a
[`datasets.Dataset`], or from the Hub (`"hub:facebook/xnli:fr:test"`, where a network exists), and returns a
[`datasets.Dataset`] with normalised columns:

| form   | columns                                   | layouts that give it                 |
|--------|-------------------------------------------|--------------------------------------|
| pair   | `premise`, `hypothesis`, `label`, `lang`  | `xnli`, `paws-x`                     |
| single | `text`, `label`, `lang`                   | `text`, `sib-200`                    |

`label` is a [`datasets.ClassLabel`]: the label set is fixed across languages. Pass it (`label_names=`), or let
the training data give it and pass `train.features["label"].names` for every evaluation set; a label outside
the set is then an error, not a new class.

Which source columns hold what is the *layout* ([`LAYOUTS`], or your own [`ColumnLayout`]):

| layout    | first text  | second text  | label      | like                                 |
|-----------|-------------|--------------|------------|--------------------------------------|
| `xnli`    | `premise`   | `hypothesis` | `label`    | facebook/xnli                        |
| `paws-x`  | `sentence1` | `sentence2`  | `label`    | google-research-datasets/paws-x      |
| `text`    | `text`      |              | `label`    | recipes/data/django/components       |
| `sib-200` | `text`      |              | `category` | Davlan/sib200 (`index_id` ignored)   |

Problems raise [`ClassificationDataError`] (a [`~hf_xalign.data.reading.DataFileError`], so a `ValueError`)
whose message starts with the place, `"{path}:{line}: ..."` (1-based) for files, `"{dataset} row {k}: ..."`
(0-based) for datasets, and ends with what was expected; its `path`, `line` and `row` attributes hold the same.

Example:

```python
>>> from hf_xalign.data.classification import load_classification, tokenize_classification
>>> train = load_classification("xnli/en.train.jsonl", layout="xnli", language="en")
>>> labels = train.features["label"].names          # ['contradiction', 'entailment', 'neutral']
>>> test_fr = load_classification("xnli/fr.test.jsonl", label_names=labels, language="fr")
>>> encoded = tokenize_classification(train, tokenizer, max_length=128)  # premise and hypothesis as ONE pair
```
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets

from . import reading

__all__ = [
    "LAYOUTS",
    "ClassificationDataError",
    "ColumnLayout",
    "load_classification",
    "tokenize_classification",
]

# A label that is an integer: sorted as a number, and an index into a label set of names. At most 18 digits (an
# int64): a longer run of digits is a name, so `int()`, which refuses more than 4,300 digits, never sees it.
_INTEGER = re.compile(r"-?[0-9]{1,18}\Z", re.ASCII)


class ClassificationDataError(reading.DataFileError):
    """Malformed classification data; the message starts with `path:line:` (or `dataset row k:`), and the
    attributes `path`, `line` and `row` hold the same (see [`~hf_xalign.data.reading.DataFileError`])."""


@dataclass(frozen=True)
class ColumnLayout:
    """Which columns of a source hold the text(s) and the label.

    Args:
        text (`str`): the (first) text column.
        text_pair (`str`, *optional*): the second text column of a sentence pair; `None` for single sentences.
        label (`str`, *optional*, defaults to `"label"`): the label column.
    """

    text: str
    text_pair: str | None = None
    label: str = "label"

    @property
    def is_pair(self) -> bool:
        return self.text_pair is not None

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c for c in (self.text, self.text_pair, self.label) if c is not None)

    @property
    def output_columns(self) -> tuple[str, ...]:
        return ("premise", "hypothesis", "label", "lang") if self.is_pair else ("text", "label", "lang")


LAYOUTS: dict[str, ColumnLayout] = {
    "xnli": ColumnLayout("premise", "hypothesis", "label"),
    "paws-x": ColumnLayout("sentence1", "sentence2", "label"),
    "text": ColumnLayout("text", None, "label"),
    "sib-200": ColumnLayout("text", None, "category"),
}


class _Labels:
    """Turns raw label values into ids of a fixed label set, or collects them to make the set."""

    def __init__(self, names: Sequence[str | int] | None):
        self.fixed = names is not None
        self.names = [str(name) for name in names] if names is not None else []
        if self.fixed and not self.names:
            raise ValueError("label_names is empty (expected the list of class names)")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"label_names repeats a name: {self.names}")
        self.ids = {name: i for i, name in enumerate(self.names)}
        # `0` in a file is the first class when the names are not numbers (the datasets.ClassLabel convention).
        self.indices_allowed = self.fixed and not any(_INTEGER.match(name) for name in self.names)
        self.preferred_order: list[str] = []  # a ClassLabel's own order, when the set is taken from a dataset

    def key(self, value: Any, place: reading.Place) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ClassificationDataError(
                place, f"label is {reading.describe(value)}", "a label name (string) or an integer"
            )
        key = str(value).strip()
        if not key:
            raise ClassificationDataError(place, "empty label", "a label in every row")
        if not self.fixed:
            return key
        if key in self.ids:
            return key
        if self.indices_allowed and _INTEGER.match(key) and 0 <= int(key) < len(self.names):
            return self.names[int(key)]
        indices = f", or an index 0-{len(self.names) - 1}" if self.indices_allowed else ""
        expected = f"one of the label set: {', '.join(self.names)}{indices}"
        raise ClassificationDataError(place, f"unknown label {key!r}", expected)

    def finish(self, keys: list[str]) -> list[str]:
        """The label names: the fixed set, or a dataset's whole ClassLabel set followed by any other labels seen
        (sorted, numerically when all are integers)."""
        if self.fixed:
            return self.names
        extra = set(keys).difference(self.preferred_order)
        numeric = all(_INTEGER.match(key) for key in extra)
        return self.preferred_order + (sorted(extra, key=int) if numeric else sorted(extra))


class _Rows:
    """Column lists filled row by row; every row is checked where it is read."""

    def __init__(self, layout: ColumnLayout, labels: _Labels):
        self.layout, self.labels = layout, labels
        self.texts: list[str] = []
        self.pairs: list[str] = []
        self.keys: list[str] = []

    def add(self, place: reading.Place, record: dict[str, Any]) -> None:
        self.texts.append(
            reading.check_text(record[self.layout.text], self.layout.text, place, ClassificationDataError)
        )
        if self.layout.is_pair:
            pair = reading.check_text(
                record[self.layout.text_pair], self.layout.text_pair, place, ClassificationDataError
            )
            self.pairs.append(pair)
        self.keys.append(self.labels.key(record[self.layout.label], place))

    def to_dataset(self, language: str) -> datasets.Dataset:
        names = self.labels.finish(self.keys)
        ids = {name: i for i, name in enumerate(names)}
        label = datasets.ClassLabel(names=names)
        columns = {"text": self.texts}
        if self.layout.is_pair:
            columns = {"premise": self.texts, "hypothesis": self.pairs}
        features = datasets.Features(
            {**{name: datasets.Value("string") for name in columns}, "label": label, "lang": datasets.Value("string")}
        )
        columns.update(label=[ids[key] for key in self.keys], lang=[language] * len(self.keys))
        return reading.dataset_from_columns(columns, features)


class _LayoutReader:
    """The records of one layout from files and datasets."""

    def __init__(self, layout: ColumnLayout, labels: _Labels):
        self.layout, self.labels = layout, labels
        self.file_readers = {".tsv": self.tsv, ".csv": self.csv, ".jsonl": self.jsonl}

    def records(self, source: Any) -> Iterator[reading.Record]:
        return reading.records_of(source, self.file_readers, self.dataset, accepts=_ACCEPTS)

    def tsv(self, path: Path) -> Iterator[reading.Record]:
        lines = reading.read_lines(path, ClassificationDataError)
        first = lines[0].split("\t") if lines else []
        header = reading.check_header(first, self.layout.columns, reading.Place(str(path), 1), ClassificationDataError)
        return reading.tsv_records(path, lines, header, start=1, unit="example", error=ClassificationDataError)

    def csv(self, path: Path) -> Iterator[reading.Record]:
        lines = reading.read_lines(path, ClassificationDataError)
        return reading.csv_records(path, lines, self.layout.columns, unit="example", error=ClassificationDataError)

    def jsonl(self, path: Path) -> Iterator[reading.Record]:
        lines = reading.read_lines(path, ClassificationDataError)
        return reading.jsonl_records(path, lines, self.layout.columns, unit="example", error=ClassificationDataError)

    def dataset(self, dataset: datasets.Dataset, name: str) -> Iterator[reading.Record]:
        layout, labels = self.layout, self.labels
        feature = dataset.features.get(layout.label)
        class_names = feature.names if isinstance(feature, datasets.ClassLabel) else None
        if class_names and not labels.fixed and not labels.preferred_order:
            labels.preferred_order = list(class_names)  # the set taken from a dataset keeps its ClassLabel order
        for place, record in reading.dataset_records(
            dataset, layout.columns, name=name, unit="example", error=ClassificationDataError
        ):
            if class_names is not None:  # ids -> the dataset's own names; -1 is "no label" in datasets
                class_id = record[layout.label]
                if not (isinstance(class_id, int) and 0 <= class_id < len(class_names)):
                    expected = f"a labelled example, id 0-{len(class_names) - 1}"
                    raise ClassificationDataError(place, f"class id {class_id} of {layout.label!r}", expected)
                record[layout.label] = class_names[class_id]
            yield place, record


_ACCEPTS = "a .tsv, .csv or .jsonl file, a datasets.Dataset or hub:PATH[:CONFIG]:SPLIT"


def load_classification(
    source: str | os.PathLike | datasets.Dataset | Sequence[str | os.PathLike | datasets.Dataset],
    *,
    layout: str | ColumnLayout = "xnli",
    label_names: Sequence[str | int] | None = None,
    language: str = "",
) -> datasets.Dataset:
    """Read classification examples into a [`datasets.Dataset`] (pair or single form, see the module docs).

    Args:
        source: a `.tsv` (raw fields between tabs, no quoting), `.csv` (RFC 4180) or `.jsonl` file, each with the
            layout's columns (TSV/CSV: named in a header line; more columns are ignored); a [`datasets.Dataset`];
            `"hub:PATH[:CONFIG]:SPLIT"` for `datasets.load_dataset(PATH, CONFIG, split=SPLIT)`; or a list of those,
            read as one set.
        layout (`str` or [`ColumnLayout`], *optional*, defaults to `"xnli"`): a name from [`LAYOUTS`] or your own.
        label_names (`Sequence[str]`, *optional*): the label set, in id order. Labels in the data are names,
            or integers (in files, digits) that are names too; when no name is a number, an integer `k` means
            `label_names[k]` (the `datasets.ClassLabel` convention). Without it the set is a dataset's own
            `ClassLabel` names (all of them, in order), then any other labels seen, sorted (numerically when all
            are integers).
        language (`str`, *optional*): code stored in the `lang` column.

    Returns:
        [`datasets.Dataset`]: `premise`, `hypothesis`, `label`, `lang` (pairs) or `text`, `label`, `lang`, in
        input order; `features["label"].names` is the label set.

    Raises:
        [`ClassificationDataError`]: a missing column, an empty or non-string text, a label outside the set,
            invalid JSON or CSV, a line whose field count differs from the header, bytes that are not UTF-8, or
            no examples at all; the message names file and line (or dataset row) and what was expected.
        `FileNotFoundError`: a file does not exist.
    """
    if isinstance(layout, str):
        if layout not in LAYOUTS:
            raise ValueError(f"Unknown layout {layout!r}; known: {', '.join(LAYOUTS)} (or pass a ColumnLayout).")
        layout = LAYOUTS[layout]
    labels = _Labels(label_names)
    rows = _Rows(layout, labels)
    sources = list(source) if isinstance(source, (list, tuple)) else [source]
    if not sources:
        raise ValueError(f"no source given (expected {_ACCEPTS})")
    reader = _LayoutReader(layout, labels)
    for item in sources:
        for place, record in reader.records(item):
            rows.add(place, record)
    return rows.to_dataset(language)


def tokenize_classification(
    dataset: datasets.Dataset, tokenizer, max_length: int = 128, batch_size: int = 1000
) -> datasets.Dataset:
    """Model inputs and `labels` for a dataset from [`load_classification`].

    A pair is encoded as ONE sequence, `tokenizer(premise, hypothesis)`: for XLM-R `<s> premise </s></s>
    hypothesis </s>` (BERT-style models also get `token_type_ids`), truncated longest-first to `max_length`.
    The text columns are removed; the result has the tokenizer's outputs and `labels`.
    """
    is_pair = "hypothesis" in dataset.column_names

    def encode(batch: dict[str, list]) -> dict[str, list]:
        texts = (batch["premise"], batch["hypothesis"]) if is_pair else (batch["text"],)
        encoded = dict(tokenizer(*texts, truncation=True, max_length=max_length))
        encoded["labels"] = batch["label"]
        return encoded

    columns = dataset.column_names
    return dataset.map(encode, batched=True, batch_size=batch_size, remove_columns=columns, desc="Tokenizing")
