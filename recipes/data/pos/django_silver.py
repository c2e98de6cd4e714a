# Copyright 2025 The hf-xalign Authors.
# Licensed under the Apache License, Version 2.0.
"""`en_silver/dev` and `fr_silver/test`: the two sides of Django's English-French translations, tagged by spaCy.

Line *k* of one translates line *k* of the other and both carry the same `# sent_id`, so English
(in-language) and French (zero-shot) accuracy can be compared on the same content.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conllu_sentence import Sentence
from spacy_tagging import normalize_space, tag_with_spacy

DJANGO_EN_FR = Path(__file__).resolve().parents[1] / "django" / "parallel" / "en-fr.tsv"
# Typographic apostrophes: spaCy's French model (trained on UD Sequoia's straight apostrophes) mis-tags "n’", "d’"
# as NOUN or PROPN; they are replaced for the model only (same length, so forms are cut from the original text).
_FR_MODEL_INPUT = str.maketrans({"\u2019": "'"})


def read_django_en_fr() -> list[tuple[str, str]]:
    """`(English, French)` pairs of `en-fr.tsv`, in file order, as written there."""
    rows = DJANGO_EN_FR.read_text(encoding="utf-8").splitlines()
    if rows[0].split("\t") != ["src_lang", "tgt_lang", "src", "tgt"]:
        raise SystemExit(f"{DJANGO_EN_FR}: unexpected header {rows[0]!r}")
    return [(fields[2], fields[3]) for fields in (row.split("\t") for row in rows[1:])]


def build_django_silver(en_nlp: Any, fr_nlp: Any) -> tuple[list[Sentence], list[Sentence], dict[str, str]]:
    """`en_silver/dev`, `fr_silver/test`, and the README's counts of strings whose white space was normalized."""
    raw_pairs = read_django_en_fr()
    pairs = [(normalize_space(en), normalize_space(fr)) for en, fr in raw_pairs]
    info = {
        "en_normalized": str(sum(normalize_space(en) != en for en, _ in raw_pairs)),
        "fr_normalized": str(sum(normalize_space(fr) != fr for _, fr in raw_pairs)),
    }
    en_dev_rows = tag_with_spacy(en_nlp, [en for en, _ in pairs], with_xpos=True)
    fr_test_rows = tag_with_spacy(
        fr_nlp, [fr for _, fr in pairs], model_input=lambda t: t.translate(_FR_MODEL_INPUT), with_xpos=False
    )
    en_dev, fr_test = [], []
    for line, ((en, fr), en_rows, fr_rows) in enumerate(zip(pairs, en_dev_rows, fr_test_rows), start=2):
        sent_id = f"django-en-fr-{line - 1:04d}"
        where = f"django/parallel/en-fr.tsv:{line}"
        en_dev.append(Sentence([("sent_id", sent_id), ("source", f"{where} src"), ("text", en)], en_rows))
        fr_test.append(Sentence([("sent_id", sent_id), ("source", f"{where} tgt"), ("text", fr)], fr_rows))
    return en_dev, fr_test, info
