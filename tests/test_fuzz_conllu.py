"""Fuzzed CoNLL-U reading (`read_conllu`): generated treebanks read back exactly as generated; mutated ones are
read, or raise a `CoNLLUError` naming the file and a line of it (the property in `_fuzz.py`)."""

from __future__ import annotations

import itertools

from _fuzz import (
    MUTATED_SETTINGS,
    VALID_SETTINGS,
    WORDS,
    GeneratedSource,
    decoded_text,
    file_ending_strategy,
    hard_time_limit,
    mutated_files,
    read_or_check_error,
    saved_files,
    word_strategy,
    write_files,
)
from hypothesis import given
from hypothesis import strategies as st

from hf_xalign.data.conllu import UPOS_TAGS, CoNLLUError, read_conllu

FILE_NAME = "t.conllu"
LANGUAGE = "xx"
# FORMs: words, and a few with spaces inside (UD allows them; the reader splits columns on tabs only).
form_strategy = st.sampled_from((*WORDS, "10 000", "10  000", "New York", "a\u00a0b"))
# LEMMA (`None`: the form) and the six columns after UPOS, which the reader ignores: one draw for a sentence.
other_columns_strategy = st.sampled_from(
    (
        ("_", "_", "_", "_", "_", "_", "_"),
        (None, "_", "_", "0", "root", "_", "_"),
        (None, "NN", "Number=Sing", "2", "nsubj", "2:nsubj", "SpaceAfter=No"),
        ("_", "X", "_", "1", "dep", "_", "Gloss=a|b"),
    )
)
sent_id_strategy = st.none() | word_strategy
upos_strategy = st.sampled_from(UPOS_TAGS)
other_comments_strategy = st.lists(
    st.sampled_from(("# text = {}", "# newdoc id = {}", "# newpar", "#", "# translit = {}")), max_size=2
)


def _token_id_layouts(max_words: int = 4) -> tuple[tuple[str, ...], ...]:
    """Every ID column of a sentence of up to `max_words` words: word ids 1..n, a two-word multiword token
    `i-(i+1)` before its first word, an empty node `i.1` after its word (`0.1` before the first word).

    Precomputed, shortest first, so that a sentence's layout is one draw and shrinks toward one word.
    """
    layouts = set()
    for n_words in range(1, max_words + 1):
        # Per word: 0 nothing else, 1 a multiword token starting at it (if one fits), 2 an empty node after it;
        # the extra last entry puts an empty node 0.1 first.
        for extras in itertools.product((0, 1, 2), repeat=n_words + 1):
            ids = ["0.1"] if extras[n_words] == 2 else []
            range_end = 0  # multiword tokens do not overlap
            for word in range(1, n_words + 1):
                if extras[word - 1] == 1 and range_end < word < n_words:
                    range_end = word + 1
                    ids.append(f"{word}-{range_end}")
                ids.append(str(word))
                if extras[word - 1] == 2:
                    ids.append(f"{word}.1")
            layouts.add(tuple(ids))
    return tuple(sorted(layouts, key=lambda ids: (len(ids), ids)))


TOKEN_ID_LAYOUTS = _token_id_layouts()
token_ids_strategy = st.sampled_from(TOKEN_ID_LAYOUTS)


@st.composite
def sentence_lines(draw) -> tuple[list[str], str | None, list[str], list[str]]:
    """One sentence: its lines (comments in any order, then tokens), its `sent_id` (`None` when it has none),
    and its words' forms and UPOS tags."""
    sent_id = draw(sent_id_strategy)
    lines = [template.format(draw(word_strategy)) for template in draw(other_comments_strategy)]
    if sent_id is not None:
        lines.insert(draw(st.integers(0, len(lines))), f"# sent_id = {sent_id}")

    token_ids = draw(token_ids_strategy)
    n_words = sum(token_id.isdigit() for token_id in token_ids)
    forms = [draw(form_strategy) for _ in range(n_words)]
    tags = [draw(upos_strategy) for _ in range(n_words)]
    lemma, *other_columns = draw(other_columns_strategy)
    for token_id in token_ids:
        if token_id.isdigit():
            form, upos = forms[int(token_id) - 1], tags[int(token_id) - 1]
        elif "-" in token_id:  # the multiword token's surface form, as "del" for "de el"
            first, last = map(int, token_id.split("-"))
            form, upos = "".join(forms[first - 1 : last]), "_"
        else:
            form, upos = "_", "_"
        lines.append("\t".join([token_id, form, form if lemma is None else lemma, upos, *other_columns]))
    return lines, sent_id, forms, tags


@st.composite
def treebanks(draw) -> GeneratedSource:
    """A CoNLL-U file of one to three sentences, one or two blank lines between them, and the dataset it holds."""
    lines: list[str] = []
    expected: dict[str, list] = {"words": [], "upos": [], "lang": [], "sent_id": []}
    for index in range(draw(st.integers(1, 3))):
        if index:
            lines += [""] * draw(st.integers(1, 2))
        first_line = len(lines) + 1
        sentence, sent_id, forms, tags = draw(sentence_lines())
        lines += sentence
        expected["words"].append(forms)
        expected["upos"].append([UPOS_TAGS.index(tag) for tag in tags])
        expected["lang"].append(LANGUAGE)
        expected["sent_id"].append(sent_id if sent_id is not None else f"{FILE_NAME}:{first_line}")
    text = "\n".join(lines) + draw(file_ending_strategy)
    return GeneratedSource({FILE_NAME: text}, lambda paths: read_conllu(paths[0], language=LANGUAGE), expected)


@VALID_SETTINGS
@given(source=treebanks(), data=st.data())
def test_generated_treebanks_read_back_exactly(tmp_path_factory, source, data):
    paths = write_files(tmp_path_factory, data.draw(saved_files(source)))

    with hard_time_limit():
        assert source.read(paths).to_dict() == source.expected


@MUTATED_SETTINGS
@given(source=treebanks(), data=st.data())
def test_mutated_treebanks_read_or_name_file_and_line(tmp_path_factory, source, data):
    paths = write_files(tmp_path_factory, data.draw(mutated_files(source)))

    treebank = read_or_check_error(lambda: source.read(paths), paths, CoNLLUError)
    if treebank is not None:  # what was read came from the file, a word per line at most
        text = decoded_text(paths)
        words = [word for sentence in treebank["words"] for word in sentence]
        assert all(word in text for word in words)
        assert len(words) <= text.count("\n") + 1
