"""`hub:` sources read through the project's own readers from the test Hub, which holds each layout the shipped configs
name, pushed with the real `datasets` client (tests/_hub_datasets.py). The oracle is the rows that were pushed.

The readers run in ONE client subprocess per module (`datasets` and `huggingface_hub` read HF_ENDPOINT at import, and
the suite runs offline); each test reads its own entry of what that subprocess reported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _hub_datasets import (
    OPUS,
    OPUS_ROWS,
    PARQUET_EXPORT,
    SCRIPT_EXPORT_ROWS,
    SCRIPT_REPO,
    SIB,
    SIB_ROWS,
    UD,
    UD_MAIN_ROWS,
    UD_RELEASE,
    UD_ROWS,
    XNLI,
    XNLI_ROWS,
)

from hf_xalign.data.hub import HubSource, HubSourceError, parse_hub_spec

# A label order unlike the dataset's own (entailment, neutral, contradiction): labels must travel by name.
XNLI_RECIPE_LABELS = ["contradiction", "entailment", "neutral"]

CLIENT = """
    import json, sys
    from hf_xalign.data.classification import load_classification
    from hf_xalign.data.conllu import UPOS_TAGS, read_treebank
    from hf_xalign.data.parallel import load_parallel

    def treebank(spec):
        data = read_treebank(spec, language="xx")
        return {"words": list(data["words"]), "upos": [[UPOS_TAGS[i] for i in tags] for tags in data["upos"]],
                "sent_id": list(data["sent_id"])}

    def classification(spec, **kwargs):
        data = load_classification(spec, **kwargs)
        names = data.features["label"].names
        text = [list(row) for row in zip(*(data[c] for c in data.column_names if c not in ("label", "lang")))]
        return {"text": text, "label": [names[i] for i in data["label"]]}

    def parallel(spec):
        data = load_parallel(spec)
        return [[row["src"], row["tgt"], row["src_lang"], row["tgt_lang"]] for row in data]

    readers = {"treebank": treebank, "classification": classification, "parallel": parallel}
    results = {}
    for name, reader, spec, kwargs in json.loads(sys.argv[1]):
        try:
            results[name] = {"value": readers[reader](spec, **kwargs)}
        except Exception as error:
            results[name] = {"error": type(error).__name__, "message": str(error)}
    print(json.dumps(results))
