# Copyright 2025 The hf-xalign Authors.
# Licensed under the Apache License, Version 2.0.
"""Checks a written POS treebank file, with the `conllu` package and by hand, and counts its tags."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from conllu_sentence import UPOS_TAGS


@dataclass
class FileStats:
    """What the README reports of one file: sentences, words, and words per UPOS tag."""

    sentences: int
    tokens: int
    tags: Counter


def validate_conllu(path: Path) -> FileStats:
    """Checks a written file with the `conllu` package and by hand; returns counts and the UPOS distribution."""
    import conllu

    raw = path.read_text(encoding="utf-8")
    if not raw.endswith("\n\n") or "\r" in raw or "\ufeff" in raw:
        raise ValueError(f"{path}: must be LF-only UTF-8 without BOM, ending in a blank line")
    for number, line in enumerate(raw.split("\n"), start=1):
        if line and not line.startswith("#"):
            columns = line.split("\t")
            if len(columns) != 10 or any(c == "" or c != c.strip() for c in columns):
                raise ValueError(f"{path}:{number}: expected 10 non-empty tab-separated columns")
            if any(" " in c for c in columns[:9] if c != columns[1]) or " " in columns[1]:
                raise ValueError(f"{path}:{number}: space inside a column")
    tags: Counter = Counter()
    sentences = tokens = 0
    sent_ids = set()
    with path.open(encoding="utf-8") as f:
        for sentence in conllu.parse_incr(f):
            sentences += 1
            meta = sentence.metadata
            for key in ("sent_id", "source", "text"):
                if not meta.get(key):
                    raise ValueError(f"{path}: sentence {sentences} lacks `# {key} =`")
            if meta["sent_id"] in sent_ids:
                raise ValueError(f"{path}: duplicate sent_id {meta['sent_id']}")
            sent_ids.add(meta["sent_id"])
            ids = [token["id"] for token in sentence]
            if ids != list(range(1, len(ids) + 1)):
                raise ValueError(f"{path}: {meta['sent_id']}: IDs are not 1..{len(ids)}")
            rebuilt = ""
            for token in sentence:
                if token["upos"] not in UPOS_TAGS:
                    raise ValueError(f"{path}: {meta['sent_id']}: UPOS {token['upos']!r} is not a UD tag")
                no_space = bool(token["misc"]) and token["misc"].get("SpaceAfter") == "No"
                rebuilt += token["form"] + ("" if no_space else " ")
                tags[token["upos"]] += 1
            if rebuilt.rstrip(" ") != meta["text"]:
                raise ValueError(f"{path}: {meta['sent_id']}: forms give {rebuilt!r}, not the # text")
            heads = [token["head"] for token in sentence]
            if any(head is not None for head in heads):
                check_tree(heads, where=f"{path}: {meta['sent_id']}")
            tokens += len(ids)
    return FileStats(sentences, tokens, tags)


def check_tree(heads: list[int | None], *, where: str) -> None:
    """HEADs (1-based, 0 for the root) that form one tree: in range, exactly one root, no cycle."""
    if any(head is None or not 0 <= head <= len(heads) for head in heads) or heads.count(0) != 1:
        raise ValueError(f"{where}: HEAD must be 0..n with exactly one root")
    for start in range(1, len(heads) + 1):
        node, steps = start, 0
        while node != 0:
            node = heads[node - 1]
            steps += 1
            if steps > len(heads):
                raise ValueError(f"{where}: cycle through word {start}")


def distribution(tags: Counter) -> str:
    """`TAG count (percent)` for each tag present, in UD order: the line printed under each file."""
    total = sum(tags.values())
    return ", ".join(f"{tag} {tags[tag]} ({100 * tags[tag] / total:.1f}%)" for tag in UPOS_TAGS if tags[tag])
