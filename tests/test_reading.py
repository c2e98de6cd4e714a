"""The shared reading core (`hf_xalign.data.reading`) as every reader sees it: byte-order marks and CRLF line
ends read like plain files, and one error type that names file and line."""

from __future__ import annotations

import pickle

import datasets
import pytest

from hf_xalign.data import ClassificationDataError, DataFileError, ParallelDataError, load_parallel
from hf_xalign.data.classification import load_classification
from hf_xalign.data.conllu import UPOS_TAGS, CoNLLUError, read_conllu, treebank_from_dataset
from hf_xalign.data.reading import Place, read_lines

BOM = "\ufeff".encode()

CONLLU = (
    "# sent_id = s1\n"
    "1-2\tdel\t_\t_\t_\t_\t_\t_\t_\t_\n"
    "1\tde\tde\tADP\t_\t_\t3\tcase\t_\t_\n"
    "2\tel\tel\tDET\t_\t_\t3\tdet\t_\t_\n"
    "3\tmar\tmar\tNOUN\t_\t_\t0\troot\t_\t_\n"
    "\n"
    "# sent_id = s2\n"
    "1\tHola\thola\tINTJ\t_\t_\t0\troot\t_\t_\n"
)


def write_plain_and_windows(tmp_path, name: str, text: str):
    """The same text twice: LF without a byte-order mark, and CRLF after a UTF-8 byte-order mark."""
    plain, windows = tmp_path / f"plain_{name}", tmp_path / f"windows_{name}"
    plain.write_bytes(text.encode())
    windows.write_bytes(BOM + text.replace("\n", "\r\n").encode())
    assert windows.read_bytes().count(b"\r\n") == text.count("\n") > 0
    return plain, windows


def rows(dataset):
    return [dict(row) for row in dataset]


def pair(src, tgt, src_lang="", tgt_lang="", alignment=()):
    return {
        "src": src,
        "tgt": tgt,
        "src_lang": src_lang,
        "tgt_lang": tgt_lang,
        "alignment": [list(a) for a in alignment],
    }


# --------------------------------------------------------------------------- BOM and CRLF, every reader

PARALLEL_FILES = {  # name: (text, expected rows)
    "pairs.tsv": (
        "src_lang\ttgt_lang\tsrc\ttgt\nen\tde\tHello world\tHallo Welt\nen\tfr\tGood morning\tBonjour\n",
        [pair("Hello world", "Hallo Welt", "en", "de"), pair("Good morning", "Bonjour", "en", "fr")],
    ),
    "aligned.tsv": (
        "the red house\tla casa roja\t0-0 1-2 2-1\nyes\tsí\n",
        [pair("the red house", "la casa roja", alignment=[(0, 0), (1, 2), (2, 1)]), pair("yes", "sí")],
    ),
    "pairs.jsonl": (
        '{"src": "Hello world", "tgt": "Hallo Welt", "alignment": "0-0 1-1"}\n{"src": "yes", "tgt": "sí"}\n',
        [pair("Hello world", "Hallo Welt", alignment=[(0, 0), (1, 1)]), pair("yes", "sí")],
    ),
}


@pytest.mark.parametrize("name", PARALLEL_FILES)
def test_parallel_files_with_bom_and_crlf_read_as_plain_ones(tmp_path, name):
    text, expected = PARALLEL_FILES[name]
    plain, windows = write_plain_and_windows(tmp_path, name, text)

    assert rows(load_parallel(plain)) == expected
    assert rows(load_parallel(windows)) == expected


def test_a_plain_text_pair_with_bom_and_crlf_reads_as_plain_files(tmp_path):
    plain_en, windows_en = write_plain_and_windows(tmp_path, "train.en", "Hello world\nyes\n")
    plain_de, windows_de = write_plain_and_windows(tmp_path, "train.de", "Hallo Welt\nja\n")
    expected = [pair("Hello world", "Hallo Welt", "en", "de"), pair("yes", "ja", "en", "de")]

    assert rows(load_parallel((plain_en, plain_de))) == expected
    assert rows(load_parallel((windows_en, windows_de))) == expected


CLASSIFICATION_FILES = {  # name: (text, layout, expected columns)
    "x.tsv": (
        "premise\thypothesis\tlabel\nA man sleeps.\tSomeone rests.\tentailment\nShe left.\tShe stayed.\tcontradiction\n",
        "xnli",
        {
            "premise": ["A man sleeps.", "She left."],
            "hypothesis": ["Someone rests.", "She stayed."],
            "label": [1, 0],
            "lang": ["", ""],
        },
    ),
    "x.csv": (
        'sentence1,sentence2,label\n"One, two","Three\nfour",1\nFive,Six,0\n',
        "paws-x",
        {"premise": ["One, two", "Five"], "hypothesis": ["Three\nfour", "Six"], "label": [1, 0], "lang": ["", ""]},
    ),
    "x.jsonl": (
        '{"text": "Pack light.", "category": "travel"}\n{"text": "Drink water.", "category": "health"}\n',
        "sib-200",
        {"text": ["Pack light.", "Drink water."], "label": [1, 0], "lang": ["", ""]},
    ),
}


