"""CoNLL-U reading and sub-token label alignment."""

from __future__ import annotations

import pytest

from hf_xalign.data.conllu import (
    GOOGLE_UNIVERSAL_TAG_MAP,
    UPOS_TAGS,
    CoNLLUError,
    align_labels_with_tokens,
    read_conllu,
    tokenize_and_align_labels,
)

SPANISH = """# newdoc id = d1
# sent_id = s1
# text = Vámonos al mar.
1-2\tVámonos\t_\t_\t_\t_\t_\t_\t_\t_
1\tVamos\tir\tVERB\t_\t_\t0\troot\t_\t_
2\tnos\tnosotros\tPRON\t_\t_\t1\tobj\t_\t_
3-4\tal\t_\t_\t_\t_\t_\t_\t_\t_
3\ta\ta\tADP\t_\t_\t5\tcase\t_\t_
4\tel\tel\tDET\t_\t_\t5\tdet\t_\t_
5\tmar\tmar\tNOUN\t_\t_\t1\tobl\t_\t_
5.1\tfue\tir\tVERB\t_\t_\t_\t_\t_\t_
6\t.\t.\tPUNCT\t_\t_\t1\tpunct\t_\tSpaceAfter=No

# sent_id = s2
# text = Hola
1\tHola\thola\tINTJ\t_\t_\t0\troot\t_\t_
"""


