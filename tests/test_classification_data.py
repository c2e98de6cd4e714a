"""Classification readers: pairs and single sentences from TSV, CSV, JSONL and datasets; a fixed label set;
errors that name file and line."""

from __future__ import annotations

import json
import os
import sys

import datasets
import pytest

from hf_xalign.data.classification import (
    LAYOUTS,
    ClassificationDataError,
    ColumnLayout,
    load_classification,
    tokenize_classification,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NLI_DATA = os.path.join(ROOT, "recipes", "data", "nli")


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def jsonl(tmp_path, name: str, records: list) -> str:
    return write(tmp_path, name, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


# --- reading -----------------------------------------------------------------------------------------------


def test_tsv_pairs_with_a_header_and_extra_columns(tmp_path):
    path = write(
        tmp_path,
        "en.tsv",
        "id\tpremise\thypothesis\tlabel\n"
        "1\tA man sleeps.\tSomeone rests.\tentailment\n"
        '2\tShe said "no".\tShe agreed.\tcontradiction\n',
    )
    data = load_classification(path, language="en")
    assert data.column_names == ["premise", "hypothesis", "label", "lang"]
    assert data[1] == {"premise": 'She said "no".', "hypothesis": "She agreed.", "label": 0, "lang": "en"}
    assert data.features["label"].names == ["contradiction", "entailment"]  # the labels seen, sorted


def test_single_sentences_in_the_sib_layout(tmp_path):
    path = jsonl(
        tmp_path,
        "sib.jsonl",
        [
            {"index_id": 3, "category": "travel", "text": "Pack light."},
            {"index_id": 9, "category": "health", "text": "Drink water."},
        ],
    )
    data = load_classification(path, layout="sib-200", language="de")
    assert data.column_names == ["text", "label", "lang"]
    assert [data.features["label"].int2str(i) for i in data["label"]] == ["travel", "health"]


def test_csv_with_quoted_commas_and_line_breaks(tmp_path):
    path = write(tmp_path, "paws.csv", 'sentence1,sentence2,label\n"One, two","Three\nfour",1\nFive,Six,0\n')
    data = load_classification(path, layout="paws-x")
    assert data["premise"] == ["One, two", "Five"] and data["hypothesis"] == ["Three\nfour", "Six"]
    assert data.features["label"].names == ["0", "1"]
    assert data["label"] == [1, 0]


def test_integer_labels_are_indices_into_named_labels(tmp_path):
    names = ["entailment", "neutral", "contradiction"]
    path = jsonl(
        tmp_path,
        "fr.jsonl",
        [{"premise": "a", "hypothesis": "b", "label": 2}, {"premise": "c", "hypothesis": "d", "label": "neutral"}],
    )
    data = load_classification(path, label_names=names)
    assert data["label"] == [2, 1]
    assert data.features["label"].names == names


def test_numeric_labels_without_names_sort_as_numbers(tmp_path):
    path = jsonl(
        tmp_path, "x.jsonl", [{"text": "a", "label": 10}, {"text": "b", "label": 2}, {"text": "c", "label": "2"}]
    )
    data = load_classification(path, layout="text")
    assert data.features["label"].names == ["2", "10"]
    assert data["label"] == [1, 0, 0]


def test_several_files_are_one_set(tmp_path):
    first = write(tmp_path, "a.tsv", "text\tlabel\nx\tb\n")
    second = jsonl(tmp_path, "b.jsonl", [{"text": "y", "label": "a"}])
    data = load_classification([first, second], layout="text")
    assert data["text"] == ["x", "y"] and data.features["label"].names == ["a", "b"]


def test_a_dataset_keeps_its_class_label_order():
    xnli = datasets.Dataset.from_dict(
        {"premise": ["p1", "p2"], "hypothesis": ["h1", "h2"], "label": [2, 0]},
        features=datasets.Features(
            {
                "premise": datasets.Value("string"),
                "hypothesis": datasets.Value("string"),
                "label": datasets.ClassLabel(names=["entailment", "neutral", "contradiction"]),
            }
        ),
    )
    data = load_classification(xnli)
    assert data.features["label"].names == ["entailment", "neutral", "contradiction"]
    assert data["label"] == [2, 0]


def test_paws_x_columns_from_a_dataset():
    paws = datasets.Dataset.from_dict({"id": [1], "sentence1": ["s1"], "sentence2": ["s2"], "label": [1]})
    data = load_classification(paws, layout="paws-x", label_names=["0", "1"], language="ja")
    assert data[0] == {"premise": "s1", "hypothesis": "s2", "label": 1, "lang": "ja"}


def test_a_custom_layout():
    rows = datasets.Dataset.from_dict({"question": ["q"], "answer": ["a"], "gold": ["yes"]})
    data = load_classification(rows, layout=ColumnLayout("question", "answer", "gold"))
    assert data[0]["premise"] == "q" and data[0]["hypothesis"] == "a"


def test_hub_specs_go_to_load_hub_split(monkeypatch):
    from hf_xalign.data import hub

    calls = []

    def fake_load_hub_split(spec):
        calls.append(spec)
        return datasets.Dataset.from_dict({"premise": ["p"], "hypothesis": ["h"], "label": [0]})

    monkeypatch.setattr(hub, "load_hub_split", fake_load_hub_split)
    load_classification("hub:facebook/xnli:fr:test", label_names=["entailment", "neutral", "contradiction"])
    load_classification("hub:my/pairs@v1:train")
    assert calls == ["hub:facebook/xnli:fr:test", "hub:my/pairs@v1:train"]


def test_unknown_layout_is_named():
    with pytest.raises(ValueError, match="Unknown layout 'nli'; known: " + ", ".join(LAYOUTS)):
        load_classification("x.tsv", layout="nli")


# --- the fixed label set -------------------------------------------------------------------------------------


def test_the_training_labels_are_enforced_on_an_evaluation_file(tmp_path):
    train = load_classification(write(tmp_path, "en.tsv", "text\tlabel\na\tauth\nb\tcore\n"), layout="text")
    test = write(tmp_path, "fr.tsv", "text\tlabel\nc\tcore\nd\tadmin\n")
    with pytest.raises(
        ClassificationDataError, match=r"fr\.tsv:3: unknown label 'admin' \(expected one of the label set: auth, core"
    ):
        load_classification(test, layout="text", label_names=train.features["label"].names)


def test_an_index_outside_the_label_set(tmp_path):
    path = jsonl(tmp_path, "x.jsonl", [{"premise": "a", "hypothesis": "b", "label": 3}])
    with pytest.raises(ClassificationDataError, match=r"x\.jsonl:1: unknown label '3' .*or an index 0-2"):
        load_classification(path, label_names=["entailment", "neutral", "contradiction"])


def test_an_unlabelled_dataset_row_is_an_error():
    rows = datasets.Dataset.from_dict(
        {"text": ["a", "b"], "label": [0, -1]},
        features=datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["x", "y"])}),
    )
    with pytest.raises(ClassificationDataError, match=r"dataset row 1: class id -1 of 'label'"):
        load_classification(rows, layout="text")


