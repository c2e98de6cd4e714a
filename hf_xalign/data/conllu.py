"""Universal Dependencies treebanks (CoNLL-U) for POS tagging, read with the `conllu` package.

Words are the lines with an integer ID: multiword-token ranges (`1-2`) and empty nodes
(`8.1`) are not words to label. Tags are the 17 UD UPOS tags, the same ids in every
language, so a tagger trained on one language can be evaluated on any other.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import datasets

from ..extras import missing_extra
from . import hub, reading

try:
    import conllu
except ModuleNotFoundError as error:
    raise missing_extra(error, "reading CoNLL-U treebanks (hf_xalign.data.conllu)") from None

UPOS_TAGS: tuple[str, ...] = (
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM",
    "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X",
)  # fmt: skip

# The universal tagset of Petrov, Das & McDonald (2012), as used by the Google universal
# treebanks before UD: its tags that are not UD UPOS tags.
GOOGLE_UNIVERSAL_TAG_MAP: dict[str, str] = {"CONJ": "CCONJ", "PRT": "PART", ".": "PUNCT"}

CONLLU_FEATURES = datasets.Features(
    {
        "words": datasets.Sequence(datasets.Value("string")),
        "upos": datasets.Sequence(datasets.ClassLabel(names=list(UPOS_TAGS))),
        "lang": datasets.Value("string"),
        "sent_id": datasets.Value("string"),
    }
)

_WORD_ID = re.compile(r"[1-9][0-9]*\Z")
_RANGE_ID = re.compile(r"[1-9][0-9]*-[1-9][0-9]*\Z")
_EMPTY_ID = re.compile(r"[0-9]+\.[1-9][0-9]*\Z")


class CoNLLUError(reading.DataFileError):
    """Malformed CoNLL-U; the message starts with `path:line:` (or `dataset row k:`), and the attributes `path`,
    `line` and `row` hold the same (see [`~hf_xalign.data.reading.DataFileError`])."""


def conllu_files(source: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """The `.conllu` files of a file, a directory (recursively), a glob, or a list of those."""
    if isinstance(source, (list, tuple)):
        return [path for item in source for path in conllu_files(item)]
    text = str(source)
    if any(char in text for char in "*?["):
        paths = sorted(Path(p) for p in glob.glob(text, recursive=True))
    elif Path(text).is_dir():
        paths = sorted(Path(text).rglob("*.conllu"))
    else:
        paths = [Path(text)]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"No such CoNLL-U file: {path}")
    if not paths:
        raise FileNotFoundError(f"No .conllu files found for {text!r}")
    return paths


def read_conllu(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    language: str = "",
    tag_map: Mapping[str, str] | None = None,
) -> datasets.Dataset:
    """Read UD treebank(s) into a `datasets.Dataset` of `words`, `upos` (UPOS ids), `lang`, `sent_id`.

    Args:
        source: a `.conllu` file, a directory (all `.conllu` files below it), a glob, or a list of those.
        language (`str`, *optional*): language code stored in `lang` (e.g. `"tr"`).
        tag_map (`Mapping[str, str]`, *optional*): tags to rename before checking them against
            `UPOS_TAGS`, for treebanks with another tag set (e.g. [`GOOGLE_UNIVERSAL_TAG_MAP`]).

    Raises:
        [`CoNLLUError`]: a line with a number of columns other than 10, an ID that is not an
            integer, a range or an empty node, a tag outside UPOS (after `tag_map`), a
            sentence without words, or a file without sentences (empty or blank); the message
            names file and line.
    """
    rows: dict[str, list] = {"words": [], "upos": [], "lang": [], "sent_id": []}
    tag_ids = {tag: i for i, tag in enumerate(UPOS_TAGS)}
    for path in conllu_files(source):
        sentences_before = len(rows["words"])
        for start_line, comments, tokens in _sentences(path):
            words, tags = [], []
            for number, columns in tokens:
                if not _WORD_ID.match(columns[0]):
                    continue  # a multiword-token range or an empty node: not a word to label
                tag = tag_map.get(columns[3], columns[3]) if tag_map else columns[3]
                if tag not in tag_ids:
                    hint = "" if tag_map else " (pass tag_map= for treebanks with another tag set)"
                    raise CoNLLUError(
                        reading.Place(str(path), number),
                        f"unknown UPOS tag {columns[3]!r}{hint}",
                        f"one of {', '.join(UPOS_TAGS)}",
                    )
                words.append(columns[1])
                tags.append(tag_ids[tag])
            if not words:
                raise CoNLLUError(
                    reading.Place(str(path), start_line), "sentence without words", "at least one word line"
                )
            metadata = dict(pair for line in comments for pair in conllu.parser.parse_comment_line(line))
            rows["words"].append(words)
            rows["upos"].append(tags)
            rows["lang"].append(language)
            rows["sent_id"].append(str(metadata.get("sent_id") or f"{path.name}:{start_line}"))
        if len(rows["words"]) == sentences_before:  # as the other readers: an empty file is a mistake, not data
            raise reading.no_records_error(path, 1, "sentence", CoNLLUError)
    return reading.dataset_from_columns(rows, CONLLU_FEATURES)


def treebank_from_dataset(
    dataset: datasets.Dataset, *, language: str = "", source: str = "dataset"
) -> datasets.Dataset:
    """A treebank in a Hub layout (e.g. `universal_dependencies`: `tokens` + `upos`) as [`read_conllu`] returns it.

    `upos` may hold tag names or ids of a `ClassLabel` in any order (the Hub's UD dataset puts
    NOUN first); they are mapped by name onto `UPOS_TAGS`, never by index. Words are syntactic words,
    as [`read_conllu`] reads them, in both Hub layouts: the parquet per treebank keeps `tokens` as the
    syntactic words and the multiword tokens in a column of their own (not read here); the retired
    loading script's layout put the multiword token's surface form among them with the tag `"_"`,
    which is not a word and is dropped with its token. `sent_id` (or `idx`) is kept where there is one.
    """
    words_column = "tokens" if "tokens" in dataset.column_names else "words"
    records = reading.dataset_records(
        dataset, (words_column, "upos"), name=source, unit="sentence", error=CoNLLUError, optional=("idx", "sent_id")
    )
    names = getattr(getattr(dataset.features.get("upos"), "feature", None), "names", None)
    tag_ids = {tag: i for i, tag in enumerate(UPOS_TAGS)}
    rows: dict[str, list] = {"words": [], "upos": [], "lang": [], "sent_id": []}
    for place, example in records:
        words, tags = [], []
        for word, tag in zip(example[words_column], example["upos"]):
            tag = names[tag] if names is not None else tag
            if tag == "_":
                continue
            if tag not in tag_ids:
                raise CoNLLUError(place, f"unknown UPOS tag {tag!r}", f"one of {', '.join(UPOS_TAGS)}")
            words.append(word)
            tags.append(tag_ids[tag])
        if not words:
            raise CoNLLUError(place, "sentence without words", "at least one word")
        rows["words"].append(words)
        rows["upos"].append(tags)
        rows["lang"].append(language)
        rows["sent_id"].append(str(example.get("sent_id", example.get("idx", place.row))))
    return reading.dataset_from_columns(rows, CONLLU_FEATURES)


def read_treebank(source, *, language: str = "", tag_map: Mapping[str, str] | None = None) -> datasets.Dataset:
    """CoNLL-U files (see [`read_conllu`]), or a `hub:` source (see [`~hf_xalign.data.hub`]) in a UD layout.

    `hub:universal-dependencies/universal_dependencies@2.16:tr_imst:test` loads with `datasets` (a network or
    a local cache is needed) and goes through [`treebank_from_dataset`].
    """
    if isinstance(source, (list, tuple)):
        return datasets.concatenate_datasets(
            [read_treebank(item, language=language, tag_map=tag_map) for item in source]
        )
    if hub.is_hub_spec(source):
        return treebank_from_dataset(hub.load_hub_split(source), language=language, source=source)
    return read_conllu(source, language=language, tag_map=tag_map)


def _sentences(path: Path) -> Iterator[tuple[int, list[str], list[tuple[int, list[str]]]]]:
    """`(first line number, comment lines, [(line number, 10 columns)])` for each sentence.

    Token lines are split on tabs here, not by `conllu.parse_line`: that one also splits on runs
    of two spaces (a FORM such as "a  b" would shift the columns) and parses every column,
    which made reading ~2x slower; `conllu` still reads the comments (`# sent_id = ...`).
    """
    lines = reading.read_lines(path, CoNLLUError)
    comments: list[str] = []
    tokens: list[tuple[int, list[str]]] = []
    start = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            if comments or tokens:
                yield start, comments, tokens
                comments, tokens = [], []
            continue
        if not comments and not tokens:
            start = number
        if line.startswith("#"):
            comments.append(line)
        else:
            tokens.append((number, _token_columns(path, number, line)))
    if comments or tokens:
        yield start, comments, tokens


def _token_columns(path: Path, number: int, line: str) -> list[str]:
    columns = line.split("\t")
    if len(columns) != 10:
        raise CoNLLUError(
            reading.Place(str(path), number),
            f"{len(columns)} tab-separated columns",
            "10: ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC",
        )
    token_id = columns[0]
    if not (_WORD_ID.match(token_id) or _RANGE_ID.match(token_id) or _EMPTY_ID.match(token_id)):
        raise CoNLLUError(
            reading.Place(str(path), number),
            f"ID {token_id!r} is not an integer",
            "1, 2, ..., a range like 1-2, or an empty node like 8.1",
        )
    return columns


def align_labels_with_tokens(
    word_ids: Sequence[int | None], word_labels: Sequence[int], label_all_subtokens: bool = False
) -> list[int]:
    """Token labels from word labels: the first sub-token of each word gets the word's label,
    the other sub-tokens -100 (or the label too with `label_all_subtokens`), special tokens -100."""
    labels, previous = [], None
    for word_id in word_ids:
        if word_id is None or (word_id == previous and not label_all_subtokens):
            labels.append(-100)
        else:
            labels.append(word_labels[word_id])
        previous = word_id
    return labels


def tokenize_and_align_labels(
    dataset: datasets.Dataset,
    tokenizer,
    max_length: int = 128,
    label_all_subtokens: bool = False,
    batch_size: int = 1000,
) -> datasets.Dataset:
    """Tokenize `words` (a fast tokenizer, `is_split_into_words`) and align `upos` onto sub-tokens as `labels`.

    Returns the dataset with `input_ids`, `attention_mask` and `labels` added (`words`, `upos`,
    `lang` and `sent_id` kept for evaluation and error analysis).
    """

    def encode(batch: dict[str, list]) -> dict[str, list]:
        encoded = tokenizer(batch["words"], is_split_into_words=True, truncation=True, max_length=max_length)
        encoded["labels"] = [
            align_labels_with_tokens(encoded.word_ids(i), tags, label_all_subtokens)
            for i, tags in enumerate(batch["upos"])
        ]
        return dict(encoded)

    return dataset.map(encode, batched=True, batch_size=batch_size, desc="Tokenizing")
