# Copyright 2025 The hf-xalign Authors.
# Licensed under the Apache License, Version 2.0.
"""Builds the offline classification demo data from the Django component files already in the repository.

Input: `recipes/data/django/components/<lang>.tsv` (`text<TAB>label`, line k of every language translates
line k of `en.tsv`; see `recipes/data/django/README.md`). Output, under `--out` (default: this folder):

- `same_component/{train/en,test/<lang>}.tsv`: a sentence-pair task, `sentence1<TAB>sentence2<TAB>label` with
  `label` = `same` (both strings come from the catalog of the same Django component) or `different`.
- `components_split/{train/en,test/<lang>}.tsv`: the single-sentence component task (`text<TAB>label`) split
  into the strings used for training and the held-out strings, the same split as the pairs.
- `README.md`: what the data are, from where, how they were made, the counts.

The strings are split by their row in the component files (rows are in SHA-1 order of the English string, so a
prefix is an unbiased sample): the first `TRAIN_STRINGS` rows are training strings, the rest test strings. No
test pair, in any language, contains a training string or a translation of one. Pairs are picked by the SHA-1
of the two English strings, not by `random`, so the same input files give byte-identical output with any Python.

```bash
python recipes/data/nli/build_nli_data.py            # writes the files and README.md
python recipes/data/nli/build_nli_data.py --check    # rebuilds in memory, fails if a file differs
```
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
COMPONENTS = HERE.parent / "django" / "components"
LANGUAGES = ("en", "ar", "de", "es", "fr", "ru", "tr", "zh_Hans")
SOURCE_LANGUAGE = "en"

TRAIN_STRINGS = 150  # of 206; the other 56 are test strings
TRAIN_PAIRS_PER_LABEL = 600
TEST_PAIRS_PER_LABEL = 100
SAME, DIFFERENT = "same", "different"


def read_components(path: Path) -> list[tuple[str, str]]:
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines[0] != "text\tlabel":
        raise ValueError(f"{path}:1: header {lines[0]!r} (expected 'text<TAB>label')")
    rows = []
    for line in lines[1:]:
        if line:
            text, label = line.split("\t")
            rows.append((text, label))
    return rows


def pair_key(english: list[str], i: int, j: int) -> str:
    return hashlib.sha1(f"{english[i]}\t{english[j]}".encode()).hexdigest()


def pick_pairs(english: list[str], labels: list[str], indices: list[int], per_label: int) -> list[tuple[int, int, str]]:
    """`per_label` same-component and `per_label` different-component pairs of `indices`, by SHA-1 order.

    Within each kind every unordered pair of distinct strings is equally likely; which string comes first is
    one more bit of the same hash. The result is ordered by hash too, so the labels are interleaved.
    """
    candidates = {SAME: [], DIFFERENT: []}
    for i, j in itertools.combinations(indices, 2):
        key = pair_key(english, i, j)
        first, second = (i, j) if int(key[-1], 16) % 2 == 0 else (j, i)
        candidates[SAME if labels[i] == labels[j] else DIFFERENT].append((key, first, second))
    picked = []
    for label, pairs in candidates.items():
        if len(pairs) < per_label:
            raise ValueError(f"only {len(pairs)} {label}-component pairs (need {per_label})")
        picked += [(key, first, second, label) for key, first, second in sorted(pairs)[:per_label]]
    return [(first, second, label) for _, first, second, label in sorted(picked)]


def tsv(header: list[str], rows: list[list[str]]) -> str:
    return "".join("\t".join(fields) + "\n" for fields in [header, *rows])


README_TEMPLATE = """\
# Classification demo data: Django strings, single sentences and pairs

Offline demo and test data for `recipes/xnli.py` in both forms the recipe reads: single sentences
(`text`, `label`) and sentence pairs. Everything is derived from the component files already shipped in
[`recipes/data/django/components`](../django/README.md): real user-interface strings of Django 5.2.19 with
their human translations into {n_targets} languages ({languages}). This file is written by
`build_nli_data.py`; edit the template there.

## Licence

BSD-3-Clause, copyright (c) Django Software Foundation and individual contributors (the strings and their
translations; see `recipes/data/django/README.md`). The pairing and the labels are mechanical, made here.

## What the labels mean

- `components_split/`: the label is the Django component whose gettext catalog holds the string (`admin`,
  `admindocs`, `auth`, `core`), as in `recipes/data/django/components`. A single-sentence topic task.
- `same_component/`: a sentence-pair task. Each row is two different strings of the **same language**;
  `same` if both come from the catalog of the same component, `different` otherwise. It is **not** natural
  language inference and not paraphrase identification: the two strings never mean the same thing. It asks
  whether two messages belong to the same part of the software, which a model can only answer from what the
  strings are about (passwords and users, documentation of models and views, admin actions, form validation).
  Like XNLI, the test pairs are the same in every language (row k of `test/de.tsv` is row k of `test/en.tsv`
  with both strings translated), so scores across languages are over the same items.