@pytest.mark.parametrize("label", [1.5, True, None, [1]])
def test_a_label_that_is_neither_name_nor_integer(tmp_path, label):
    path = jsonl(tmp_path, "x.jsonl", [{"text": "a", "label": label}])
    with pytest.raises(
        ClassificationDataError, match=r"x\.jsonl:1: label is .*\(expected a label name \(string\) or an integer\)"
    ):
        load_classification(path, layout="text")


# --- malformed input: each names file and line ----------------------------------------------------------------

PAIR_HEADER = "premise\thypothesis\tlabel\n"
MALFORMED = {  # kind: (file name, content, layout, expected message)
    "missing column in a TSV header": (
        "x.tsv",
        "premise\tlabel\na\tb\n",
        "xnli",
        r"x\.tsv:1: header \['premise', 'label'\] lacks column 'hypothesis'",
    ),
    "missing key on a JSONL line": (
        "x.jsonl",
        '{"premise": "a", "hypothesis": "b", "label": "e"}\n{"premise": "c", "label": "e"}\n',
        "xnli",
        r"x\.jsonl:2: missing key 'hypothesis'",
    ),
    "missing column in a CSV header": (
        "x.csv",
        "text,category\na,b\n",
        "text",
        r"x\.csv:1: header .* lacks column 'label'",
    ),
    "empty text": ("x.tsv", PAIR_HEADER + "a\tb\te\nc\t  \te\n", "xnli", r"x\.tsv:3: empty hypothesis text"),
    "text that is not a string": ("x.jsonl", '{"text": 5, "label": "a"}\n', "text", r"x\.jsonl:1: text is of type int"),
    "empty label": ("x.tsv", "text\tlabel\na\t\n", "text", r"x\.tsv:2: empty label"),
    "bad JSON": (
        "x.jsonl",
        '{"text": "a", "label": "b"}\n{"text": "a", "label": \n',
        "text",
        r"x\.jsonl:2: invalid JSON: Expecting value at column 24",
    ),
    "JSON that is not an object": ("x.jsonl", '["a", "b"]\n', "text", r"x\.jsonl:1: JSON list is not an object"),
    "blank line inside a JSONL file": (
        "x.jsonl",
        '{"text": "a", "label": "b"}\n\n{"text": "a", "label": "b"}\n',
        "text",
        r"x\.jsonl:2: blank line",
    ),
    "wrong column count in a TSV": (
        "x.tsv",
        PAIR_HEADER + "a\tb\te\nc\td\n",
        "xnli",
        r"x\.tsv:3: 2 tab-separated fields \(expected 3 as in the header",
    ),
    "wrong column count in a CSV, after a field over two lines": (
        "x.csv",
        'text,label\n"a\nb",x\nc,x,extra\n',
        "text",
        r"x\.csv:4: 3 comma-separated fields \(expected 2",
    ),
    "a file without examples": ("x.tsv", "text\tlabel\n", "text", r"x\.tsv:2: file has no examples"),
}


