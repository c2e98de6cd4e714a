# Copyright 2025 The hf-xalign Authors.
# Licensed under the Apache License, Version 2.0.
"""Builds small, real demo data from the human translations that ship inside Django.

Django's package holds gettext catalogs (`.po` files, BSD-3-Clause) for its core and each contrib app. From them
this script writes, under `--out`:

- `parallel/en-<lang>.tsv`: English message -> human translation, one pair per line, with a
  `src_lang<TAB>tgt_lang<TAB>src<TAB>tgt` header (readable with `hf_xalign.data.load_parallel`).
- `components/<lang>.tsv`: `text<TAB>label`, the same English strings in every language, labelled with the Django
  component whose catalog holds them (a single-sentence topic classification set for zero-shot transfer).
- `README.md`: source, licence, this command line, and the label counts.

Run it with Django and polib installed in a throw-away environment, not in the project's:

```bash
python3.11 -m venv /tmp/django-data && /tmp/django-data/bin/pip install "django==5.2.19" "polib==1.2.0"
/tmp/django-data/bin/python recipes/data/build_django_data.py \
    --django-root /tmp/django-data/lib/python3.11/site-packages/django --out recipes/data/django
```

The output depends only on the catalogs, so the same Django version gives byte-identical files.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shlex
import sys
from collections import Counter
from pathlib import Path

import polib

# Django's catalog code -> the ISO 639-1 code written in the data.
TARGET_LANGUAGES = {"de": "de", "fr": "fr", "es": "es", "ru": "ru", "tr": "tr", "ar": "ar", "zh_Hans": "zh"}
# Languages written without spaces between words, where "at least 2 words" becomes "at least 2 characters".
UNSPACED_LANGUAGES = frozenset({"zh_Hans"})

# django.po holds the Python-side strings, djangojs.po (admin only) the JavaScript ones; both are the app's.
CATALOG_FILENAMES = ("django.po", "djangojs.po")
CORE_LABEL = "core"

MAX_PAIRS_PER_FILE = 2000
MIN_EXAMPLES_PER_LABEL = 20

# printf and str.format placeholders: the filled-in sentence is not what annotators translated.
_PLACEHOLDER = re.compile(r"%\(|%[0-9.]*[sdif]|[{}]")
# HTML tags and entities ("&amp;"): markup, not language.
_MARKUP = re.compile(r"<[A-Za-z/!][^>]*>|&(?:[A-Za-z]+|#[0-9]+|#x[0-9A-Fa-f]+);")
_LINE_BREAKS_AND_TABS = re.compile(r"[\t\n\r\v\f\u2028\u2029\x85]")


def is_usable_text(text: str, *, django_lang: str) -> bool:
    """Whether a catalog string is a clean, plain-text sentence fragment worth keeping.

    Args:
        text (`str`):
            A msgid or msgstr, already stripped.
        django_lang (`str`):
            Django's code for the language of `text` (`"en"` for msgids); in unspaced languages the length check
            counts characters instead of words.

    Returns:
        `bool`: `False` for placeholders, markup, line breaks or tabs, and for fewer than 2 words (2 characters in
        unspaced languages).
    """
    if _PLACEHOLDER.search(text) or _MARKUP.search(text) or _LINE_BREAKS_AND_TABS.search(text):
        return False
    if django_lang in UNSPACED_LANGUAGES:
        return len("".join(text.split())) >= 2
    return len(text.split()) >= 2


def read_catalog(po_path: Path, *, django_lang: str) -> dict[str, str]:
    """Returns `{english: translation}` for the usable entries of one `.po` file, in file order.

    Skips fuzzy and obsolete entries, plural entries, empty translations and pairs where either side fails
    [`is_usable_text`]. A msgid repeated under different `msgctxt` keeps its first translation.
    """
    translations: dict[str, str] = {}
    for entry in polib.pofile(str(po_path)):
        if entry.obsolete or entry.fuzzy or entry.msgid_plural:
            continue
        english, translation = entry.msgid.strip(), entry.msgstr.strip()
        if not translation or english in translations:
            continue
        if is_usable_text(english, django_lang="en") and is_usable_text(translation, django_lang=django_lang):
            translations[english] = translation
    return translations


def find_components(django_root: Path) -> dict[str, Path]:
    """Returns `{label: locale folder}`: `core` first, then the contrib apps with catalogs, alphabetically."""
    components = {CORE_LABEL: django_root / "conf" / "locale"}
    for locale_dir in sorted((django_root / "contrib").glob("*/locale")):
        components[locale_dir.parent.name] = locale_dir
    if not components[CORE_LABEL].is_dir():
        raise SystemExit(f"{components[CORE_LABEL]} not found: --django-root must be the `django` package folder")
    return components


def read_component(locale_dir: Path, *, django_lang: str) -> dict[str, str]:
    """Merges the usable entries of a component's catalogs for one language; django.po wins over djangojs.po."""
    translations: dict[str, str] = {}
    for filename in CATALOG_FILENAMES:
        po_path = locale_dir / django_lang / "LC_MESSAGES" / filename
        if po_path.is_file():
            for english, translation in read_catalog(po_path, django_lang=django_lang).items():
                translations.setdefault(english, translation)
    return translations


