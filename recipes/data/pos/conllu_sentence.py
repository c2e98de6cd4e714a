# Copyright 2025 The hf-xalign Authors.
# Licensed under the Apache License, Version 2.0.
"""The CoNLL-U sentence every builder here produces, the 17 UD UPOS tags, and writing a file of sentences."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

UPOS_TAGS = (
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM",
    "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X",
)  # fmt: skip


@dataclass
class Sentence:
    """One CoNLL-U sentence: comment lines (without `# `) and rows of 10 columns."""

    comments: list[tuple[str, str]]
    rows: list[list[str]] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The sentence's `# text`."""
        return dict(self.comments)["text"]

    def to_conllu(self) -> str:
        lines = [f"# {key} = {value}" for key, value in self.comments]
        lines += ["\t".join(row) for row in self.rows]
        return "\n".join(lines) + "\n\n"


def write_conllu(path: Path, sentences: list[Sentence]) -> None:
    """`sentences` as one UTF-8 file with LF line ends, each sentence followed by a blank line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for sentence in sentences:
            f.write(sentence.to_conllu())
