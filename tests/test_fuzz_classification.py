"""Fuzzed classification reading (`load_classification`): generated TSV, CSV and JSONL files of every layout
read back exactly as generated; mutated ones are read, or raise a `ClassificationDataError` naming the file and a
line of it (the property in `_fuzz.py`)."""

from __future__ import annotations

import csv
import io
import json

from _fuzz import (
    MUTATED_SETTINGS,
    VALID_SETTINGS,
    GeneratedSource,
    decoded_text,
    file_ending_strategy,
    hard_time_limit,
    mutated_files,
    padding_strategy,
    read_or_check_error,
    saved_files,
    sentence_strategy,
    write_files,
)
from hypothesis import given
from hypothesis import strategies as st

from hf_xalign.data.classification import LAYOUTS, ClassificationDataError, load_classification

LANGUAGE = "xx"
# Label names, none of them an integer; and, for files whose labels are integers, the integers.
LABEL_NAMES = ("contradiction", "entailment", "neutral", "very good", "santé", "正面", "-", "1.5", "٣")
name_label_strategy = st.sampled_from(LABEL_NAMES)
integer_label_strategy = st.integers(-2, 12)  # "10" after "9": sorted as numbers, not as text
# Text a CSV field may hold besides a sentence: the delimiter, quotes, line ends inside a quoted field.
csv_extra_strategy = st.sampled_from(("", ",", '"', '"quoted", then', "\n", "\n\nlines later", ",\n"))
# Columns a file may have that no layout reads.
EXTRA_COLUMNS = ("id", "source")


def tsv(draw, columns: list[str], rows: list[dict]) -> str:
    """A header line naming `columns` (padded names too), then the fields of each row between tabs."""
    before, after = draw(padding_strategy)
    lines = ["\t".join(before + name + after for name in columns)]
    lines += ["\t".join(row[name] for name in columns) for row in rows]
    return "\n".join(lines)


def csv_text(draw, columns: list[str], rows: list[dict]) -> str:
    """RFC 4180 CSV as Python's csv module writes it, quoting what it must or everything."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n", quoting=draw(st.sampled_from((csv.QUOTE_MINIMAL, csv.QUOTE_ALL))))
    writer.writerow(columns)
    writer.writerows([[row[name] for name in columns] for row in rows])
    return buffer.getvalue().removesuffix("\n")


def jsonl(draw, columns: list[str], rows: list[dict]) -> str:
    """One object per line with `columns` as keys, ASCII-escaped or not."""
    ensure_ascii = draw(st.booleans())
    return "\n".join(json.dumps({name: row[name] for name in columns}, ensure_ascii=ensure_ascii) for row in rows)


FILE_FORMATS = {"x.tsv": tsv, "x.csv": csv_text, "x.jsonl": jsonl}
file_name_strategy = st.sampled_from(sorted(FILE_FORMATS))
layout_name_strategy = st.sampled_from(sorted(LAYOUTS))


@st.composite
def classification_sources(draw) -> GeneratedSource:
    """One to four examples of one layout in one file format, and the dataset `load_classification` returns."""
    layout_name, name = draw(layout_name_strategy), draw(file_name_strategy)
    layout = LAYOUTS[layout_name]
    integer_labels = draw(st.booleans())
    # A fixed label set (`label_names=`), or the set the data gives: its labels sorted, as numbers if integers.
    fixed_names = list(reversed(LABEL_NAMES)) if not integer_labels and draw(st.booleans()) else None
    texts: dict[str, list[str]] = {"first": [], "second": []}
    labels: list[str] = []
    rows = []
    for _ in range(draw(st.integers(1, 4))):
        row = {column: str(draw(st.integers(0, 99))) for column in EXTRA_COLUMNS}
        for role, column in (("first", layout.text), ("second", layout.text_pair)):
            if column is not None:
                text = draw(sentence_strategy) + (draw(csv_extra_strategy) if name == "x.csv" else "")
                texts[role].append(text)
                row[column] = text
        label = draw(integer_label_strategy if integer_labels else name_label_strategy)
        labels.append(str(label))
        before, after = draw(padding_strategy)  # label names are stripped
        row[layout.label] = (
            label if name == "x.jsonl" and integer_labels and draw(st.booleans()) else f"{before}{label}{after}"
        )
        rows.append(row)
    columns = draw(st.permutations([*layout.columns, *EXTRA_COLUMNS[: draw(st.integers(0, len(EXTRA_COLUMNS)))]]))
    text = FILE_FORMATS[name](draw, columns, rows) + draw(file_ending_strategy)

    names = fixed_names or sorted(set(labels), key=int if integer_labels else None)
    expected = (
        {"text": texts["first"]} if not layout.is_pair else {"premise": texts["first"], "hypothesis": texts["second"]}
    )
    expected.update(label=[names.index(label) for label in labels], lang=[LANGUAGE] * len(labels))

    read = lambda paths: load_classification(paths[0], layout=layout_name, label_names=fixed_names, language=LANGUAGE)
    return GeneratedSource({name: text}, read, (expected, names), raw_values=name == "x.tsv")


@VALID_SETTINGS
@given(source=classification_sources(), data=st.data())
def test_generated_classification_files_read_back_exactly(tmp_path_factory, source, data):
    paths = write_files(tmp_path_factory, data.draw(saved_files(source)))

    with hard_time_limit():
        dataset = source.read(paths)
    assert (dataset.to_dict(), dataset.features["label"].names) == source.expected


@MUTATED_SETTINGS
@given(source=classification_sources(), data=st.data())
def test_mutated_classification_files_read_or_name_file_and_line(tmp_path_factory, source, data):
    paths = write_files(tmp_path_factory, data.draw(mutated_files(source)))

    dataset = read_or_check_error(lambda: source.read(paths), paths, ClassificationDataError)
    if dataset is not None:  # every example has its texts and a label of the set; raw text came from the file
        text = decoded_text(paths) if source.raw_values else None
        text_columns = [column for column in dataset.column_names if column not in ("label", "lang")]
        for example in dataset:
            assert all(example[column].strip() for column in text_columns)
            assert 0 <= example["label"] < dataset.features["label"].num_classes
            assert text is None or all(example[column] in text for column in text_columns)