def stable_order_key(english: str) -> str:
    # Hash order: deterministic, independent of which catalog a string sits in, and any prefix (the cap, or a
    # train/test split by position) is an unbiased sample rather than the alphabetical start.
    return hashlib.sha1(english.encode("utf-8")).hexdigest()


def write_tsv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as tsv_file:
        for fields in [header, *rows]:
            tsv_file.write("\t".join(fields) + "\n")


def build_parallel(translations: dict[str, dict[str, dict[str, str]]], out_dir: Path) -> dict[str, int]:
    """Writes `parallel/en-<lang>.tsv`; returns the number of pairs per Django language code."""
    pair_counts = {}
    for django_lang, iso_lang in TARGET_LANGUAGES.items():
        # The first component (core, then contrib alphabetically) that translates a string wins.
        pairs: dict[str, str] = {}
        for per_language in translations.values():
            for english, translation in per_language[django_lang].items():
                pairs.setdefault(english, translation)
        english_strings = sorted(pairs, key=stable_order_key)[:MAX_PAIRS_PER_FILE]
        rows = [["en", iso_lang, english, pairs[english]] for english in english_strings]
        write_tsv(out_dir / "parallel" / f"en-{django_lang}.tsv", ["src_lang", "tgt_lang", "src", "tgt"], rows)
        pair_counts[django_lang] = len(rows)
    return pair_counts


def build_components(translations: dict[str, dict[str, dict[str, str]]], out_dir: Path) -> tuple[Counter, Counter, int]:
    """Writes `components/<lang>.tsv` for English and every target language.

    Returns:
        `tuple`: the kept label counts, the dropped (too small) label counts, and the number of English strings
        dropped because several components hold them (their label would be arbitrary).
    """
    # Strings every target language translates, per component.
    fully_translated = {
        label: set.intersection(*(set(per_language[lang]) for lang in TARGET_LANGUAGES))
        for label, per_language in translations.items()
    }
    components_per_string = Counter(english for strings in fully_translated.values() for english in strings)
    ambiguous = {english for english, count in components_per_string.items() if count > 1}

    label_of = {
        english: label for label, strings in fully_translated.items() for english in strings if english not in ambiguous
    }
    label_counts = Counter(label_of.values())
    small_labels = Counter({label: count for label, count in label_counts.items() if count < MIN_EXAMPLES_PER_LABEL})
    kept_counts = Counter({label: count for label, count in label_counts.items() if label not in small_labels})

    english_strings = sorted(
        (english for english, label in label_of.items() if label in kept_counts), key=stable_order_key
    )
    write_tsv(
        out_dir / "components" / "en.tsv",
        ["text", "label"],
        [[english, label_of[english]] for english in english_strings],
    )
    for django_lang in TARGET_LANGUAGES:
        rows = [
            [translations[label_of[english]][django_lang][english], label_of[english]] for english in english_strings
        ]
        write_tsv(out_dir / "components" / f"{django_lang}.tsv", ["text", "label"], rows)
    return kept_counts, small_labels, len(ambiguous)


def django_version(django_root: Path) -> str:
    # Import the very package the catalogs come from, which need not be the first `django` on sys.path.
    sys.path.insert(0, str(django_root.parent))
    import django

    if Path(django.__file__).resolve().parent != django_root.resolve():
        raise SystemExit(f"imported django from {django.__file__}, not from --django-root {django_root}")
    return django.get_version()


