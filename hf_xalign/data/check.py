"""`--check-data`: every data source of a config read as the run will read it, without training; one line each.

    pos.yaml train_treebank hub:universal-dependencies/universal_dependencies@2.16:en_ewt:train: ok (12544 rows, revision 2.16 = 3f2c...)
    pos.yaml eval_treebanks[de] data/ud/de_gsd-ud-test.conllu: No such CoNLL-U file: data/ud/de_gsd-ud-test.conllu
    pos.yaml parallel_data hub:Helsinki-NLP/opus-100:de-en:train: offline, not cached

Each source goes through the recipe's own reader (treebanks, labelled examples, parallel text), so its columns,
labels and languages are checked as the run checks them; a source's problem is its own line, so a user learns every
missing or broken source at once. Offline (HF_HUB_OFFLINE=1), a Hub source that is not in the cache says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import hub

OFFLINE_NOT_CACHED = "offline, not cached"


@dataclass(frozen=True)
class DataSource:
    """One source of a config: the option that names it, the source as written, and the reader the run uses.

    Args:
        option (`str`): `train_treebank`, `eval_data[fr]`, `parallel_data`, ...
        source (`Any`): a path, a `hub:` spec, or a pair of plain-text files.
        read (`Callable`): reads the source into a `datasets.Dataset`, raising what the run would raise.
    """

    option: str
    source: Any
    read: Callable[[Any], Any]


def recipe_sources(task: str, values: Mapping[str, Any]) -> list[DataSource]:
    """The sources of a recipe config (`values`: its options, overrides applied) for the task `pos`,
    `classification` (xnli.py) or `align`; the parallel text of each."""
    from .classification import load_classification
    from .conllu import read_treebank
    from .parallel import load_parallel

    sources: list[DataSource] = []
    if task == "pos":
        source_language = values.get("source_language", "")
        for source in _listed(values.get("train_treebank")):
            sources.append(DataSource("train_treebank", source, lambda s: read_treebank(s, language=source_language)))
        for language, source in _languages(values.get("eval_treebanks")):
            sources.append(
                DataSource(
                    f"eval_treebanks[{language}]", source, lambda s, lang=language: read_treebank(s, language=lang)
                )
            )
    elif task == "classification":
        layout, label_set = values.get("layout", "xnli"), values.get("label_set") or None
        train_labels: list[str] = []  # as in the run, every evaluation set is held to the training data's labels

        def read_train(source: Any) -> Any:
            data = load_classification(source, layout=layout, label_names=label_set)
            train_labels[:] = [*train_labels, *(n for n in data.features["label"].names if n not in train_labels)]
            return data

        def read_eval(source: Any, language: str) -> Any:
            labels = label_set or train_labels or None
            return load_classification(source, layout=layout, label_names=labels, language=language)

        for source in _listed(values.get("train_data")):
            sources.append(DataSource("train_data", source, read_train))
        for language, source in _languages(values.get("eval_data")):
            sources.append(DataSource(f"eval_data[{language}]", source, lambda s, lang=language: read_eval(s, lang)))
    elif task != "align":
        raise ValueError(f"--check-data: no sources known for the task {task!r} (pos, classification, align)")
    for source in _listed(values.get("parallel_data")):
        # A two-element list is a pair of plain-text files, as load_parallel reads it.
        pair = tuple(source) if isinstance(source, list) else source
        sources.append(DataSource("parallel_data", pair, lambda s: load_parallel([s])))
    return sources


def _listed(value: Any) -> list:
    return [] if value is None else list(value) if isinstance(value, (list, tuple)) else [value]


def _languages(entries: Any) -> Iterable[tuple[str, str]]:
    for entry in _listed(entries):
        language, _, source = str(entry).partition("=")
        yield language, source


def check_source(source: DataSource) -> tuple[bool, str]:
    """`(ok, line)` for one source: `ok (N rows)`, with the revision for a Hub source, or what is wrong."""
    import datasets

    name = " ".join(source.source) if isinstance(source.source, tuple) else str(source.source)
    try:
        data = source.read(source.source)
    except ConnectionError as error:
        offline = datasets.config.HF_HUB_OFFLINE
        return False, f"{source.option} {name}: {OFFLINE_NOT_CACHED if offline else error}"
    except Exception as error:  # every problem of a source is its line; the next source is checked all the same
        message = " ".join(str(error).split()) or type(error).__name__
        return False, f"{source.option} {name}: {message.removeprefix(f'{name}: ')}"
    revision = hub.resolved_revisions.get(name) if hub.is_hub_spec(name) else None
    if revision is not None:
        named = hub.parse_hub_spec(name).revision or "main"
        revision_text = f", revision {named}" if named == revision else f", revision {named} = {revision}"
    else:
        revision_text = ""
    rows = f"{len(data)} row{'' if len(data) == 1 else 's'}"
    return True, f"{source.option} {name}: ok ({rows}{revision_text})"


def check_sources(sources: Iterable[DataSource], prefix: str = "") -> bool:
    """Print one line per source (after `prefix`); `True` when every source is ok."""
    all_ok = True
    for source in sources:
        ok, line = check_source(source)
        print(f"{prefix}{line}", flush=True)
        all_ok &= ok
    return all_ok