"""


def reads(xnli_sha: str) -> list[tuple[str, str, str, dict]]:
    """(name, reader, spec, keyword arguments) of every read the tests check."""
    ud_release = f"hub:{UD}@{UD_RELEASE}"
    return [
        ("ud_release_train", "treebank", f"{ud_release}:fr_gsd:train", {}),
        ("ud_release_test", "treebank", f"{ud_release}:fr_gsd:test", {}),
        ("ud_main_test", "treebank", f"hub:{UD}:fr_gsd:test", {}),
        ("ud_validation_is_dev", "treebank", f"{ud_release}:fr_gsd:validation", {}),
        ("ud_no_config", "treebank", f"{ud_release}:de_gsd:test", {}),
        ("ud_no_split", "treebank", f"{ud_release}:en_ewt:train", {}),
        ("ud_no_revision", "treebank", f"hub:{UD}@2.99:fr_gsd:test", {}),
        ("xnli_pinned", "classification", f"hub:{XNLI}@{xnli_sha}:fr:test", {"label_names": XNLI_RECIPE_LABELS}),
        ("xnli_dev_is_validation", "classification", f"hub:{XNLI}:fr:dev", {"label_names": XNLI_RECIPE_LABELS}),
        ("sib_train", "classification", f"hub:{SIB}:eng_Latn:train", {"layout": "sib-200"}),
        ("sib_validation_is_dev", "classification", f"hub:{SIB}:eng_Latn:validation", {"layout": "sib-200"}),
        ("opus_pair", "parallel", f"hub:{OPUS}:de-en:train", {}),
        ("opus_slice", "parallel", f"hub:{OPUS}:de-en:train[1:]", {}),
        ("script_main", "treebank", f"hub:{SCRIPT_REPO}:en_ewt:test", {}),
        ("script_export", "treebank", f"hub:{SCRIPT_REPO}@{PARQUET_EXPORT}:en_ewt:test", {}),
        ("script_export_no_folder", "treebank", f"hub:{SCRIPT_REPO}@{PARQUET_EXPORT}:fr_gsd:test", {}),
    ]


@pytest.fixture(scope="module")
def loaded(hub_datasets, tmp_path_factory) -> dict:
    server, pushed = hub_datasets
    env = server.client_env(tmp_path_factory.mktemp("hub_data_home"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parents[1]), env.get("PYTHONPATH")]))
    arguments = json.dumps(reads(pushed["xnli_sha"]))
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CLIENT), arguments], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.splitlines()[-1])


def value(loaded: dict, name: str):
    assert "value" in loaded[name], loaded[name]
    return loaded[name]["value"]


def error(loaded: dict, name: str) -> tuple[str, str]:
    assert "error" in loaded[name], loaded[name]
    return loaded[name]["error"], loaded[name]["message"]


def pushed_treebank(rows: list) -> dict:
    return {
        "words": [[word for word, _ in words] for _, words, _ in rows],
        "upos": [[tag for _, tag in words] for _, words, _ in rows],
        "sent_id": [sent_id for sent_id, _, _ in rows],
    }


def test_ud_at_the_pinned_branch_reads_syntactic_words_with_tags_by_name(loaded):
    assert value(loaded, "ud_release_train") == pushed_treebank(UD_ROWS[("fr_gsd", "train")])
    # "du" and "au" are multiword tokens: their words "de le" / "à le" are read, the surface forms are not.
    assert value(loaded, "ud_release_test")["words"] == [["à", "le", "marché"]]


def test_ud_without_a_revision_reads_main_not_the_release(loaded):
    assert value(loaded, "ud_main_test") == pushed_treebank(UD_MAIN_ROWS[("fr_gsd", "test")])


def test_validation_reads_dev_where_only_dev_exists(loaded):
    assert value(loaded, "ud_validation_is_dev") == pushed_treebank(UD_ROWS[("fr_gsd", "dev")])


def test_dev_reads_validation_where_only_validation_exists(loaded):
    premise, hypothesis, label = XNLI_ROWS[("fr", "validation")][0]
    assert value(loaded, "xnli_dev_is_validation") == {"text": [[premise, hypothesis]], "label": [label]}


def test_missing_config_split_or_revision_is_one_line_naming_what_exists(loaded):
    kind, message = error(loaded, "ud_no_config")
    assert kind == "HubSourceError" and "\n" not in message
    assert message.endswith(f"no config 'de_gsd'; {UD} at {UD_RELEASE} has configs en_ewt, fr_gsd")
    kind, message = error(loaded, "ud_no_split")
    assert kind == "HubSourceError" and "\n" not in message
    assert message.endswith(f"no split 'train'; {UD} config 'en_ewt' at {UD_RELEASE} has splits test")
    kind, message = error(loaded, "ud_no_revision")
    assert kind == "HubSourceError" and message.endswith(f"{UD} has no revision '2.99'") and "\n" not in message


def test_xnli_pinned_by_commit_keeps_label_names(loaded):
    rows = XNLI_ROWS[("fr", "test")]
    assert value(loaded, "xnli_pinned") == {
        "text": [[premise, hypothesis] for premise, hypothesis, _ in rows],
        "label": [label for _, _, label in rows],
    }


def test_sib_reads_tsv_through_the_readme_configs(loaded):
    rows = SIB_ROWS[("eng_Latn", "train")]
    assert value(loaded, "sib_train") == {
        "text": [[text] for _, _, text in rows],
        "label": [category for _, category, _ in rows],
    }
    assert value(loaded, "sib_validation_is_dev")["text"] == [[text] for _, _, text in SIB_ROWS[("eng_Latn", "dev")]]


def test_opus_translation_column_becomes_pairs_with_languages(loaded):
    assert value(loaded, "opus_pair") == [[de, en, "de", "en"] for de, en in OPUS_ROWS[("de-en", "train")]]
    assert value(loaded, "opus_slice") == [[de, en, "de", "en"] for de, en in OPUS_ROWS[("de-en", "train")][1:]]


def test_script_only_repository_gets_one_line_with_the_way_out(loaded):
    kind, message = error(loaded, "script_main")
    assert kind == "HubSourceError" and "\n" not in message
    assert f"{SCRIPT_REPO} is a script-only dataset repository" in message
    assert "loading scripts are not run" in message
    assert f"hub:{SCRIPT_REPO}@{PARQUET_EXPORT}:en_ewt:test, or a local file" in message


def test_parquet_export_reads_the_config_folder(loaded):
    assert value(loaded, "script_export") == pushed_treebank(SCRIPT_EXPORT_ROWS[("en_ewt", "test")])
    kind, message = error(loaded, "script_export_no_folder")
    assert kind == "HubSourceError"
    assert message.endswith(f"no folder 'fr_gsd'; {SCRIPT_REPO} at {PARQUET_EXPORT} has folders en_ewt")


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("hub:facebook/xnli:fr:test", HubSource("facebook/xnli", "test", "fr")),
        ("hub:my/pairs:train", HubSource("my/pairs", "train")),
        (f"hub:{UD}@2.16:en_ewt:dev", HubSource(UD, "dev", "en_ewt", "2.16")),
        ("hub:a/b@refs/convert/parquet:en:test[:10]", HubSource("a/b", "test[:10]", "en", PARQUET_EXPORT)),
        ("hub:Helsinki-NLP/opus-100:de-en:train[:50000]", HubSource("Helsinki-NLP/opus-100", "train[:50000]", "de-en")),
    ],
)
def test_grammar(spec, parsed):
    assert parse_hub_spec(spec) == parsed
    assert str(parsed) == spec


@pytest.mark.parametrize(
    "spec", ["hub:xnli", "hub:a/b@:en:test", "hub:@v1:en:test", "hub:a/b@refs/convert/parquet:test"]
)
def test_bad_grammar_is_refused(spec):
    with pytest.raises(HubSourceError, match=r"expected hub:PATH\[@REVISION\]\[:CONFIG\]:SPLIT|needs its folder"):
        parse_hub_spec(spec)


def shipped_hub_sources() -> list[tuple[str, str]]:
    """(config file, `hub:` source) for every Hub source the shipped configs name, `LANG=` prefixes removed."""
    import yaml

    def strings(value):
        if isinstance(value, dict):
            return [s for item in value.values() for s in strings(item)]
        if isinstance(value, list):
            return [s for item in value for s in strings(item)]
        return [value.partition("=")[2] if "=hub:" in str(value) else value] if isinstance(value, str) else []

    configs = sorted((Path(__file__).parents[1] / "recipes" / "configs").glob("*.yaml"))
    return [
        (path.name, text)
        for path in configs
        for text in strings(yaml.safe_load(path.read_text(encoding="utf-8")))
        if text.startswith("hub:")
    ]


def test_every_shipped_hub_source_parses_and_ud_names_its_release():
    sources = shipped_hub_sources()
    assert {name for name, _ in sources} >= {"pos.yaml", "study_xlmr.yaml", "align_xlmr.yaml"}
    for name, text in sources:
        source = parse_hub_spec(text)
        if "universal_dependencies" in source.path:
            assert (source.path, source.revision) == (UD, UD_RELEASE), (name, text)


ROOT = Path(__file__).parents[1]


def run_recipe_check(env: dict, *args: str) -> subprocess.CompletedProcess:
    env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))}
    command = [sys.executable, *args, "--check-data"]
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)


CHECK_SOURCES = """
    import json, sys
    from hf_xalign.data.check import check_sources, recipe_sources
    sys.exit(0 if check_sources(recipe_sources("pos", json.load(open(sys.argv[1])))) else 1)