Nothing here is annotated by a person for this task: the translations are human (Django's translators), the
labels follow from which catalog holds a string. Components overlap in vocabulary (auth and admin both talk
about users and passwords), so neither task is clean; the data are for demos and smoke tests, not benchmarks.

## How it was made

```bash
python recipes/data/nli/build_nli_data.py            # writes the files and this README
python recipes/data/nli/build_nli_data.py --check    # fails if a file differs from a rebuild
```

- Split by string: the component files' rows are in SHA-1 order of the English string, so a prefix is an
  unbiased sample. Data rows 1-{train_strings} (after the header) are training strings, rows {first_test}-{n_strings}
  test strings. No test item, in any language, contains a training string or a translation of one.
- Pairs: every unordered pair of distinct strings of a split is a candidate; the first {train_per_label} (train) or
  {test_per_label} (test) of each label, by SHA-1 of the two English strings, are kept, so the classes are balanced
  (a majority-class guess scores 0.5) and, within each label, every pair is equally likely. Big components
  (admin, core) therefore give most `same` pairs. The order of the two strings is one more bit of the hash.
- No randomness from Python's `random`: the same component files give byte-identical output.
- Used by `recipes/configs/sib_demo.yaml` (`components_split`) and `recipes/configs/xnli_demo.yaml`
  (`same_component`), with the encoder `make demo` builds.
- Alignment data: the demo configs align on `recipes/data/django/parallel`, which holds the test strings'
  translations too. The recipe drops every parallel pair that contains an evaluation text
  (`drop_eval_texts_from_parallel: true`, the default), so alignment never sees a test string.

## Files

Header line first; fields are raw text between tabs (no quoting).

| file | rows | labels |
|------|-----:|--------|
{file_rows}

```python
from hf_xalign.data.classification import load_classification

train = load_classification("recipes/data/nli/same_component/train/en.tsv", layout="paws-x", language="en")
test_fr = load_classification("recipes/data/nli/same_component/test/fr.tsv", layout="paws-x",
                              label_names=train.features["label"].names, language="fr")
```
"""


def build(components: Path = COMPONENTS) -> dict[str, str]:
    """`{relative path: file text}` for every output file, README.md included."""
    per_language = {lang: read_components(components / f"{lang}.tsv") for lang in LANGUAGES}
    source = per_language[SOURCE_LANGUAGE]
    for lang, rows in per_language.items():
        if len(rows) != len(source) or [label for _, label in rows] != [label for _, label in source]:
            raise ValueError(
                f"{components / (lang + '.tsv')}: rows do not match en.tsv (expected translations, line by line)"
            )
    english = [text for text, _ in source]
    labels = [label for _, label in source]
    train_indices = list(range(TRAIN_STRINGS))
    test_indices = list(range(TRAIN_STRINGS, len(source)))

    files: dict[str, str] = {}
    train_pairs = pick_pairs(english, labels, train_indices, TRAIN_PAIRS_PER_LABEL)
    test_pairs = pick_pairs(english, labels, test_indices, TEST_PAIRS_PER_LABEL)
    pair_header = ["sentence1", "sentence2", "label"]
    files["same_component/train/en.tsv"] = tsv(
        pair_header, [[english[i], english[j], label] for i, j, label in train_pairs]
    )
    files["components_split/train/en.tsv"] = tsv(["text", "label"], [list(source[i]) for i in train_indices])
    for lang in LANGUAGES:
        texts = [text for text, _ in per_language[lang]]
        files[f"same_component/test/{lang}.tsv"] = tsv(
            pair_header, [[texts[i], texts[j], label] for i, j, label in test_pairs]
        )
        files[f"components_split/test/{lang}.tsv"] = tsv(
            ["text", "label"], [list(per_language[lang][i]) for i in test_indices]
        )

    file_rows = []
    for path, text in sorted(files.items()):
        counts = Counter(line.rsplit("\t", 1)[1] for line in text.splitlines()[1:])
        shown = ", ".join(f"{label} {n}" for label, n in sorted(counts.items()))
        file_rows.append(f"| `{path}` | {sum(counts.values())} | {shown} |")
    files["README.md"] = README_TEMPLATE.format(
        n_targets=len(LANGUAGES) - 1,
        languages=", ".join(LANGUAGES[1:]),
        train_strings=TRAIN_STRINGS,
        first_test=TRAIN_STRINGS + 1,
        n_strings=len(source),
        train_per_label=TRAIN_PAIRS_PER_LABEL,
        test_per_label=TEST_PAIRS_PER_LABEL,
        file_rows="\n".join(file_rows),
    )
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: this script's folder)")
    parser.add_argument("--check", action="store_true", help="compare with the files in --out instead of writing")
    args = parser.parse_args(argv)
    files = build()
    if args.check:
        stale = [
            path
            for path, text in files.items()
            if not (args.out / path).is_file() or (args.out / path).read_text(encoding="utf-8") != text
        ]
        for path in stale:
            print(f"differs from a rebuild: {args.out / path}", file=sys.stderr)
        return 1 if stale else 0
    for path, text in files.items():
        target = args.out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} files under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
