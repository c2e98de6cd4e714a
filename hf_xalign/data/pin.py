"""`--check-data --pin`: every `hub:` source of a config that names no revision gets the commit it reads today.

    python recipes/xnli.py my_xnli.yaml --check-data --pin
    hub:facebook/xnli:en:train: pinned to 4d3b...e1 (main today)
    hub:universal-dependencies/universal_dependencies@2.16:en_ewt:test: kept (revision 2.16)

A source without `@REVISION` reads `main`, which moves: the same config then reads other data next month. Pinning
resolves each such repository's `main` to its commit sha (where a network exists) and writes `@<sha>` into the
config's own lines, so its comments, order and layout stay as they were (the YAML is edited, not dumped again). A
source that names a revision (a branch such as UD's `2.16`, a tag, a sha) is kept as written. Nothing is written
unless every unpinned source resolves: each one that does not gets its own line saying why.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from .hub import HubSource, HubSourceError, is_hub_spec, parse_hub_spec

# `hub:PATH:` where PATH names no revision, inside a YAML value (`[hub:...]`, `- fr=hub:...`, `'hub:...'`).
_UNPINNED = re.compile(r"(?<![\w/])hub:(?P<path>[^\s:@'\"\[\],#=]+):")


def config_hub_specs(value: Any) -> Iterator[str]:
    """Every `hub:` source among a loaded YAML's values (a `LANG=` prefix removed), in document order."""
    if isinstance(value, dict):
        for item in value.values():
            yield from config_hub_specs(item)
    elif isinstance(value, list):
        for item in value:
            yield from config_hub_specs(item)
    elif isinstance(value, str):
        spec = value.partition("=")[2] if "=hub:" in value else value
        if is_hub_spec(spec):
            yield spec


def resolve_main(path: str) -> str:
    """The commit sha of `main` of the dataset repository `path`, as the Hub (HF_ENDPOINT) answers now.

    Raises:
        `huggingface_hub.errors.RepositoryNotFoundError`, `ConnectionError` (offline included), ...: as the client.
    """
    from huggingface_hub import HfApi

    return HfApi().dataset_info(path).sha


def pin_config(path: str) -> bool:
    """Pin the `hub:` sources of the YAML config at `path` in place, printing one line per source; `True` when every
    source is pinned (the file is then rewritten if anything changed), `False` when one could not be (nothing is
    written)."""
    import yaml

    with open(path, encoding="utf-8") as f:
        text = f.read()
    commits: dict[str, str] = {}  # repository -> its main's commit, asked once per repository
    all_resolved = True
    for spec in dict.fromkeys(config_hub_specs(yaml.safe_load(text))):
        try:
            source = parse_hub_spec(spec)
        except HubSourceError as error:
            print(str(error), flush=True)
            all_resolved = False
            continue
        if source.revision is not None:
            print(f"{spec}: kept (revision {source.revision})", flush=True)
            continue
        try:
            commits[source.path] = commits.get(source.path) or resolve_main(source.path)
        except Exception as error:  # offline, no such repository, a refusal: this source's line, then the next
            print(f"{spec}: not pinned: {' '.join(str(error).split()) or type(error).__name__}", flush=True)
            all_resolved = False
            continue
        pinned = HubSource(source.path, source.split, source.config, commits[source.path])
        print(f"{spec}: pinned to {commits[source.path]} (main today): {pinned}", flush=True)
    if not all_resolved:
        print(f"{path}: not changed (every unpinned source must resolve first)", flush=True)
        return False
    pinned_text = "".join(_pin_line(line, commits) for line in text.splitlines(keepends=True))
    if pinned_text != text:
        _check_same_config(text, pinned_text, commits, path)
        with open(path, "w", encoding="utf-8") as f:
            f.write(pinned_text)
    return True


def _pin_line(line: str, commits: dict[str, str]) -> str:
    """`line` with `@<sha>` after each unpinned repository of `commits` in its value; its comment as it was."""
    comment = re.search(r"(^|\s)#", line)
    value, rest = (line[: comment.start()], line[comment.start() :]) if comment else (line, "")

    def pin(match: re.Match) -> str:
        sha = commits.get(match["path"])
        return f"hub:{match['path']}@{sha}:" if sha else match[0]

    return _UNPINNED.sub(pin, value) + rest


def _check_same_config(text: str, pinned_text: str, commits: dict[str, str], path: str) -> None:
    """The rewritten YAML must load as the original with exactly the pinned revisions added: a line this editor
    misread is refused rather than written."""
    import yaml

    def pinned(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: pinned(item) for key, item in value.items()}
        if isinstance(value, list):
            return [pinned(item) for item in value]
        spec = list(config_hub_specs(value)) if isinstance(value, str) else []
        if spec:
            source = parse_hub_spec(spec[0])
            if source.revision is None and source.path in commits:
                pinned_source = HubSource(source.path, source.split, source.config, commits[source.path])
                return value.removesuffix(spec[0]) + str(pinned_source)
        return value

    if yaml.safe_load(pinned_text) != pinned(yaml.safe_load(text)):
        raise ValueError(f"{path}: could not pin its hub: sources by editing its lines; pin them by hand (@REVISION)")
