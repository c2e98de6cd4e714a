# Copyright 2025 The hf-xalign Authors.
# Licensed under the Apache License, Version 2.0.
"""Specification of `hf_xalign.data.parallel`: what each reader returns, and how each bad input is reported."""

import json
import re
from pathlib import Path

import datasets
import pytest

from hf_xalign.data import PARALLEL_FEATURES, ParallelDataError, load_parallel, parse_alignment
from hf_xalign.data.parallel import hold_out_pairs, language_pair_counts


def write_text(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def write_jsonl(path, records):
    return write_text(path, "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records))


def rows(dataset):
    return [dict(row) for row in dataset]


def place(path, line):
    """The "{path}:{line}:" prefix every file error starts with, escaped for `pytest.raises(match=...)`."""
    return re.escape(f"{path.name}:{line}:")


# --------------------------------------------------------------------------- readers


def test_tsv_two_columns(tmp_path):
    path = write_text(tmp_path / "pairs.tsv", "Hello world\tHallo Welt\nGood morning\tGuten Morgen\n")

    assert rows(load_parallel(path)) == [
        {"src": "Hello world", "tgt": "Hallo Welt", "src_lang": "", "tgt_lang": "", "alignment": []},
        {"src": "Good morning", "tgt": "Guten Morgen", "src_lang": "", "tgt_lang": "", "alignment": []},
    ]


def test_tsv_three_columns_with_alignment(tmp_path):
    path = write_text(tmp_path / "pairs.tsv", "the red house\tla casa roja\t0-0 1-2 2-1\nyes\tsí\t\n")

    assert rows(load_parallel(path)) == [
        {
            "src": "the red house",
            "tgt": "la casa roja",
            "src_lang": "",
            "tgt_lang": "",
            "alignment": [[0, 0], [1, 2], [2, 1]],
        },
        {"src": "yes", "tgt": "sí", "src_lang": "", "tgt_lang": "", "alignment": []},
    ]


def test_tsv_header_with_language_columns_sets_column_order(tmp_path):
    path = write_text(
        tmp_path / "pairs.tsv",
        "src_lang\ttgt_lang\tsrc\ttgt\nen\tde\tHello world\tHallo Welt\nen\tfr\tHello world\tBonjour le monde\n",
    )

    assert rows(load_parallel(path)) == [
        {"src": "Hello world", "tgt": "Hallo Welt", "src_lang": "en", "tgt_lang": "de", "alignment": []},
        {"src": "Hello world", "tgt": "Bonjour le monde", "src_lang": "en", "tgt_lang": "fr", "alignment": []},
    ]


def test_tsv_header_with_alignment_column_first(tmp_path):
    path = write_text(tmp_path / "pairs.tsv", "alignment\ttgt\tsrc\n0-1 1-0\tWelt Hallo\tHello world\n")

    assert rows(load_parallel(path)) == [
        {"src": "Hello world", "tgt": "Welt Hallo", "src_lang": "", "tgt_lang": "", "alignment": [[0, 1], [1, 0]]},
    ]


def test_tsv_fields_are_raw_text_without_csv_quoting(tmp_path):
    path = write_text(tmp_path / "pairs.tsv", '"Quoted" words, here\t„Zitierte“ Wörter "hier\n')

    assert rows(load_parallel(path))[0]["src"] == '"Quoted" words, here'
    assert rows(load_parallel(path))[0]["tgt"] == '„Zitierte“ Wörter "hier'


def test_tsv_trailing_blank_lines_and_crlf_are_ignored(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_bytes(b"Hello world\tHallo Welt\r\n\r\n\n  \n")

    assert rows(load_parallel(path)) == [
        {"src": "Hello world", "tgt": "Hallo Welt", "src_lang": "", "tgt_lang": "", "alignment": []},
    ]


def test_jsonl_with_list_and_string_alignments(tmp_path):
    path = write_jsonl(
        tmp_path / "pairs.jsonl",
        [
            {"src": "the red house", "tgt": "la casa roja", "alignment": [[0, 0], [1, 2], [2, 1]]},
            {"src": "the red house", "tgt": "la casa roja", "alignment": "0-0 1-2 2-1"},
            {"src": "Hello world", "tgt": "Hallo Welt", "src_lang": "en", "tgt_lang": "de"},
        ],
    )

    assert rows(load_parallel(path)) == [
        {
            "src": "the red house",
            "tgt": "la casa roja",
            "src_lang": "",
            "tgt_lang": "",
            "alignment": [[0, 0], [1, 2], [2, 1]],
        },
        {
            "src": "the red house",
            "tgt": "la casa roja",
            "src_lang": "",
            "tgt_lang": "",
            "alignment": [[0, 0], [1, 2], [2, 1]],
        },
        {"src": "Hello world", "tgt": "Hallo Welt", "src_lang": "en", "tgt_lang": "de", "alignment": []},
    ]


def test_plain_text_pair_takes_languages_from_suffixes(tmp_path):
    src_path = write_text(tmp_path / "train.en", "Hello world\nGood morning\n")
    tgt_path = write_text(tmp_path / "train.de", "Hallo Welt\nGuten Morgen\n")

    assert rows(load_parallel((src_path, tgt_path))) == [
        {"src": "Hello world", "tgt": "Hallo Welt", "src_lang": "en", "tgt_lang": "de", "alignment": []},
        {"src": "Good morning", "tgt": "Guten Morgen", "src_lang": "en", "tgt_lang": "de", "alignment": []},
    ]


def test_plain_text_pair_accepts_str_paths_and_explicit_languages(tmp_path):
    src_path = write_text(tmp_path / "train.src", "Hello world\n")
    tgt_path = write_text(tmp_path / "train.tgt", "Hallo Welt\n")

    pairs = load_parallel((str(src_path), str(tgt_path)), src_lang="en", tgt_lang="de")

    assert rows(pairs) == [
        {"src": "Hello world", "tgt": "Hallo Welt", "src_lang": "en", "tgt_lang": "de", "alignment": []}
    ]


def test_dataset_input_keeps_rows_and_parses_string_alignments():
    dataset = datasets.Dataset.from_dict(
        {
            "src": ["the red house", "Hello world"],
            "tgt": ["la casa roja", "Hallo Welt"],
            "alignment": ["0-0 1-2 2-1", ""],
            "id": [7, 8],
        }
    )

    assert rows(load_parallel(dataset)) == [
        {
            "src": "the red house",
            "tgt": "la casa roja",
            "src_lang": "",
            "tgt_lang": "",
            "alignment": [[0, 0], [1, 2], [2, 1]],
        },
        {"src": "Hello world", "tgt": "Hallo Welt", "src_lang": "", "tgt_lang": "", "alignment": []},
    ]


def test_keyword_languages_fill_only_missing_codes(tmp_path):
    path = write_text(
        tmp_path / "pairs.tsv",
        "src\ttgt\ttgt_lang\nHello world\tHallo Welt\tde\nHello world\tBonjour le monde\t\n",
    )

    pairs = load_parallel(path, src_lang="en", tgt_lang="fr")

    assert pairs["src_lang"] == ["en", "en"]
    assert pairs["tgt_lang"] == ["de", "fr"]


def test_every_reader_returns_the_same_features(tmp_path):
    tsv_path = write_text(tmp_path / "pairs.tsv", "Hello world\tHallo Welt\n")
    jsonl_path = write_jsonl(tmp_path / "pairs.jsonl", [{"src": "Hello world", "tgt": "Hallo Welt"}])
    text_paths = (write_text(tmp_path / "t.en", "Hello world\n"), write_text(tmp_path / "t.de", "Hallo Welt\n"))
    dataset = datasets.Dataset.from_dict({"src": ["Hello world"], "tgt": ["Hallo Welt"]})

    for source in (tsv_path, jsonl_path, text_paths, dataset):
        pairs = load_parallel(source)
        assert pairs.column_names == ["src", "tgt", "src_lang", "tgt_lang", "alignment"]
        assert pairs.features == PARALLEL_FEATURES


# --------------------------------------------------------------------------- lists of sources


def test_a_list_of_sources_is_the_concatenation_of_each_source(tmp_path):
    tsv_path = write_text(tmp_path / "a.tsv", "Hello world\tHallo Welt\nGood morning\tGuten Morgen\n")
    jsonl_path = write_jsonl(tmp_path / "b.jsonl", [{"src": "yes", "tgt": "oui", "src_lang": "en", "tgt_lang": "fr"}])
    text_pair = (write_text(tmp_path / "x.en", "Good night\n"), write_text(tmp_path / "x.tr", "İyi geceler\n"))

    combined = load_parallel([tsv_path, jsonl_path, text_pair])

    separately = [load_parallel(source) for source in (tsv_path, jsonl_path, text_pair)]
    assert rows(combined) == rows(datasets.concatenate_datasets(separately))
    assert combined.features == PARALLEL_FEATURES
    assert combined["tgt"] == ["Hallo Welt", "Guten Morgen", "oui", "İyi geceler"]
    assert combined["tgt_lang"] == ["", "", "fr", "tr"]


def test_keyword_languages_fill_the_gaps_of_every_source_in_a_list(tmp_path):
    tsv_path = write_text(tmp_path / "a.tsv", "Hello world\tHallo Welt\n")
    text_pair = (write_text(tmp_path / "x.en", "yes\n"), write_text(tmp_path / "x.de", "ja\n"))

    pairs = load_parallel([tsv_path, text_pair], src_lang="en", tgt_lang="de")

    assert pairs["src_lang"] == ["en", "en"] and pairs["tgt_lang"] == ["de", "de"]


def test_a_two_element_list_inside_a_list_is_a_text_pair(tmp_path):
    # YAML configs have no tuples: [[train.en, train.de]] names one pair.
    src_path, tgt_path = write_text(tmp_path / "t.en", "yes\n"), write_text(tmp_path / "t.de", "ja\n")

    assert rows(load_parallel([[str(src_path), str(tgt_path)]])) == rows(load_parallel((src_path, tgt_path)))


def test_a_top_level_list_of_two_text_files_is_two_sources_not_a_pair(tmp_path):
    src_path, tgt_path = write_text(tmp_path / "t.en", "yes\n"), write_text(tmp_path / "t.de", "ja\n")

    with pytest.raises(ValueError, match=r"t\.en: unsupported file type '\.en' .*a tuple of two line-aligned"):
        load_parallel([src_path, tgt_path])


def test_an_empty_list_is_an_error():
    with pytest.raises(ValueError, match="no source given"):
        load_parallel([])


def test_hub_specs_in_a_list_go_to_load_hub_split(tmp_path, monkeypatch):
    from hf_xalign.data import hub

    specs = []

    def fake_load_hub_split(spec):
        specs.append(spec)
        return datasets.Dataset.from_dict({"src": ["Thank you"], "tgt": ["Danke"], "tgt_lang": ["de"]})

    monkeypatch.setattr(hub, "load_hub_split", fake_load_hub_split)
    tsv_path = write_text(tmp_path / "a.tsv", "Hello world\tHallo Welt\n")

    pairs = load_parallel([tsv_path, "hub:my/pairs:en-de:train"])

    assert specs == ["hub:my/pairs:en-de:train"]
    assert rows(pairs) == [
        {"src": "Hello world", "tgt": "Hallo Welt", "src_lang": "", "tgt_lang": "", "alignment": []},
        {"src": "Thank you", "tgt": "Danke", "src_lang": "", "tgt_lang": "de", "alignment": []},
    ]


def test_an_error_in_a_hub_dataset_names_the_spec_and_row(monkeypatch):
    from hf_xalign.data import hub

    bad = datasets.Dataset.from_dict({"src": ["Thank you", "Bye"], "tgt": ["Danke", ""]})
    monkeypatch.setattr(hub, "load_hub_split", lambda spec: bad)

    with pytest.raises(ParallelDataError, match=r"^hub:my/pairs:train row 1: empty tgt text") as error:
        load_parallel(["hub:my/pairs:train"])
    assert (error.value.path, error.value.row) == ("hub:my/pairs:train", 1)


def test_the_hub_translation_layout_reads_as_src_and_tgt_in_the_features_order():
    features = datasets.Features({"translation": datasets.Translation(languages=["de", "en"])})
    opus_like = datasets.Dataset.from_dict(
        {"translation": [{"de": "Danke", "en": "Thank you"}, {"de": "Hallo Welt", "en": "Hello world"}]},
        features=features,
    )
    assert rows(load_parallel(opus_like)) == [
        {"src": "Danke", "tgt": "Thank you", "src_lang": "de", "tgt_lang": "en", "alignment": []},
        {"src": "Hallo Welt", "tgt": "Hello world", "src_lang": "de", "tgt_lang": "en", "alignment": []},
    ]


def test_a_hub_split_may_be_sliced():
    from hf_xalign.data.hub import HubSource, parse_hub_spec

    assert parse_hub_spec("hub:Helsinki-NLP/opus-100:de-en:train[:50000]") == HubSource(
        "Helsinki-NLP/opus-100", "train[:50000]", "de-en"
    )
    assert parse_hub_spec("hub:my/pairs:validation[10%:20%]") == HubSource("my/pairs", "validation[10%:20%]")
    assert parse_hub_spec("hub:my/pairs:en-de:test") == HubSource("my/pairs", "test", "en-de")
    for bad in ("hub:my/pairs", "hub:my/pairs:train[:5", "hub:a:b:c:train"):
        with pytest.raises(ValueError, match="expected hub:PATH"):
            parse_hub_spec(bad)


# --------------------------------------------------------------------------- parse_alignment


def test_parse_alignment_accepts_string_and_list_forms():
    assert parse_alignment("0-0 1-2 2-1", n_src=3, n_tgt=3, where="x") == [[0, 0], [1, 2], [2, 1]]
    assert parse_alignment([[0, 0], (1, 2)], n_src=3, n_tgt=3, where="x") == [[0, 0], [1, 2]]
    assert parse_alignment("", n_src=3, n_tgt=3, where="x") == []


def test_parse_alignment_error_starts_with_where():
    with pytest.raises(ParallelDataError, match=r"^dev\.tsv:4: malformed alignment link '0:1'"):
        parse_alignment("0:1", n_src=3, n_tgt=3, where="dev.tsv:4")


# --------------------------------------------------------------------------- errors


def test_parallel_data_error_is_a_value_error():
    assert issubclass(ParallelDataError, ValueError)


def test_empty_src_is_an_error(tmp_path):
    path = write_text(tmp_path / "pairs.tsv", "Hello world\tHallo Welt\n   \tGuten Morgen\n")

    with pytest.raises(ParallelDataError, match=place(path, 2) + r" empty src text \(expected"):
        load_parallel(path)


def test_empty_tgt_is_an_error(tmp_path):
    path = write_jsonl(
        tmp_path / "pairs.jsonl", [{"src": "Hello world", "tgt": "Hallo Welt"}, {"src": "Good morning", "tgt": ""}]
    )

    with pytest.raises(ParallelDataError, match=place(path, 2) + r" empty tgt text \(expected"):
        load_parallel(path)


def test_blank_line_in_the_middle_is_an_empty_pair(tmp_path):
    path = write_text(tmp_path / "pairs.tsv", "Hello world\tHallo Welt\n\nGood morning\tGuten Morgen\n")

    with pytest.raises(ParallelDataError, match=place(path, 2) + r" blank line \(expected one pair per line\)"):
        load_parallel(path)


def test_wrong_column_count_is_an_error(tmp_path):
    path = write_text(tmp_path / "pairs.tsv", "Hello world\tHallo Welt\nGood morning\tGuten Morgen\t0-0\textra\n")

    with pytest.raises(ParallelDataError, match=place(path, 2) + r" 4 tab-separated fields \(expected 2 or 3"):
        load_parallel(path)


def test_wrong_column_count_under_a_header_is_an_error(tmp_path):
    path = write_text(
        tmp_path / "pairs.tsv", "src_lang\ttgt_lang\tsrc\ttgt\nen\tde\tHello world\tHallo Welt\nHello\tHallo\n"
    )

    with pytest.raises(ParallelDataError, match=place(path, 3) + r" 2 tab-separated fields \(expected 4"):
        load_parallel(path)


def test_undecodable_bytes_are_an_error(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_bytes(b"Hello world\tHallo Welt\n" + b"Caf\xe9 latte\tMilchkaffee\n")

    with pytest.raises(
        ParallelDataError, match=place(path, 2) + r" bytes b'\\xe9' are not UTF-8 \(expected UTF-8 text\)"
    ):
        load_parallel(path)


def test_invalid_json_is_an_error(tmp_path):
    path = write_text(tmp_path / "pairs.jsonl", '{"src": "Hello world", "tgt": "Hallo Welt"}\n{"src": "Hello", \n')

    with pytest.raises(ParallelDataError, match=place(path, 2) + r" invalid JSON"):
        load_parallel(path)


def test_json_that_is_not_an_object_is_an_error(tmp_path):
    path = write_text(tmp_path / "pairs.jsonl", '["Hello world", "Hallo Welt"]\n')

    with pytest.raises(ParallelDataError, match=place(path, 1) + r" JSON list is not an object"):
        load_parallel(path)


def test_json_missing_key_is_an_error(tmp_path):
    path = write_jsonl(tmp_path / "pairs.jsonl", [{"src": "Hello world", "target": "Hallo Welt"}])

    with pytest.raises(
        ParallelDataError, match=place(path, 1) + r" missing key 'tgt' \(expected keys 'src' and 'tgt'\)"
    ):
        load_parallel(path)


def test_json_non_string_value_is_an_error(tmp_path):
    path = write_jsonl(tmp_path / "pairs.jsonl", [{"src": "Hello world", "tgt": 42}])

    with pytest.raises(
        ParallelDataError, match=place(path, 1) + r" tgt is of type int \(42\) \(expected a non-empty string"
    ):
        load_parallel(path)


def test_malformed_alignment_link_is_an_error(tmp_path):
    path = write_text(tmp_path / "pairs.tsv", "the red house\tla casa roja\t0-0 1:2\n")

    with pytest.raises(ParallelDataError, match=place(path, 1) + r" malformed alignment link '1:2' \(expected 'i-j'"):
        load_parallel(path)


def test_malformed_alignment_link_in_list_form_is_an_error(tmp_path):
    path = write_jsonl(
        tmp_path / "pairs.jsonl", [{"src": "the red house", "tgt": "la casa roja", "alignment": [[0, 0, 1]]}]
    )

    with pytest.raises(ParallelDataError, match=place(path, 1) + r" malformed alignment link \[0, 0, 1\]"):
        load_parallel(path)


def test_negative_alignment_index_is_an_error(tmp_path):
    path = write_jsonl(
        tmp_path / "pairs.jsonl", [{"src": "the red house", "tgt": "la casa roja", "alignment": [[0, -1]]}]
    )

    with pytest.raises(ParallelDataError, match=place(path, 1) + r" negative index in alignment link '0--1'"):
        load_parallel(path)


def test_negative_alignment_index_in_string_form_is_an_error(tmp_path):
    path = write_text(tmp_path / "pairs.tsv", "the red house\tla casa roja\t-1-0\n")

    with pytest.raises(ParallelDataError, match=place(path, 1) + r" negative index in alignment link '-1-0'"):
        load_parallel(path)


def test_alignment_source_index_out_of_range_is_an_error(tmp_path):
    path = write_text(tmp_path / "pairs.tsv", "Hello world\tHallo Welt\t0-0\nthe red house\tla casa roja\t3-0\n")

    with pytest.raises(
        ParallelDataError,
        match=place(path, 2) + r" .*source word 3, but the source has 3 words \(expected a source index below 3\)",
    ):
        load_parallel(path)


def test_alignment_target_index_out_of_range_is_an_error(tmp_path):
    path = write_text(tmp_path / "pairs.tsv", "the red house\tla casa\t2-2\n")

    with pytest.raises(
        ParallelDataError,
        match=place(path, 1) + r" .*target word 2, but the target has 2 words \(expected a target index below 2\)",
    ):
        load_parallel(path)


def test_plain_text_pair_with_different_line_counts_names_both_files(tmp_path):
    src_path = write_text(tmp_path / "train.en", "Hello world\nGood morning\nGood night\n")
    tgt_path = write_text(tmp_path / "train.de", "Hallo Welt\nGuten Morgen\n")

    with pytest.raises(ParallelDataError, match=place(src_path, 3) + r" .*train\.de ends at line 2") as error:
        load_parallel((src_path, tgt_path))
    assert "same number of lines" in str(error.value)


def test_file_with_no_pairs_is_an_error(tmp_path):
    path = write_text(tmp_path / "pairs.tsv", "\n\n")

    with pytest.raises(ParallelDataError, match=place(path, 1) + r" file has no pairs"):
        load_parallel(path)


def test_header_without_pairs_is_an_error(tmp_path):
    path = write_text(tmp_path / "pairs.tsv", "src\ttgt\n")

    with pytest.raises(ParallelDataError, match=place(path, 2) + r" file has no pairs"):
        load_parallel(path)


def test_plain_text_pair_of_empty_files_is_an_error(tmp_path):
    src_path = write_text(tmp_path / "train.en", "")
    tgt_path = write_text(tmp_path / "train.de", "")

    with pytest.raises(ParallelDataError, match=place(src_path, 1) + r" file has no pairs"):
        load_parallel((src_path, tgt_path))


def test_dataset_missing_tgt_column_is_an_error():
    dataset = datasets.Dataset.from_dict({"src": ["Hello world"], "target": ["Hallo Welt"]})

    with pytest.raises(ParallelDataError, match=r"^dataset: missing column 'tgt' \(expected columns src, tgt"):
        load_parallel(dataset)


def test_dataset_row_errors_name_the_row():
    dataset = datasets.Dataset.from_dict({"src": ["Hello world", "Good morning"], "tgt": ["Hallo Welt", " "]})

    with pytest.raises(ParallelDataError, match=r"^dataset row 1: empty tgt text"):
        load_parallel(dataset)


def test_missing_file_raises_file_not_found_naming_the_path(tmp_path):
    path = tmp_path / "absent.tsv"

    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        load_parallel(path)


# --------------------------------------------------------------------------- shipped data

DJANGO_PARALLEL_DIR = Path(__file__).resolve().parents[1] / "recipes" / "data" / "django" / "parallel"


@pytest.mark.parametrize("path", sorted(DJANGO_PARALLEL_DIR.glob("en-*.tsv")), ids=lambda path: path.name)
def test_shipped_django_pairs_load_with_english_source(path):
    pairs = load_parallel(path)

    assert len(pairs) > 0
    assert set(pairs["src_lang"]) == {"en"}
    assert len(set(pairs["tgt_lang"])) == 1


def test_drop_pairs_containing_matches_texts_whatever_their_spacing():
    from hf_xalign.data import drop_pairs_containing

    pairs = load_parallel(
        datasets.Dataset.from_dict(
            {"src": ["Enter a name.", "Save", "Delete"], "tgt": ["Entrez un nom.", "Enregistrer", "Supprimer"]}
        )
    )
    kept = drop_pairs_containing(pairs, ["Entrez un nom .", "Delete"])  # a treebank's words, a raw source
    assert kept["src"] == ["Save"]


def test_hold_out_pairs_per_language_pair_is_seeded_and_disjoint():
    rows = [("en", "fr", i) for i in range(10)] + [("en", "de", i) for i in range(3)] + [("en", "tr", 0)]
    pairs = datasets.Dataset.from_dict(
        {
            "src": [f"s{lang}{i}" for _, lang, i in rows],
            "tgt": [f"t{lang}{i}" for _, lang, i in rows],
            "src_lang": [src for src, _, _ in rows],
            "tgt_lang": [tgt for _, tgt, _ in rows],
        }
    )
    kept, held = hold_out_pairs(pairs, per_language_pair=4, seed=0)
    # en-fr: 4 of 10; en-de: at most half of 3 is 1 < 2, so none; en-tr: a single pair, none
    assert language_pair_counts(held) == {"en-fr": 4}
    assert sorted([*kept["src"], *held["src"]]) == sorted(pairs["src"]) and not set(kept["src"]) & set(held["src"])
    assert list(hold_out_pairs(pairs, per_language_pair=4, seed=0)[1]["src"]) == list(
        held["src"]
    )  # a rerun holds out the same
    assert list(hold_out_pairs(pairs, per_language_pair=4, seed=1)[1]["src"]) != list(held["src"])
    with pytest.raises(ValueError, match="per_language_pair must be >= 2"):
        hold_out_pairs(pairs, per_language_pair=1, seed=0)


def test_language_pair_counts_of_a_dataset_without_language_columns():
    parallel = datasets.Dataset.from_dict({"src": ["a", "b", "c"], "tgt": ["x", "y", "z"]})
    assert language_pair_counts(parallel) == {"?-?": 3}
