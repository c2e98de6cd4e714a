# Copyright 2025 The hf-xalign Authors.
# Licensed under the Apache License, Version 2.0.
"""`tr_gold`: the Turkish Web Treebank converted from inflectional groups to words and from its tags to UD UPOS."""

from __future__ import annotations

import unicodedata
from collections import Counter
from pathlib import Path

from conllu_sentence import Sentence

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
