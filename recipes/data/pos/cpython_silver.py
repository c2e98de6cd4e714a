# Copyright 2025 The hf-xalign Authors.
# Licensed under the Apache License, Version 2.0.
"""`en_silver/train`: English prose sentences from CPython's standard library, tagged by spaCy."""

from __future__ import annotations

import hashlib
import platform
import re
from collections import Counter
from typing import Any

from conllu_sentence import Sentence
from cpython_text import docstring_paragraphs, idle_help_paragraphs, pydoc_paragraphs, pydoc_topics_path
from spacy_tagging import normalize_space, tag_with_spacy

EN_TRAIN_MAX_SENTENCES = 1800
# English prose sentences: 5 to 40 words, starting with a capital letter and ending like a sentence, no code.
PROSE_MIN_WORDS, PROSE_MAX_WORDS = 5, 40
_NOT_PROSE = re.compile(r"::|>>>|\.\.\.|[|*`\\{}\[\]<>=~^@$#]|--|\b[a-z_]+\(|\w+\.\w+\(|__\w+__.*__\w+__|^\d")


def is_prose_sentence(sentence: str) -> bool:
    """Plain English prose: the filters that keep code, tables and sentence fragments out of the train set."""
    words = sentence.split()
    if not (PROSE_MIN_WORDS <= len(words) <= PROSE_MAX_WORDS):
        return False
    if not (sentence[0].isupper() and sentence[-1] in ".?!:" and not sentence.endswith((":.", "e.g.", "i.e."))):
        return False
    if _NOT_PROSE.search(sentence):
        return False
    # Mostly words, not identifiers, numbers or quoted code.
    if sum(word.strip("\"'(),.;:!?\u2018\u2019\u201c\u201d").isalpha() for word in words) < 0.75 * len(words):
        return False
    return sentence.count('"') % 2 == 0 and sentence.count("(") == sentence.count(")")


def english_prose_sentences(nlp: Any, exclude: set[str]) -> list[tuple[str, str]]:
    """`(source, sentence)` for every prose sentence of the three stdlib sources, first occurrence only.

    Paragraphs are split into sentences by spaCy's English parser, then filtered with [`is_prose_sentence`];
    sentences in `exclude` (the English side of the French test set) are dropped.
    """
    sources = [pydoc_paragraphs(), idle_help_paragraphs(), docstring_paragraphs()]
    paragraphs = [item for source in sources for item in source]
    seen = set(exclude)
    sentences: list[tuple[str, str]] = []
    for (source, _), doc in zip(paragraphs, nlp.pipe((text for _, text in paragraphs), batch_size=64)):
        for span in doc.sents:
            sentence = normalize_space(span.text)
            if sentence not in seen and is_prose_sentence(sentence):
                seen.add(sentence)
                sentences.append((source, sentence))
    return sentences


def source_kind(source: str) -> str:
    """Which of the three stdlib sources a `# source` value names (for the README's counts)."""
    if source.startswith("Lib/pydoc_data/"):
        return "pydoc topics"
    if source.startswith("Lib/idlelib/help.html"):
        return "IDLE help"
    return "docstrings"


def stable_order_key(text: str) -> str:
    # As in build_django_data.py: hash order, so any prefix (the cap) is an unbiased sample.
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def build_cpython_silver(en_nlp: Any, exclude: set[str]) -> tuple[list[Sentence], dict[str, str]]:
    """`en_silver/train`: a hash-ordered sample of the prose sentences not in `exclude`, tagged; and README facts."""
    candidates = english_prose_sentences(en_nlp, exclude=exclude)
    chosen = sorted(candidates, key=lambda item: stable_order_key(item[1]))[:EN_TRAIN_MAX_SENTENCES]
    en_train_rows = tag_with_spacy(en_nlp, [sentence for _, sentence in chosen], with_xpos=True)
    en_train = [
        Sentence([("sent_id", f"cpython-{number:04d}"), ("source", source), ("text", sentence)], rows)
        for number, ((source, sentence), rows) in enumerate(zip(chosen, en_train_rows), start=1)
    ]
    info = {
        "en_candidates": ", ".join(
            f"{kind} {count}" for kind, count in Counter(source_kind(s) for s, _ in candidates).items()
        ),
        "en_chosen": ", ".join(f"{kind} {count}" for kind, count in Counter(source_kind(s) for s, _ in chosen).items()),
        "en_candidates_total": str(len(candidates)),
        # The sentences depend on the interpreter's standard library: the README names both.
        "python": platform.python_version(),
        "topics_sha256": hashlib.sha256(pydoc_topics_path().read_bytes()).hexdigest(),
    }
    return en_train, info