@pytest.mark.parametrize("kind", MALFORMED)
def test_malformed_input_names_file_and_line(tmp_path, kind):
    name, content, layout, message = MALFORMED[kind]
    with pytest.raises(ClassificationDataError, match=message):
        load_classification(write(tmp_path, name, content), layout=layout)


def test_missing_column_in_a_dataset():
    with pytest.raises(ClassificationDataError, match="dataset: missing column 'category'.*found text"):
        load_classification(datasets.Dataset.from_dict({"text": ["a"]}), layout="sib-200")


def test_bytes_that_are_not_utf8(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_bytes(b"text\tlabel\nok\ta\nbad \xff\ta\n")
    with pytest.raises(ClassificationDataError, match=r"x\.tsv:3: bytes b'\\xff' are not UTF-8"):
        load_classification(str(path), layout="text")


def test_a_missing_file_and_an_unknown_file_type(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.tsv"):
        load_classification(str(tmp_path / "nope.tsv"))
    with pytest.raises(ValueError, match=r"unsupported file type '\.txt'"):
        load_classification(str(tmp_path / "x.txt"))


def test_errors_are_value_errors():
    assert issubclass(ClassificationDataError, ValueError)


# --- encoding ------------------------------------------------------------------------------------------------


def test_single_sentences_are_encoded_alone(tokenizer):
    data = datasets.Dataset.from_dict({"text": ["the cat runs"], "label": [1], "lang": ["en"]})
    encoded = tokenize_classification(data, tokenizer, max_length=32)
    assert encoded.column_names == ["input_ids", "attention_mask", "labels"]
    assert encoded[0]["input_ids"] == tokenizer("the cat runs")["input_ids"]
    assert encoded[0]["labels"] == 1


def test_pairs_are_truncated_as_one_sequence(tokenizer):
    data = datasets.Dataset.from_dict(
        {"premise": ["the big red cat sees a dog " * 5], "hypothesis": ["a dog runs"], "label": [0], "lang": ["en"]}
    )
    ids = tokenize_classification(data, tokenizer, max_length=16)[0]["input_ids"]
    assert len(ids) == 16 and ids.count(tokenizer.sep_token_id) == 3  # both parts kept, the longer one cut


# --- the shipped demo data ------------------------------------------------------------------------------------


def test_the_demo_data_reads_and_is_what_its_builder_writes():
    sys.path.insert(0, NLI_DATA)
    import build_nli_data  # noqa: E402

    files = build_nli_data.build()
    for relative, text in files.items():
        with open(os.path.join(NLI_DATA, relative), encoding="utf-8") as f:
            assert f.read() == text, relative
    train = load_classification(os.path.join(NLI_DATA, "same_component", "train", "en.tsv"), layout="paws-x")
    assert train.features["label"].names == ["different", "same"]
    for language in build_nli_data.LANGUAGES:
        test = load_classification(
            os.path.join(NLI_DATA, "same_component", "test", f"{language}.tsv"),
            layout="paws-x",
            label_names=train.features["label"].names,
            language=language,
        )
        assert len(test) == 200 and test["label"].count(1) == 100