@pytest.mark.parametrize("name", CLASSIFICATION_FILES)
def test_classification_files_with_bom_and_crlf_read_as_plain_ones(tmp_path, name):
    text, layout, expected = CLASSIFICATION_FILES[name]
    plain, windows = write_plain_and_windows(tmp_path, name, text)

    from_plain, from_windows = load_classification(plain, layout=layout), load_classification(windows, layout=layout)
    assert from_plain.to_dict() == from_windows.to_dict() == expected
    assert from_plain.features == from_windows.features


def test_conllu_with_bom_and_crlf_reads_as_plain(tmp_path):
    plain, windows = write_plain_and_windows(tmp_path, "t.conllu", CONLLU)
    from_plain, from_windows = read_conllu(plain, language="es"), read_conllu(windows, language="es")

    assert from_plain.to_dict() == from_windows.to_dict()
    assert from_windows["words"] == [["de", "el", "mar"], ["Hola"]]
    assert [[UPOS_TAGS[i] for i in tags] for tags in from_windows["upos"]] == [["ADP", "DET", "NOUN"], ["INTJ"]]
    assert from_windows["sent_id"] == ["s1", "s2"]


def test_lines_keep_their_numbers_in_a_crlf_file(tmp_path):
    _, windows = write_plain_and_windows(tmp_path, "pairs.tsv", "a\tb\nc\td\ne\n")

    with pytest.raises(ParallelDataError) as error:
        load_parallel(windows)
    assert (error.value.path, error.value.line) == (str(windows), 3)


# --------------------------------------------------------------------------- one error type: file and line


def test_every_reader_error_is_a_data_file_error():
    for error_type in (ParallelDataError, ClassificationDataError, CoNLLUError):
        assert issubclass(error_type, DataFileError) and issubclass(error_type, ValueError)


def test_a_parallel_error_carries_file_and_line(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("Hello world\tHallo Welt\nGood morning\t \n", encoding="utf-8")

    with pytest.raises(ParallelDataError) as error:
        load_parallel(path)
    assert (error.value.path, error.value.line, error.value.row) == (str(path), 2, None)
    assert str(error.value) == f"{path}:2: empty tgt text (expected a non-empty tgt in every row)"


def test_a_classification_error_carries_file_and_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": ""}\n', encoding="utf-8")

    with pytest.raises(ClassificationDataError) as error:
        load_classification(path, layout="text")
    assert (error.value.path, error.value.line) == (str(path), 2)
    assert str(error.value) == f"{path}:2: empty label (expected a label in every row)"


def test_a_conllu_error_carries_file_and_line(tmp_path):
    path = tmp_path / "t.conllu"
    path.write_text(CONLLU.replace("\tNOUN\t", "\tNOM\t"), encoding="utf-8")

    with pytest.raises(CoNLLUError) as error:
        read_conllu(path)
    assert (error.value.path, error.value.line) == (str(path), 5)
    assert str(error.value).startswith(f"{path}:5: unknown UPOS tag 'NOM' ")


def test_undecodable_bytes_are_named_with_their_line_by_every_reader(tmp_path):
    content = b"text\tlabel\nok\ta\nbad \xff\ta\n"
    for name, read in (
        ("x.tsv", lambda path: load_parallel(path)),
        ("y.tsv", lambda path: load_classification(path, layout="text")),
        ("z.conllu", read_conllu),
    ):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(DataFileError) as error:
            read(path)
        assert (error.value.path, error.value.line) == (str(path), 3)
        assert str(error.value) == f"{path}:3: bytes b'\\xff' are not UTF-8 (expected UTF-8 text)"


def test_a_dataset_error_carries_its_row():
    treebank = datasets.Dataset.from_dict({"tokens": [["a"], ["b"]], "upos": [["NOUN"], ["NOM"]]})

    with pytest.raises(CoNLLUError) as error:
        treebank_from_dataset(treebank, source="hub:ud:xx:test")
    assert (error.value.path, error.value.line, error.value.row) == ("hub:ud:xx:test", None, 1)
    assert str(error.value).startswith("hub:ud:xx:test row 1: unknown UPOS tag 'NOM' (expected one of ADJ")


def test_errors_survive_pickling():
    error = ParallelDataError(Place("train.tsv", 4), "empty src text", "a sentence")

    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is ParallelDataError
    assert (str(copy), copy.path, copy.line) == ("train.tsv:4: empty src text (expected a sentence)", "train.tsv", 4)


# --------------------------------------------------------------------------- read_lines


def test_read_lines_drops_trailing_blank_lines_but_not_separators_inside_a_line(tmp_path):
    path = tmp_path / "x.txt"
    path.write_bytes("a\u2028b\x0cc\r\n\r\n  \n\n".encode())

    assert read_lines(path) == ["a\u2028b\x0cc"]  # str.splitlines would give three lines
