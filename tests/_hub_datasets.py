"""Tiny dataset repositories on the test Hub, laid out as the shipped configs' sources are on the Hub, built with the
real tools: `DatasetDict.push_to_hub` and `HfApi`. Run as a script against a server (environment from
`HubServer.client_env`); the tests import the rows from here as their oracle.

What each layout rests on, and what could not be checked offline (the Hub cannot be read from here; the facts come
from the dataset cards, the `datasets` documentation and the issue that asked for this):
- UD, `universal-dependencies/universal_dependencies`: one config per treebank, a branch per UD release (2.15 and
  later), parquet under `parquet/<treebank>/`, splits train/dev/test, `tokens` the syntactic words, `upos` a
  `ClassLabel` whose 18 names are in the order of the retired loading script (NOUN, PUNCT, ADP, ..., with `_`),
  multiword tokens in their own column. ASSUMED: that column's name and shape (`mwt`: a list of {id, form}); the file
  names are push_to_hub's (`<split>-00000-of-00001.parquet`), the card says `<split>.parquet`: the README's
  `configs:` points at them either way. The UD converter that publishes the repository is not on the package index.
- XNLI, `facebook/xnli`: a parquet config per language, label a `ClassLabel` (entailment, neutral, contradiction),
  splits train/validation/test.
- SIB-200, `Davlan/sib200`: TSV per language through `configs:` in the README. ASSUMED: the paths
  (`data/<lang>/{train,dev,test}.tsv`, as in the SIB-200 release), the columns (index_id, category, text) and the
  split named `dev`.
- OPUS-100, `Helsinki-NLP/opus-100`: a parquet config per pair with one `translation` column.
- A script-only repository (`datasets` 4+ refuses it) with the parquet export the Hub's converter writes beside it,
  at `refs/convert/parquet`: `<config>/<split>/0000.parquet` (the export's current layout, seen in the Hub's file
  listings of the retired `universal_dependencies` repository).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import datasets

UD = "universal-dependencies/universal_dependencies"
UD_RELEASE = "2.16"  # the pinned branch; `main` holds another release with other rows
# The retired UD loading script's `upos` names, in its order (not the UD guidelines' alphabetical one).
UD_HUB_UPOS = (
    "NOUN", "PUNCT", "ADP", "NUM", "SYM", "SCONJ", "ADJ", "PART", "DET", "CCONJ",
    "PROPN", "PRON", "X", "_", "ADV", "INTJ", "VERB", "AUX",
)  # fmt: skip
# Sentences as (sent_id, [(word, UPOS)], multiword tokens): the words are syntactic words ("du" = "de" + "le").
UD_ROWS = {
    ("fr_gsd", "train"): [
        (
            "fr-train-1",
            [("Il", "PRON"), ("parle", "VERB"), ("de", "ADP"), ("le", "DET"), ("chat", "NOUN")],
            [("3-4", "du")],
        ),
        ("fr-train-2", [("Deux", "NUM"), ("chiens", "NOUN"), ("dorment", "VERB"), (".", "PUNCT")], []),
    ],
    ("fr_gsd", "dev"): [("fr-dev-1", [("Oui", "INTJ"), ("!", "PUNCT")], [])],
    ("fr_gsd", "test"): [("fr-test-1", [("à", "ADP"), ("le", "DET"), ("marché", "NOUN")], [("1-2", "au")])],
    ("en_ewt", "test"): [("en-test-1", [("Paris", "PROPN"), ("is", "AUX"), ("big", "ADJ")], [])],
}
UD_MAIN_ROWS = {  # `main`: a later release, so that a test sees which revision was read
    ("fr_gsd", "test"): [("fr-test-main", [("Non", "INTJ")], [])],
    ("en_ewt", "test"): [("en-test-main", [("No", "INTJ")], [])],
}

XNLI = "facebook/xnli"
XNLI_LABELS = ("entailment", "neutral", "contradiction")
XNLI_ROWS = {
    ("fr", "train"): [("Il pleut.", "Le sol est mouillé.", "entailment"), ("Il dort.", "Il court.", "contradiction")],
    ("fr", "validation"): [("Elle lit.", "Elle lit un livre.", "neutral")],
    ("fr", "test"): [("Le chat mange.", "Un animal mange.", "entailment"), ("Il fait nuit.", "Il fait jour.", "contradiction")],
    ("de", "test"): [("Es regnet.", "Es ist nass.", "neutral")],
}  # fmt: skip

SIB = "Davlan/sib200"
SIB_ROWS = {
    ("eng_Latn", "train"): [(0, "sports", "The team won the match."), (1, "travel", "The train leaves at noon.")],
    ("eng_Latn", "dev"): [(2, "health", "Drink water every day.")],
    ("eng_Latn", "test"): [(3, "politics", "The vote is on Sunday.")],
    ("deu_Latn", "test"): [(3, "politics", "Die Wahl ist am Sonntag.")],
}

OPUS = "Helsinki-NLP/opus-100"
OPUS_ROWS = {
    ("de-en", "train"): [("Guten Morgen.", "Good morning."), ("Danke.", "Thank you.")],
    ("en-fr", "train"): [("Good night.", "Bonne nuit.")],
}

SCRIPT_REPO = "legacy/ud_script"  # `datasets` looks for `<name>.py` at the root: ud_script.py
SCRIPT_EXPORT_ROWS = {("en_ewt", "test"): [("export-1", [("Hello", "INTJ"), ("!", "PUNCT")], [])]}
PARQUET_EXPORT = "refs/convert/parquet"


def ud_dataset(rows: list) -> datasets.Dataset:
    import datasets

    features = datasets.Features(
        {
            "sent_id": datasets.Value("string"),
            "text": datasets.Value("string"),
            "tokens": datasets.Sequence(datasets.Value("string")),
            "upos": datasets.Sequence(datasets.ClassLabel(names=list(UD_HUB_UPOS))),
            "mwt": [{"id": datasets.Value("string"), "form": datasets.Value("string")}],
        }
    )
    columns = {
        "sent_id": [sent_id for sent_id, _, _ in rows],
        "text": [" ".join(word for word, _ in words) for _, words, _ in rows],
        "tokens": [[word for word, _ in words] for _, words, _ in rows],
        "upos": [[tag for _, tag in words] for _, words, _ in rows],  # names: encoded by the ClassLabel
        "mwt": [[{"id": span, "form": form} for span, form in mwt] for _, _, mwt in rows],
    }
    return datasets.Dataset.from_dict(columns, features=features)


def push_ud(api) -> None:
    import datasets

    api.create_repo(UD, repo_type="dataset")
    for treebank in ("fr_gsd", "en_ewt"):
        main = {split: ud_dataset(rows) for (tb, split), rows in UD_MAIN_ROWS.items() if tb == treebank}
        datasets.DatasetDict(main).push_to_hub(UD, config_name=treebank, data_dir=f"parquet/{treebank}")
    api.create_branch(UD, repo_type="dataset", branch=UD_RELEASE)
    for treebank in ("fr_gsd", "en_ewt"):
        release = {split: ud_dataset(rows) for (tb, split), rows in UD_ROWS.items() if tb == treebank}
        datasets.DatasetDict(release).push_to_hub(
            UD, config_name=treebank, data_dir=f"parquet/{treebank}", revision=UD_RELEASE
        )


def push_xnli() -> str:
    """The commit sha after the push: XNLI has no release branches, so a config pins it by sha."""
    import datasets
    from huggingface_hub import HfApi

    features = datasets.Features(
        {
            "premise": datasets.Value("string"),
            "hypothesis": datasets.Value("string"),
            "label": datasets.ClassLabel(names=list(XNLI_LABELS)),
        }
    )
    for language in ("fr", "de"):
        splits = {
            split: datasets.Dataset.from_dict(
                {
                    "premise": [p for p, _, _ in rows],
                    "hypothesis": [h for _, h, _ in rows],
                    "label": [label for _, _, label in rows],
                },
                features=features,
            )
            for (lang, split), rows in XNLI_ROWS.items()
            if lang == language
        }
        datasets.DatasetDict(splits).push_to_hub(XNLI, config_name=language)
    return HfApi().dataset_info(XNLI).sha


def push_sib(api, folder: Path) -> None:
    configs = []
    for (language, split), rows in SIB_ROWS.items():
        path = folder / "data" / language / f"{split}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = ["index_id\tcategory\ttext", *(f"{i}\t{category}\t{text}" for i, category, text in rows)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        configs.append((language, split))
    card = ["---", "configs:"]
    for language in dict.fromkeys(language for language, _ in configs):
        card += [f"- config_name: {language}", "  data_files:"]
        for split in (split for lang, split in configs if lang == language):
            card += [f"  - split: {split}", f"    path: data/{language}/{split}.tsv"]
    (folder / "README.md").write_text("\n".join([*card, "---", "# SIB-200 (test fixture)", ""]), encoding="utf-8")
    api.create_repo(SIB, repo_type="dataset")
    api.upload_folder(repo_id=SIB, repo_type="dataset", folder_path=folder)


def push_opus() -> None:
    import datasets

    for pair in ("de-en", "en-fr"):
        languages = pair.split("-")
        features = datasets.Features({"translation": datasets.Translation(languages=languages)})
        splits = {
            split: datasets.Dataset.from_dict(
                {"translation": [dict(zip(languages, texts)) for texts in rows]}, features=features
            )
            for (p, split), rows in OPUS_ROWS.items()
            if p == pair
        }
        datasets.DatasetDict(splits).push_to_hub(OPUS, config_name=pair)


def push_script_repo(api, folder: Path) -> None:
    """`main`: a loading script and a card without `configs:`; the parquet export beside it, as the converter lays
    it out (`<config>/<split>/0000.parquet`), uploaded with the client."""
    main = folder / "main"
    main.mkdir(parents=True)
    (main / "ud_script.py").write_text("import datasets  # a loading script: datasets 4+ will not run it\n")
    (main / "README.md").write_text("---\nlicense: cc-by-sa-4.0\n---\n# A dataset with a loading script\n")
    api.create_repo(SCRIPT_REPO, repo_type="dataset")
    api.upload_folder(repo_id=SCRIPT_REPO, repo_type="dataset", folder_path=main)
    export = folder / "export"
    for (config, split), rows in SCRIPT_EXPORT_ROWS.items():
        path = export / config / split / "0000.parquet"
        path.parent.mkdir(parents=True)
        ud_dataset(rows).to_parquet(str(path))
    api.create_branch(SCRIPT_REPO, repo_type="dataset", branch=PARQUET_EXPORT)
    api.upload_folder(repo_id=SCRIPT_REPO, repo_type="dataset", folder_path=export, revision=PARQUET_EXPORT)


def main() -> None:
    from huggingface_hub import HfApi

    api = HfApi()
    with tempfile.TemporaryDirectory() as scratch:
        push_ud(api)
        xnli_sha = push_xnli()
        push_sib(api, Path(scratch) / "sib")
        push_opus()
        push_script_repo(api, Path(scratch) / "script")
    print(json.dumps({"xnli_sha": xnli_sha}))


if __name__ == "__main__":
    sys.exit(main())