def write(tmp_path, text, name="t.conllu"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def tag_names(ids):
    return [UPOS_TAGS[i] for i in ids]


def test_words_skip_multiword_ranges_and_empty_nodes_and_comments(tmp_path):
    data = read_conllu(write(tmp_path, SPANISH), language="es")
    assert data[0]["words"] == ["Vamos", "nos", "a", "el", "mar", "."]
    assert tag_names(data[0]["upos"]) == ["VERB", "PRON", "ADP", "DET", "NOUN", "PUNCT"]
    assert (data[0]["sent_id"], data[0]["lang"]) == ("s1", "es")
    assert data[1]["words"] == ["Hola"] and tag_names(data[1]["upos"]) == ["INTJ"]


def test_directory_and_glob_read_every_file_in_order(tmp_path):
    write(tmp_path, SPANISH, "b.conllu")
    write(tmp_path, SPANISH.replace("s1", "x1").replace("s2", "x2"), "a.conllu")
    from_dir = read_conllu(tmp_path)
    from_glob = read_conllu(str(tmp_path / "*.conllu"))
    assert from_dir["sent_id"] == from_glob["sent_id"] == ["x1", "x2", "s1", "s2"]


def test_google_universal_tags_are_mapped(tmp_path):
    text = "1\tve\t_\tCONJ\t_\t_\t0\troot\t_\t_\n2\tde\t_\tPRT\t_\t_\t1\tdep\t_\t_\n3\t.\t_\t.\t_\t_\t1\tp\t_\t_\n"
    data = read_conllu(write(tmp_path, text), tag_map=GOOGLE_UNIVERSAL_TAG_MAP)
    assert tag_names(data[0]["upos"]) == ["CCONJ", "PART", "PUNCT"]


@pytest.mark.parametrize(
    "line, message",
    [
        ("2\tmar\tmar\tNOUN\t_\t_\t1\tobl\t_", r"t\.conllu:3: 9 tab-separated columns \(expected 10"),
        ("two\tmar\tmar\tNOUN\t_\t_\t1\tobl\t_\t_", r"t\.conllu:3: ID 'two' is not an integer"),
        ("2\tmar\tmar\tNOM\t_\t_\t1\tobl\t_\t_", r"t\.conllu:3: unknown UPOS tag 'NOM'.*tag_map="),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, line, message):
    text = "# sent_id = bad\n1\tel\tel\tDET\t_\t_\t2\tdet\t_\t_\n" + line + "\n"
    with pytest.raises(CoNLLUError, match=message):
        read_conllu(write(tmp_path, text))


def test_sentence_without_words_names_its_first_line(tmp_path):
    text = SPANISH + "\n# sent_id = empty\n# text = nothing here\n1-2\tdel\t_\t_\t_\t_\t_\t_\t_\t_\n"
    with pytest.raises(CoNLLUError, match=r"t\.conllu:18: sentence without words"):
        read_conllu(write(tmp_path, text))


def test_undecodable_bytes_name_the_file(tmp_path):
    path = tmp_path / "t.conllu"
    path.write_bytes(b"1\tca\xff\t_\tNOUN\t_\t_\t0\troot\t_\t_\n")
    with pytest.raises(CoNLLUError, match=r"t\.conllu:1: bytes b'\\xff' are not UTF-8"):
        read_conllu(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.conllu"):
        read_conllu(tmp_path / "nope.conllu")


def test_labels_sit_on_first_subtokens_only():
    # word ids of "<s> Va mos nos </s>": two sub-tokens for word 0
    word_ids = [None, 0, 0, 1, None]
    assert align_labels_with_tokens(word_ids, [15, 10]) == [-100, 15, -100, 10, -100]
    assert align_labels_with_tokens(word_ids, [15, 10], label_all_subtokens=True) == [-100, 15, 15, 10, -100]


def test_tokenized_labels_are_exactly_the_first_subtokens_of_words(tmp_path, tokenizer):
    text = "1\tthe\t_\tDET\t_\t_\t0\troot\t_\t_\n2\tgranda\t_\tADJ\t_\t_\t1\tx\t_\t_\n3\tperru\t_\tNOUN\t_\t_\t1\tx\t_\t_\n"
    data = tokenize_and_align_labels(read_conllu(write(tmp_path, text)), tokenizer)
    row = data[0]
    tokens = tokenizer.convert_ids_to_tokens(row["input_ids"])
    # Oracle: a sub-token starts a word iff it carries SentencePiece's word-start mark "▁".
    starts = [i for i, token in enumerate(tokens) if token.startswith("▁") and token != "▁"]
    if tokens.count("▁"):  # a lone "▁" piece starts the word and the next piece continues it
        starts = sorted(starts + [i for i, token in enumerate(tokens) if token == "▁"])
    labelled = [i for i, label in enumerate(row["labels"]) if label != -100]
    assert labelled == starts
    assert tag_names([row["labels"][i] for i in labelled]) == ["DET", "ADJ", "NOUN"]


def test_a_form_with_two_spaces_keeps_its_columns(tmp_path):
    # conllu.parse_line would also split on the double space and shift UPOS into LEMMA's place
    text = "1\t10  000\t10  000\tNUM\t_\t_\t0\troot\t_\t_\n2\tkm\tkm\tNOUN\t_\t_\t1\tx\t_\t_\n"
    data = read_conllu(write(tmp_path, text))
    assert data[0]["words"] == ["10  000", "km"]
    assert tag_names(data[0]["upos"]) == ["NUM", "NOUN"]


def test_hub_layout_maps_tag_names_in_any_order_and_drops_multiword_lines():
    import datasets

    from hf_xalign.data.conllu import treebank_from_dataset

    # The Hub's universal_dependencies order (NOUN first), with "_" for a multiword token's line
    hub_names = [
        "NOUN",
        "PUNCT",
        "ADP",
        "NUM",
        "SYM",
        "SCONJ",
        "ADJ",
        "PART",
        "DET",
        "CCONJ",
        "PROPN",
        "PRON",
        "X",
        "_",
        "ADV",
        "INTJ",
        "VERB",
        "AUX",
    ]
    features = datasets.Features(
        {
            "idx": datasets.Value("string"),
            "tokens": datasets.Sequence(datasets.Value("string")),
            "upos": datasets.Sequence(datasets.ClassLabel(names=hub_names)),
        }
    )
    hub = datasets.Dataset.from_dict(
        {"idx": ["s1"], "tokens": [["del", "de", "el", "mar"]], "upos": [[13, 2, 8, 0]]}, features=features
    )
    data = treebank_from_dataset(hub, language="es")
    assert data[0]["words"] == ["de", "el", "mar"]
    assert tag_names(data[0]["upos"]) == ["ADP", "DET", "NOUN"]
    assert (data[0]["sent_id"], data[0]["lang"]) == ("s1", "es")


def test_read_treebank_reads_lists_and_checks_hub_specs(tmp_path):
    from hf_xalign.data.conllu import read_treebank

    path = write(tmp_path, SPANISH)
    assert len(read_treebank([str(path), str(path)])) == 4
    with pytest.raises(ValueError, match="expected hub:PATH\\[@REVISION\\]\\[:CONFIG\\]:SPLIT"):
        read_treebank("hub:universal_dependencies")


def test_read_treebank_loads_hub_specs_with_load_hub_split(monkeypatch):
    import datasets

    from hf_xalign.data import hub
    from hf_xalign.data.conllu import read_treebank

    specs = []

    def fake_load_hub_split(spec):
        specs.append(spec)
        return datasets.Dataset.from_dict({"idx": ["h1"], "tokens": [["Hola"]], "upos": [["INTJ"]]})

    monkeypatch.setattr(hub, "load_hub_split", fake_load_hub_split)
    data = read_treebank("hub:universal_dependencies:es_ancora:test", language="es")
    assert specs == ["hub:universal_dependencies:es_ancora:test"]
    assert (data[0]["words"], tag_names(data[0]["upos"]), data[0]["sent_id"]) == (["Hola"], ["INTJ"], "h1")