README_TEMPLATE = """\
# Django translation catalogs: parallel pairs and component labels

Small, real multilingual data for demos and tests of `hf_xalign`, made from the human translations that ship with
Django {django_version}.

## Source

- Django {django_version} (the `django` wheel from PyPI), files
  `django/conf/locale/<lang>/LC_MESSAGES/django.po` (label `core`) and
  `django/contrib/<app>/locale/<lang>/LC_MESSAGES/{{django,djangojs}}.po` (label `<app>`; only admin has a
  `djangojs.po`), read with polib {polib_version}.
- Languages (Django code -> code in the data):
  {language_list}.

## Licence

BSD-3-Clause, copyright (c) Django Software Foundation and individual contributors
(https://github.com/django/django/blob/main/LICENSE). The translators of each language are credited in the header
of each `.po` file.

## How it was made

From the repository root, in a throw-away environment (Django and polib are not dependencies of `hf_xalign`):

```bash
python3.11 -m venv /tmp/django-data
/tmp/django-data/bin/pip install "django=={django_version}" "polib=={polib_version}"
{command}
```

`recipes/data/build_django_data.py` keeps an entry only if it is not fuzzy, not obsolete, not a plural entry, has a
non-empty translation, and neither side contains a format placeholder (`%(`, `%s`, `%d`, `{{`, `}}`), an HTML
tag or entity, a line break or a tab; both sides need at least 2 words (at least 2 non-space characters for
Chinese). Each English string appears once (the first catalog that translates it wins: `core`, then the contrib
apps alphabetically). Rows are ordered by the SHA-1 of the English string, so the order is deterministic and any
prefix is an unbiased sample. Files are capped at {max_pairs} pairs. The same Django version gives byte-identical
files.

## Files

`parallel/en-<lang>.tsv`: header `src_lang<TAB>tgt_lang<TAB>src<TAB>tgt`, English -> translation.

| file | pairs |
|------|-------|
{parallel_table}

```python
from hf_xalign.data import load_parallel
pairs = load_parallel("recipes/data/django/parallel/en-de.tsv")
```

`components/<lang>.tsv`: header `text<TAB>label`, for `en` and every language above. All files hold the same
English strings in the same order (line *k* of `de.tsv` translates line *k* of `en.tsv`), so a classifier trained
on English can be tested zero-shot on each language. Only strings translated (and passing the filters) in all
{n_languages} target languages are kept. Strings found in several components are dropped, since their label would
be arbitrary{ambiguous_note}. Labels with fewer than {min_examples} examples are dropped{small_note}.
`core` is kept whole: split by source module, most parts (language names, model field descriptions, views) would
fall below {min_examples} examples.

| label | examples |
|-------|----------|
{label_table}
| **total** | **{n_component_rows}** |

Fields are raw text between tabs, with no CSV quoting; read them with `line.rstrip("\\n").split("\\t")` or
`csv.reader(f, delimiter="\\t", quoting=csv.QUOTE_NONE)`.

## What is gold, and caveats

- Gold: the translations are human translations made by Django's translators on Transifex; the component labels are
  derived mechanically from which catalog holds the string, not annotated.
- The strings are short user-interface messages (form errors, field descriptions, admin labels, language names);
  many are noun phrases or fragments rather than full sentences, and the domain is narrow.
- Quality varies with each language team. Fuzzy entries were dropped, but a translation can still be loose or
  stale, and a few are copies of the English (`Flat Pages` in German).
- Components are uneven in size and partly overlapping in vocabulary (auth and admin both talk about users and
  passwords), so the classification task is small and noisy: good for smoke tests and demos, not for benchmarks.
"""


def write_readme(
    out_dir: Path,
    *,
    django_version_string: str,
    command: str,
    pair_counts: dict[str, int],
    label_counts: Counter,
    small_labels: Counter,
    n_ambiguous: int,
) -> None:
    parallel_table = "\n".join(f"| `en-{lang}.tsv` | {count} |" for lang, count in pair_counts.items())
    label_table = "\n".join(f"| {label} | {count} |" for label, count in sorted(label_counts.items()))
    small_note = (
        " (" + ", ".join(f"{label}: {count}" for label, count in sorted(small_labels.items())) + ")"
        if small_labels
        else ""
    )
    readme = README_TEMPLATE.format(
        django_version=django_version_string,
        polib_version=polib.__version__,
        language_list=", ".join(f"`{django_lang}` -> `{iso}`" for django_lang, iso in TARGET_LANGUAGES.items()),
        command=command,
        max_pairs=MAX_PAIRS_PER_FILE,
        parallel_table=parallel_table,
        n_languages=len(TARGET_LANGUAGES),
        ambiguous_note=f" ({n_ambiguous} strings)" if n_ambiguous else "",
        min_examples=MIN_EXAMPLES_PER_LABEL,
        small_note=small_note,
        label_table=label_table,
        n_component_rows=sum(label_counts.values()),
    )
    (out_dir / "README.md").write_text(readme, encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--django-root", type=Path, required=True, help="the installed `django` package folder")
    parser.add_argument("--out", type=Path, required=True, help="output folder, e.g. recipes/data/django")
    args = parser.parse_args(argv)

    django_version_string = django_version(args.django_root)
    components = find_components(args.django_root)
    translations = {
        label: {django_lang: read_component(locale_dir, django_lang=django_lang) for django_lang in TARGET_LANGUAGES}
        for label, locale_dir in components.items()
    }

    pair_counts = build_parallel(translations, args.out)
    label_counts, small_labels, n_ambiguous = build_components(translations, args.out)

    # The exact invocation, so that the README says how these very files were made.
    command = shlex.join([sys.executable, *sys.argv])
    write_readme(
        args.out,
        django_version_string=django_version_string,
        command=command,
        pair_counts=pair_counts,
        label_counts=label_counts,
        small_labels=small_labels,
        n_ambiguous=n_ambiguous,
    )

    print(f"django {django_version_string}: parallel pairs per language: {pair_counts}")
    print("component label counts (kept):")
    for label, count in sorted(label_counts.items()):
        print(f"  {label:<14} {count}")
    print(f"  {'total':<14} {sum(label_counts.values())}")
    if small_labels:
        print(f"dropped labels with < {MIN_EXAMPLES_PER_LABEL} examples: {dict(sorted(small_labels.items()))}")
    print(f"dropped {n_ambiguous} strings found in several components")


if __name__ == "__main__":
    main()
