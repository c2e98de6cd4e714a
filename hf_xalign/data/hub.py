"""`hub:` sources: a split of a Hub dataset, named inside a config like a file path.

The grammar, in full (this is the one place it is written down):

    hub:PATH[@REVISION][:CONFIG]:SPLIT[SLICE]

- `PATH`: the dataset's repository id, `facebook/xnli` (ids without a namespace, `xnli`, still resolve where the Hub
  redirects them).
- `@REVISION` (*optional*, defaults to `main`): a branch, a tag or a commit sha, passed to
  `datasets.load_dataset(revision=...)`. Name one for every source whose content moves: UD publishes a branch per
  release, `hub:universal-dependencies/universal_dependencies@2.16:en_ewt:train`. A revision may hold `/` but not `:`.
- `@refs/convert/parquet`: the Hub's parquet export of a repository, where `datasets` (4 and later) no longer runs a
  repository's loading script. There `CONFIG` is the export's folder (`data_dir=CONFIG`), not a config name:
  `hub:someone/script_dataset@refs/convert/parquet:en:test`.
- `CONFIG` (*optional*): the configuration (`fr` of XNLI, `en_ewt` of UD, `de-en` of OPUS-100, `eng_Latn` of SIB-200).
- `SPLIT`: `train`, `test`, ...; `dev` and `validation` stand for each other where the dataset has only one of them.
- `SLICE` (*optional*): `datasets`' slice syntax, colons included: `train[:50000]`, `test[10%:]`.

A missing config or split gets one line that lists those that exist; a script-only repository gets one line that says
so and names the way out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import datasets

HUB_PREFIX = "hub:"
PARQUET_EXPORT = "refs/convert/parquet"
GRAMMAR = "hub:PATH[@REVISION][:CONFIG]:SPLIT"
# Split names that stand for each other when a dataset has only one of them (UD's parquet says `dev`).
SPLIT_ALIASES = {"dev": "validation", "validation": "dev"}
_SCRIPT_ERROR = "Dataset scripts are no longer supported"  # datasets' RuntimeError, load.py (datasets >= 4)
_SCRIPT_REFUSED = "requires you to execute the dataset script"  # datasets 3's ValueError with trust_remote_code=False

# The commit each `hub:` spec read in this process resolved to (a branch or tag moves; the commit does not), for
# `--check-data` to show and a cell's result to record (`HUB_COMMITS`). `datasets` keys its cache on it:
# `builder.hash` is the commit of a Hub dataset.
resolved_revisions: dict[str, str] = {}
HUB_COMMITS = "hub_commits"  # the key of a cell result's `details` that holds them, by spec


class HubSourceError(ValueError):
    """A `hub:` source that cannot be read as written: bad grammar, no such config or split, a script-only
    repository. The message is one line that names the source and the way out."""


@dataclass(frozen=True)
class HubSource:
    """One parsed `hub:` source (see the module docstring for the grammar).

    Args:
        path (`str`): the dataset's repository id.
        split (`str`): the split, with its slice if any (`train[:1000]`).
        config (`str`, *optional*): the configuration, or the parquet export's folder at `refs/convert/parquet`.
        revision (`str`, *optional*): the branch, tag or commit; `None` for `main`.
    """

    path: str
    split: str
    config: str | None = None
    revision: str | None = None

    @property
    def is_parquet_export(self) -> bool:
        return self.revision == PARQUET_EXPORT

    @property
    def split_name(self) -> str:
        return self.split.partition("[")[0]

    @property
    def split_slice(self) -> str:
        bracket, slice_ = self.split.partition("[")[1:]
        return bracket + slice_

    def __str__(self) -> str:
        revision = f"@{self.revision}" if self.revision else ""
        config = f":{self.config}" if self.config else ""
        return f"{HUB_PREFIX}{self.path}{revision}{config}:{self.split}"


def is_hub_spec(source: object) -> bool:
    """Whether `source` is a `hub:` spec (a string with the prefix), not a file or a dataset."""
    return isinstance(source, str) and source.startswith(HUB_PREFIX)


def parse_hub_spec(spec: str) -> HubSource:
    """Parse `hub:PATH[@REVISION][:CONFIG]:SPLIT[SLICE]` (see the module docstring).

    Raises:
        [`HubSourceError`]: the spec does not follow the grammar.
    """
    rest = spec[len(HUB_PREFIX) :]
    head, bracket, split_slice = rest.partition("[")  # a slice's own colons are not separators
    parts = head.split(":")
    path, _, revision = parts[0].partition("@")
    if (
        len(parts) not in (2, 3)
        or not all(parts)
        or not path
        or (_ and not revision)
        or (bracket and not split_slice.endswith("]"))
    ):
        raise HubSourceError(
            f"{spec!r}: expected {GRAMMAR}, e.g. hub:universal-dependencies/universal_dependencies@2.16:en_ewt:train"
        )
    config = parts[1] if len(parts) == 3 else None
    if revision == PARQUET_EXPORT and config is None:
        raise HubSourceError(f"{spec!r}: the parquet export needs its folder, hub:{path}@{PARQUET_EXPORT}:CONFIG:SPLIT")
    return HubSource(path, parts[-1] + bracket + split_slice, config, revision or None)


def load_hub_split(spec: str) -> datasets.Dataset:
    """The split a `hub:` spec names, through `datasets` (a network, or the local cache, is needed).

    `hub:facebook/xnli:fr:test`, `hub:universal-dependencies/universal_dependencies@2.16:en_ewt:dev`,
    `hub:Helsinki-NLP/opus-100:de-en:train[:50000]`.

    Raises:
        [`HubSourceError`]: see [`parse_hub_spec`]; a config or split that does not exist (the message lists those
            that do); a repository whose data comes from a loading script.
        `datasets.exceptions.DatasetNotFoundError`: no such repository or revision (a `FileNotFoundError`).
        `ConnectionError`: offline, and the source is not in the cache.
    """
    source = parse_hub_spec(spec)
    builder = _builder(source)
    splits = list(builder.config.data_files or builder.info.splits or {})
    split = resolve_split(source, splits)
    builder.download_and_prepare()
    resolved_revisions[spec] = builder.hash
    return builder.as_dataset(split=split + source.split_slice)


def resolve_split(source: HubSource, splits: list[str]) -> str:
    """The split to read: the one named, or its alias (`dev`/`validation`) when only that one exists.

    Raises:
        [`HubSourceError`]: neither exists; the message lists the splits there are.
    """
    wanted = source.split_name
    if wanted in splits or not splits:  # no split list known (no data files, no infos): `datasets` decides
        return wanted
    alias = SPLIT_ALIASES.get(wanted)
    if alias in splits:
        return alias
    raise HubSourceError(f"{source}: no split {wanted!r}; {_where(source)} has splits {', '.join(splits)}")


def _where(source: HubSource) -> str:
    """`facebook/xnli config 'fr'`, `someone/data folder 'en' at refs/convert/parquet`: where a split was looked for."""
    kind = "folder" if source.is_parquet_export else "config"
    config = f" {kind} {source.config!r}" if source.config else ""
    revision = f" at {source.revision}" if source.revision else ""
    return f"{source.path}{config}{revision}"


def _builder(source: HubSource) -> datasets.DatasetBuilder:
    """The dataset's builder; `datasets`' own errors for a config or a script repository made one line."""
    import datasets

    if source.is_parquet_export:
        kwargs = {"name": None, "data_dir": source.config}
        # Asked first: for a folder the export lacks, `datasets` falls back to its cache and names a cache miss.
        if not datasets.config.HF_HUB_OFFLINE:
            folders = _export_folders(source)
            if source.config not in folders:
                raise HubSourceError(
                    f"{source}: no folder {source.config!r}; {source.path} at {PARQUET_EXPORT} has folders "
                    f"{', '.join(folders)}"
                )
    else:
        kwargs = {"name": source.config}
    if source.revision is not None and not datasets.config.HF_HUB_OFFLINE:
        _check_revision(source)
    if int(datasets.__version__.split(".")[0]) < 4:
        # datasets 3 still runs loading scripts, after asking on stdin: never run remote code, never ask.
        kwargs["trust_remote_code"] = False
    try:
        return datasets.load_dataset_builder(source.path, revision=source.revision, **kwargs)
    except (RuntimeError, ValueError) as error:
        if _SCRIPT_ERROR not in str(error) and _SCRIPT_REFUSED not in str(error):
            if isinstance(error, ValueError):  # a config problem: one line, or `error` itself
                _raise_config_error(source, error)
            raise
        script = str(error).rpartition(" ")[2] if _SCRIPT_ERROR in str(error) else "its loading script"
        example = HubSource(source.path, source.split, source.config or "CONFIG", PARQUET_EXPORT)
        raise HubSourceError(
            f"{source}: {source.path} is a script-only dataset repository (its data comes from {script}), and "
            "loading scripts are not run (datasets 4 and later no longer run them; hf-xalign runs no remote code); "
            f"read its parquet export, {example}, or a local file"
        ) from None


def _check_revision(source: HubSource) -> None:
    """A revision the repository lacks is one line: datasets 3 silently read `main` instead."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RevisionNotFoundError

    try:
        HfApi().dataset_info(source.path, revision=source.revision)
    except RevisionNotFoundError:
        raise HubSourceError(f"{source}: {source.path} has no revision {source.revision!r}") from None


def _raise_config_error(source: HubSource, error: ValueError) -> None:
    """`datasets`' "BuilderConfig 'x' not found" or "Config name is missing" as one line listing the configs."""
    import datasets

    if "BuilderConfig" not in str(error) and "Config name is missing" not in str(error):
        raise error
    configs = datasets.get_dataset_config_names(source.path, revision=source.revision)
    problem = f"no config {source.config!r}" if source.config else "a config is needed"
    revision = f" at {source.revision}" if source.revision else ""
    raise HubSourceError(f"{source}: {problem}; {source.path}{revision} has configs {', '.join(configs)}") from None


def _export_folders(source: HubSource) -> list[str]:
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFolder

    entries = HfApi().list_repo_tree(source.path, repo_type="dataset", revision=source.revision)
    return sorted(entry.path for entry in entries if isinstance(entry, RepoFolder))
