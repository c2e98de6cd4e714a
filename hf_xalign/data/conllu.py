"""Universal Dependencies treebanks (CoNLL-U) for POS tagging, read with the `conllu` package.

Words are the lines with an integer ID: multiword-token ranges (`1-2`) and empty nodes
(`8.1`) are not words to label. Tags are the 17 UD UPOS tags, the same ids in every
language, so a tagger trained on one language can be evaluated on any other.
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import conllu
import datasets

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


class CoNLLUError(ValueError):
    """Malformed CoNLL-U; the message starts with `path:line:`."""


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
            integer, a range or an empty node, a tag outside UPOS (after `tag_map`), or a
            sentence without words; the message names file and line.
    """
    rows: dict[str, list] = {"words": [], "upos": [], "lang": [], "sent_id": []}
    tag_ids = {tag: i for i, tag in enumerate(UPOS_TAGS)}
    for path in conllu_files(source):
        for start_line, block in _sentence_blocks(path):
            sentence = conllu.parse_token_and_metadata(block)
            words, tags = [], []
            for offset, token in _word_tokens(sentence, block):
                tag = tag_map.get(token["upos"], token["upos"]) if tag_map else token["upos"]
                if tag not in tag_ids:
                    hint = "" if tag_map else " (pass tag_map= for treebanks with another tag set)"
                    raise CoNLLUError(
                        f"{path}:{start_line + offset}: unknown UPOS tag {token['upos']!r}{hint} "
                        f"(expected one of {', '.join(UPOS_TAGS)})"
                    )
                words.append(token["form"])
                tags.append(tag_ids[tag])
            if not words:
                raise CoNLLUError(f"{path}:{start_line}: sentence without words (expected at least one word line)")
            rows["words"].append(words)
            rows["upos"].append(tags)
            rows["lang"].append(language)
            rows["sent_id"].append(str(sentence.metadata.get("sent_id", f"{path.name}:{start_line}")))
    return datasets.Dataset.from_dict(rows, features=CONLLU_FEATURES)


def _sentence_blocks(path: Path) -> Iterator[tuple[int, str]]:
    """`(first line number, text)` of each sentence, after checking every token line's shape."""
    block: list[str] = []
    start = 0
    with open(path, encoding="utf-8") as f:
        try:
            lines = f.read().splitlines()
        except UnicodeDecodeError as error:
            raise CoNLLUError(f"{path}: not UTF-8 ({error.reason} at byte {error.start})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            if block:
                yield start, "\n".join(block)
                block = []
            continue
        if not block:
            start = number
        if not line.startswith("#"):
            _check_token_line(path, number, line)
        block.append(line)
    if block:
        yield start, "\n".join(block)


def _check_token_line(path: Path, number: int, line: str) -> None:
    columns = line.split("\t")
    if len(columns) != 10:
        raise CoNLLUError(
            f"{path}:{number}: {len(columns)} tab-separated columns (expected 10: ID FORM LEMMA UPOS XPOS "
            "FEATS HEAD DEPREL DEPS MISC)"
        )
    token_id = columns[0]
    if not (_WORD_ID.match(token_id) or _RANGE_ID.match(token_id) or _EMPTY_ID.match(token_id)):
        raise CoNLLUError(
            f"{path}:{number}: ID {token_id!r} is not an integer (expected 1, 2, ..., a range like 1-2, "
            "or an empty node like 8.1)"
        )


def _word_tokens(sentence: conllu.TokenList, block: str) -> Iterable[tuple[int, dict]]:
    """`(line offset in the block, token)` of the sentence's words (integer IDs only)."""
    offsets = [i for i, line in enumerate(block.split("\n")) if not line.startswith("#")]
    return ((offset, token) for offset, token in zip(offsets, sentence) if isinstance(token["id"], int))


def align_labels_with_tokens(word_ids: Sequence[int | None], word_labels: Sequence[int], label_all_subtokens: bool = False) -> list[int]:
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
            align_labels_with_tokens(encoded.word_ids(i), tags, label_all_subtokens) for i, tags in enumerate(batch["upos"])
        ]
        return dict(encoded)

    return dataset.map(encode, batched=True, batch_size=batch_size, desc="Tokenizing")
