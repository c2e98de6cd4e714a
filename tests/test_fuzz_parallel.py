"""Fuzzed parallel-text reading (`load_parallel`): generated TSV (with and without a header), JSONL and
plain-text pair files read back exactly as generated; mutated ones are read, or raise a `ParallelDataError`
naming the file and a line of it (the property in `_fuzz.py`)."""

from __future__ import annotations

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
    separator_strategy,
    words_and_sentence,
    write_files,
)
from hypothesis import given
from hypothesis import strategies as st

from hf_xalign.data import ParallelDataError, load_parallel

# Language codes as files give them (padded ones are stripped; empty ones fall back to the reader's argument).
code_strategy = st.sampled_from(("", "en", " de", "fr ", "pt-BR", "zh_Hant"))
# The reader's `src_lang=` / `tgt_lang=` arguments, for pairs whose data names no language.
default_code_strategy = st.sampled_from((None, "xx", "yy"))
sentence_and_words_strategy = words_and_sentence()
OPTIONAL_TSV_COLUMNS = ("src_lang", "tgt_lang", "alignment")
# How a JSONL record gives an alignment: a Pharaoh string, a list of pairs, or no links in one of four ways.
JSON_ALIGNMENT_FORMS = ("string", "list", "absent", "null", "empty string", "empty list")


@st.composite
def sentence_pairs(draw) -> dict:
    """A pair of sentences, up to three word links between them (as `[i, j]` lists), and language codes."""
    src_words, src = draw(sentence_and_words_strategy)
    tgt_words, tgt = draw(sentence_and_words_strategy)
    link = st.tuples(st.integers(0, len(src_words) - 1), st.integers(0, len(tgt_words) - 1))
    links = [list(pair) for pair in draw(st.lists(link, max_size=3))]
    return {
        "src": src,
        "tgt": tgt,
        "alignment": links,
        "src_lang": draw(code_strategy),
        "tgt_lang": draw(code_strategy),
    }


def pharaoh(draw, links: list[list[int]]) -> str:
    """Links as Pharaoh text, `"0-0 1-2"`, with any whitespace between links and perhaps around them."""
    before, after = draw(padding_strategy)
    return before + draw(separator_strategy).join(f"{i}-{j}" for i, j in links) + after


def expected_row(pair: dict, default_src: str | None, default_tgt: str | None) -> dict:
    """The row `load_parallel` returns for a pair whose file gave the codes in `pair` ("" where it gave none):
    codes from the data win, stripped; else the reader's arguments; else ""."""
    return {
        "src": pair["src"],
        "tgt": pair["tgt"],
        "src_lang": pair["src_lang"].strip() or default_src or "",
        "tgt_lang": pair["tgt_lang"].strip() or default_tgt or "",
        "alignment": pair["alignment"],
    }


def without_codes(pair: dict, names: tuple[str, ...] = ("src_lang", "tgt_lang")) -> dict:
    """The pair as its file gives it when the file has no column or key for the codes in `names`."""
    return {**pair, **dict.fromkeys(names, "")}


def headerless_tsv(draw, pairs: list[dict]) -> tuple[str, list[dict]]:
    """`src<TAB>tgt[<TAB>alignment]` lines (the alignment field may be left out where there are no links); the
    pairs as the file gives them."""
    lines = []
    for pair in pairs:
        fields = [pair["src"], pair["tgt"]]
        if pair["alignment"] or draw(st.booleans()):
            fields.append(pharaoh(draw, pair["alignment"]))
        lines.append("\t".join(fields))
    return "\n".join(lines), [without_codes(pair) for pair in pairs]


def headed_tsv(draw, pairs: list[dict]) -> tuple[str, list[dict]]:
    """A header naming `src`, `tgt` and some optional columns in any order (padded names too), then the lines."""
    optional = [name for name in OPTIONAL_TSV_COLUMNS if draw(st.booleans())]
    if any(pair["alignment"] for pair in pairs) and "alignment" not in optional:
        optional.append("alignment")
    columns = draw(st.permutations(["src", "tgt", *optional]))
    before, after = draw(padding_strategy)
    lines = ["\t".join(before + name + after for name in columns)]
    for pair in pairs:
        values = {**pair, "alignment": pharaoh(draw, pair["alignment"])}
        lines.append("\t".join(values[name] for name in columns))
    absent = tuple(name for name in ("src_lang", "tgt_lang") if name not in columns)
    return "\n".join(lines), [without_codes(pair, absent) for pair in pairs]


