"""Inputs the fuzzed-reader tests (`test_fuzz_*.py`) found to break a reader, each kept as a plain example.

Before the fixes, each raised an exception other than the reader's own error (RecursionError, ValueError,
UnicodeEncodeError from pyarrow, far from the line), or read an empty file as an empty treebank.
"""

from __future__ import annotations

import json

import pytest
from _fuzz import hard_time_limit

from hf_xalign.data import ClassificationDataError, ParallelDataError, load_parallel
from hf_xalign.data.classification import load_classification
from hf_xalign.data.conllu import CoNLLUError, read_conllu

GOOD_PAIR = '{"src": "Hello world", "tgt": "Hallo Welt"}\n'
GOOD_EXAMPLE = '{"text": "Pack light.", "label": "travel"}\n'


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- JSON Lines


@pytest.mark.parametrize(
    "bad_line, problem",
    [
        # json's C parser recurses per level: RecursionError
        ('{"src": ' + "[" * 100_000 + '"a", "tgt": "b"}', "JSON beyond the parser's limits: maximum recursion depth"),
        # int() refuses more than 4,300 digits: ValueError, not a JSONDecodeError
        ('{"src": "a b", "tgt": "c d", "alignment": [[' + "1" * 5000 + ", 0]]}", "JSON beyond the parser's limits"),
        # json accepts the escape of a lone surrogate; pyarrow then could not encode the string
        ('{"src": "caf\\ud800", "tgt": "b"}', "the string of key 'src' escapes a lone surrogate ('\\ud800')"),
    ],
    ids=["nested 100,000 levels", "integer of 5,000 digits", "lone surrogate escape"],
)
def test_json_lines_past_the_parser_or_utf8_name_their_line(tmp_path, bad_line, problem):
    pairs = write(tmp_path, "pairs.jsonl", GOOD_PAIR + bad_line + "\n")
    examples = write(
        tmp_path, "x.jsonl", GOOD_EXAMPLE + bad_line.replace('"tgt"', '"label"').replace('"src"', '"text"') + "\n"
    )

    with pytest.raises(ParallelDataError) as error:
        load_parallel(pairs)
    assert (error.value.path, error.value.line) == (str(pairs), 2)
    assert str(error.value).startswith(f"{pairs}:2: {problem}")
    with pytest.raises(ClassificationDataError) as error:
        load_classification(examples, layout="text")
    assert (error.value.path, error.value.line) == (str(examples), 2)


def test_a_surrogate_pair_escape_is_one_character(tmp_path):
    # The check for lone surrogates must not refuse the escapes json.dumps writes for every emoji.
    path = write(tmp_path, "pairs.jsonl", json.dumps({"src": "smile 😀", "tgt": "Lächeln 😀"}) + "\n")
    assert "\\ud83d\\ude00" in path.read_text(encoding="utf-8")

    assert load_parallel(path)[0]["src"] == "smile 😀"


# --------------------------------------------------------------------------- headers


def test_a_header_of_many_columns_is_checked_in_linear_time(tmp_path):
    # Repeated names were found with `names.count(name)` per name: minutes for 140,000 tab-separated fields.
    path = write(tmp_path, "x.tsv", "text\tlabel" + "\tx" * 140_000 + "\na\tb\n")

    with hard_time_limit(10), pytest.raises(ClassificationDataError) as error:
        load_classification(path, layout="text")
    assert str(error.value) == f"{path}:1: header repeats column 'x' (expected each column named once)"


# --------------------------------------------------------------------------- alignment indices


@pytest.mark.parametrize("digits", [10, 5000])
def test_an_alignment_index_of_many_digits_is_out_of_range(tmp_path, digits):
    # 5,000 digits made int() raise ValueError; 10 digits cannot index any sentence either.
    path = write(tmp_path, "pairs.tsv", f"a b\tc d\t0-0\na b\tc d\t1-{'9' * digits}\n")

    with pytest.raises(ParallelDataError) as error:
        load_parallel(path)
    assert (error.value.path, error.value.line) == (str(path), 2)
    assert f"has an index of {digits} digits (expected word indices below the sentence lengths (2 source" in str(
        error.value
    )


def test_an_alignment_index_of_nine_digits_is_still_read_as_a_number(tmp_path):
    path = write(tmp_path, "pairs.tsv", "a b\tc d\t0-999999999\n")

    with pytest.raises(ParallelDataError, match="points to target word 999999999, but the target has 2 words"):
        load_parallel(path)


# --------------------------------------------------------------------------- classification labels


def test_a_label_of_thousands_of_digits_is_a_name(tmp_path):
    # Sorting integer labels with key=int raised ValueError past 4,300 digits, after the whole file was read.
    huge = "9" * 5000
    path = write(tmp_path, "x.tsv", f"text\tlabel\na\t2\nb\t{huge}\nc\t10\n")

    data = load_classification(path, layout="text")
    assert data.features["label"].names == ["10", "2", huge]  # not all integers: sorted as text
    assert data["label"] == [1, 2, 0]


def test_a_label_of_thousands_of_digits_is_no_index_into_a_label_set(tmp_path):
    path = write(tmp_path, "x.tsv", f"text\tlabel\na\t1\nb\t{'1' * 5000}\n")

    with pytest.raises(ClassificationDataError) as error:
        load_classification(path, layout="text", label_names=["neg", "pos"])
    assert (error.value.path, error.value.line) == (str(path), 3)
    assert "unknown label '1111" in str(error.value)


def test_integer_labels_of_eighteen_digits_sort_as_numbers(tmp_path):
    path = write(tmp_path, "x.tsv", "text\tlabel\na\t123456789012345678\nb\t10\nc\t9\n")

    assert load_classification(path, layout="text").features["label"].names == ["9", "10", "123456789012345678"]


# --------------------------------------------------------------------------- CoNLL-U


@pytest.mark.parametrize("content", [b"", b"\n\n", b"\xef\xbb\xbf\r\n  \r\n"], ids=["empty", "blank", "bom-crlf"])
def test_a_treebank_file_without_sentences_is_an_error(tmp_path, content):
    # It read as zero sentences, silently; the other readers say "file has no pairs / examples".
    path = tmp_path / "t.conllu"
    path.write_bytes(content)

    with pytest.raises(CoNLLUError) as error:
        read_conllu(path)
    assert (error.value.path, error.value.line) == (str(path), 1)
    assert str(error.value) == f"{path}:1: file has no sentences (expected at least one sentence)"