"""


def run_source_check(env: dict, config: Path) -> subprocess.CompletedProcess:
    env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))}
    command = [sys.executable, "-c", textwrap.dedent(CHECK_SOURCES), str(config)]
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def pos_config(tmp_path_factory) -> Path:
    ud = f"hub:{UD}@{UD_RELEASE}"
    path = tmp_path_factory.mktemp("check") / "pos.yaml"
    config = {
        "model_name_or_path": "not-read-by-the-check",
        "output_dir": str(path.parent / "out"),
        "source_language": "fr",
        "train_treebank": [f"{ud}:fr_gsd:train"],
        "eval_treebanks": [f"fr={ud}:fr_gsd:test", f"de={ud}:de_gsd:test", "en=no/such.conllu"],
        "parallel_data": [f"hub:{OPUS}:de-en:train"],
    }
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def test_check_data_prints_one_line_per_source_and_fails_if_one_is_wrong(hub_datasets, pos_config, tmp_path_factory):
    server, _ = hub_datasets
    home = tmp_path_factory.mktemp("check_home")
    result = run_recipe_check(server.client_env(home), "recipes/pos.py", str(pos_config))

    release = server.repos[("dataset", UD)].branches[UD_RELEASE]  # the commit the branch names, on the server
    opus_main = server.repos[("dataset", OPUS)].branches["main"]
    ud = f"hub:{UD}@{UD_RELEASE}"
    assert result.returncode == 1, result.stderr[-3000:]
    assert result.stdout.splitlines() == [
        f"train_treebank {ud}:fr_gsd:train: ok ({len(UD_ROWS[('fr_gsd', 'train')])} rows, "
        f"revision {UD_RELEASE} = {release})",
        f"eval_treebanks[fr] {ud}:fr_gsd:test: ok (1 row, revision {UD_RELEASE} = {release})",
        f"eval_treebanks[de] {ud}:de_gsd:test: no config 'de_gsd'; {UD} at {UD_RELEASE} has configs en_ewt, fr_gsd",
        "eval_treebanks[en] no/such.conllu: No such CoNLL-U file: no/such.conllu",
        f"parallel_data hub:{OPUS}:de-en:train: ok (2 rows, revision main = {opus_main})",
    ]

    # Offline with that cache: the sources read before are read again; offline with an empty cache, each Hub source
    # says so on its own line. (The check's own module, without the recipe: what it reads is the same, and it
    # starts in a third of the time.)
    offline = {**server.client_env(home), "HF_HUB_OFFLINE": "1"}
    cached = run_source_check(offline, pos_config).stdout.splitlines()
    assert [line.partition(": ")[2].startswith("ok (") for line in cached] == [True, True, False, False, True]
    empty = {**server.client_env(tmp_path_factory.mktemp("empty_home")), "HF_HUB_OFFLINE": "1"}
    uncached = run_source_check(empty, pos_config)
    assert uncached.returncode == 1
    assert [line.endswith(": offline, not cached") for line in uncached.stdout.splitlines()] == [
        True,
        True,
        True,
        False,  # a file is checked offline as online
        True,
    ]


def test_check_data_passes_offline_on_the_demo_configs(capsys, monkeypatch):
    from hf_xalign.args import AlignmentTrainingArguments
    from hf_xalign.experiment.check_data import check_recipe_data, check_study_data
    from hf_xalign.experiment.study.spec import read_study_config
    from hf_xalign.tasks import ClassificationArguments, PosArguments

    monkeypatch.chdir(ROOT)  # the demo configs' paths are relative to the project
    statuses = [
        check_recipe_data("pos", (PosArguments, AlignmentTrainingArguments), ["recipes/configs/pos_demo.yaml"]),
        check_recipe_data(
            "classification", (ClassificationArguments, AlignmentTrainingArguments), ["recipes/configs/xnli_demo.yaml"]
        ),
        check_study_data(read_study_config("recipes/configs/study_demo.yaml")),
    ]
    lines = capsys.readouterr().out.splitlines()
    assert statuses == [0, 0, 0]
    assert len(lines) > 20 and all(": ok (" in line for line in lines)


def test_the_card_records_the_commit_a_branch_named_source_was_read_at(hub_datasets, tmp_path):
    from transformers import XLMRobertaForTokenClassification

    from hf_xalign.data.conllu import UPOS_TAGS
    from hf_xalign.model_card import build_model_card
    from hf_xalign.tiny import tiny_xlmr_config, train_tokenizer

    server, _ = hub_datasets
    words = [
        word for rows in (*UD_ROWS.values(), *UD_MAIN_ROWS.values()) for _, sentence, _ in rows for word, _ in sentence
    ]
    tokenizer = train_tokenizer([" ".join(words)] * 4, vocab_size=200)
    model = XLMRobertaForTokenClassification(tiny_xlmr_config(tokenizer, hidden_size=32, num_labels=len(UPOS_TAGS)))
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    release = f"hub:{UD}@{UD_RELEASE}"
    config = {
        "model_name_or_path": str(tmp_path / "model"),
        "train_treebank": [f"{release}:fr_gsd:train"],
        "source_language": "fr",
        "eval_treebanks": [f"fr={release}:fr_gsd:train"],  # the only split of two sentences: a score's interval needs 2
        "compare": False,
        "alignment_mode": "none",
        "output_dir": str(tmp_path / "out"),
        "max_steps": 1,
        "save_strategy": "no",
        "report_to": [],
        "use_cpu": True,
        "disable_tqdm": True,
    }
    (tmp_path / "pos.yaml").write_text(json.dumps(config))
    env = server.client_env(tmp_path / "home")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "recipes/pos.py", str(tmp_path / "pos.yaml")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    (results_file,) = (tmp_path / "out").glob("*/results.json")
    card = build_model_card(str(results_file.parent), "someone/tiny-pos")
    recorded = {r.dataset_name.split()[0]: (r.dataset_revision, r.dataset_args) for r in card.data.eval_results}
    ud = server.repos[("dataset", UD)]  # the oracle: the commits the server's branches point at
    assert ud.branches[UD_RELEASE] != ud.branches["main"]
    assert recorded == {"fr": (ud.branches[UD_RELEASE], {"revision": UD_RELEASE})}


def comment_above(lines: list[str], index: int) -> str:
    """The comment lines right above the YAML block that holds line `index` (its list items and keys walked up)."""
    while index > 0 and lines[index - 1].strip() and not lines[index - 1].lstrip().startswith("#"):
        index -= 1
    comments = []
    while index > 0 and lines[index - 1].lstrip().startswith("#"):
        index -= 1
        comments.insert(0, lines[index])
    return "\n".join(comments)


def test_every_unpinned_shipped_source_says_how_to_pin_it():
    unpinned = [(name, spec) for name, spec in shipped_hub_sources() if parse_hub_spec(spec).revision is None]
    assert unpinned  # XNLI, SIB-200 and OPUS-100 have no release branches: pinned by commit, where a network exists
    for name, spec in unpinned:
        lines = (ROOT / "recipes" / "configs" / name).read_text(encoding="utf-8").splitlines()
        (index,) = [i for i, line in enumerate(lines) if spec in line.partition("#")[0]]
        assert "--check-data --pin" in comment_above(lines, index), (name, spec)


@pytest.mark.parametrize("name", sorted({name for name, _ in shipped_hub_sources()}))
def test_pin_edits_each_shipped_config_in_place(name, tmp_path, monkeypatch, capsys):
    import yaml

    import hf_xalign.data.pin

    commits = {}  # a made-up commit per repository, as the Hub would answer
    monkeypatch.setattr(
        hf_xalign.data.pin, "resolve_main", lambda path: commits.setdefault(path, f"{len(commits):040x}")
    )
    original = (ROOT / "recipes" / "configs" / name).read_text(encoding="utf-8")
    config = tmp_path / name
    config.write_text(original, encoding="utf-8")

    assert hf_xalign.data.pin.pin_config(str(config))

    pinned = config.read_text(encoding="utf-8")
    # Oracle: the original's values with `@<commit>` after each unpinned repository, by plain string replacement
    # (comments too, which loading drops).
    expected = original
    for path, commit in commits.items():
        expected = expected.replace(f"hub:{path}:", f"hub:{path}@{commit}:")
    assert yaml.safe_load(pinned) == yaml.safe_load(expected)
    assert (pinned == original) == (not commits)
    # Every line but those with a source is as it was: comments, order and layout kept.
    changed = [(a, b) for a, b in zip(original.splitlines(), pinned.splitlines()) if a != b]
    assert len(original.splitlines()) == len(pinned.splitlines())
    assert all(not a.lstrip().startswith("#") and "hub:" in a for a, _ in changed)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len({spec for n, spec in shipped_hub_sources() if n == name})