def jsonl(draw, pairs: list[dict]) -> tuple[str, list[dict]]:
    """One object per line, keys in any order, optional keys absent or null, an extra key, ASCII-escaped or not."""
    ensure_ascii = draw(st.booleans())
    lines, as_written = [], []
    for pair in pairs:
        record = {"src": pair["src"], "tgt": pair["tgt"], "id": draw(st.integers(-5, 5))}
        for name in ("src_lang", "tgt_lang"):
            form = draw(st.sampled_from(("code", "absent", "null")))
            if form == "code":
                record[name] = pair[name]
            elif form == "null":
                record[name] = None
        as_written.append(without_codes(pair, tuple(name for name in ("src_lang", "tgt_lang") if not record.get(name))))
        links = pair["alignment"]
        form = draw(st.sampled_from(("string", "list") if links else JSON_ALIGNMENT_FORMS))
        alignment = {"string": pharaoh(draw, links), "list": links, "null": None, "empty string": "", "empty list": []}
        if form != "absent":
            record["alignment"] = alignment[form]
        keys = draw(st.permutations(list(record)))
        lines.append(json.dumps({key: record[key] for key in keys}, ensure_ascii=ensure_ascii))
    return "\n".join(lines), as_written


FILE_FORMATS = {"pairs.tsv": headerless_tsv, "headed.tsv": headed_tsv, "pairs.jsonl": jsonl}


@st.composite
def parallel_sources(draw) -> GeneratedSource:
    """One to three pairs in one of the four file formats, and the rows `load_parallel` must return."""
    pairs = draw(st.lists(sentence_pairs(), min_size=1, max_size=3))
    default_src, default_tgt = draw(default_code_strategy), draw(default_code_strategy)
    name = draw(st.sampled_from((*FILE_FORMATS, "train.en")))
    ending = draw(file_ending_strategy)
    if name == "train.en":  # Moses style: a sentence per line; the codes are the arguments, else the suffixes
        files = {name: "\n".join(pair["src"] for pair in pairs) + ending}
        files["train.de"] = "\n".join(pair["tgt"] for pair in pairs) + draw(file_ending_strategy)
        src_lang = "en" if default_src is None else default_src
        tgt_lang = "de" if default_tgt is None else default_tgt
        expected = [{**pair, "src_lang": src_lang, "tgt_lang": tgt_lang, "alignment": []} for pair in pairs]
        read = lambda paths: load_parallel(tuple(paths), src_lang=default_src, tgt_lang=default_tgt)
        return GeneratedSource(files, read, expected, raw_values=True)
    text, as_written = FILE_FORMATS[name](draw, pairs)
    read = lambda paths: load_parallel(paths[0], src_lang=default_src, tgt_lang=default_tgt)
    expected = [expected_row(pair, default_src, default_tgt) for pair in as_written]
    return GeneratedSource({name: text + ending}, read, expected, raw_values=name.endswith(".tsv"))


def rows(dataset) -> list[dict]:
    return [dict(row) for row in dataset]


@VALID_SETTINGS
@given(source=parallel_sources(), data=st.data())
def test_generated_parallel_files_read_back_exactly(tmp_path_factory, source, data):
    paths = write_files(tmp_path_factory, data.draw(saved_files(source)))

    with hard_time_limit():
        assert rows(source.read(paths)) == source.expected


@MUTATED_SETTINGS
@given(source=parallel_sources(), data=st.data())
def test_mutated_parallel_files_read_or_name_file_and_line(tmp_path_factory, source, data):
    paths = write_files(tmp_path_factory, data.draw(mutated_files(source)))

    pairs = read_or_check_error(lambda: source.read(paths), paths, ParallelDataError)
    if pairs is not None:  # every pair has two sentences, links inside them, and raw text came from the files
        text = decoded_text(paths) if source.raw_values else None
        for pair in rows(pairs):
            assert pair["src"].strip() and pair["tgt"].strip()
            assert all(
                0 <= i < len(pair["src"].split()) and 0 <= j < len(pair["tgt"].split()) for i, j in pair["alignment"]
            )
            assert text is None or (pair["src"] in text and pair["tgt"] in text)
