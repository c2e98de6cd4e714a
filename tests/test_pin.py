"""`--check-data --pin` on the local Hub: a config's unpinned `hub:` sources get the commit `main` has today, written
into the config's own lines, and the pinned config goes on reading that commit after `main` moves. Oracle: the
server's commits and the rows that were pushed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LABELS = ["entailment", "neutral", "contradiction"]
FIRST = {"train": [["Il pleut.", "Le sol est mouillé.", "entailment"]], "test": [["Il dort.", "Il court.", "neutral"]]}
SECOND = {"train": FIRST["train"], "test": [["Oui.", "Non.", "contradiction"], ["Il lit.", "Il lit.", "entailment"]]}

PUSH = """
    import json, sys
    import datasets
    repo, labels, rows = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
    features = datasets.Features({"premise": datasets.Value("string"), "hypothesis": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=labels)})
    splits = {split: datasets.Dataset.from_dict({"premise": [r[0] for r in split_rows],
                                                 "hypothesis": [r[1] for r in split_rows],
                                                 "label": [r[2] for r in split_rows]}, features=features)
              for split, split_rows in rows.items()}
    datasets.DatasetDict(splits).push_to_hub(repo, config_name="fr")
"""

# {revision} is where --pin writes `@<sha>`; the comments name the unpinned form, and must stay as they are.
CONFIG = """\
# Pinning test (hub:{repo}:fr:train in a comment is not a source)
model_name_or_path: not-read-by-the-check
output_dir: {output_dir}
layout: xnli
train_data: [hub:{repo}{revision}:fr:train]  # the source language; hub:{repo}:fr:train
eval_data:
  - fr=hub:{repo}{revision}:fr:test    # zero-shot
  - en=hub:{repo}@main:fr:test  # a named revision is kept, even main
"""


def run(env: dict, *command: str) -> subprocess.CompletedProcess:
    env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))}
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)


def push(env: dict, repo: str, rows: dict) -> None:
    result = run(env, sys.executable, "-c", textwrap.dedent(PUSH), repo, json.dumps(LABELS), json.dumps(rows))
    assert result.returncode == 0, result.stderr[-3000:]


def test_pin_writes_todays_commit_and_the_config_keeps_reading_it(hub_server, tmp_path):
    repo = f"{hub_server.user}/xnli"
    push(hub_server.client_env(tmp_path / "pusher"), repo, FIRST)
    first = hub_server.repos[("dataset", repo)].branches["main"]
    config = tmp_path / "xnli.yaml"
    template = {"repo": repo, "output_dir": tmp_path / "out"}
    config.write_text(CONFIG.format(revision="", **template), encoding="utf-8")

    pinned = run(
        hub_server.client_env(tmp_path / "home1"),
        sys.executable,
        "recipes/xnli.py",
        str(config),
        "--check-data",
        "--pin",
    )

    assert pinned.returncode == 0, pinned.stderr[-3000:]
    assert config.read_text(encoding="utf-8") == CONFIG.format(revision=f"@{first}", **template)
    assert pinned.stdout.splitlines()[:3] == [
        f"hub:{repo}:fr:train: pinned to {first} (main today): hub:{repo}@{first}:fr:train",
        f"hub:{repo}:fr:test: pinned to {first} (main today): hub:{repo}@{first}:fr:test",
        f"hub:{repo}@main:fr:test: kept (revision main)",
    ]

    push(hub_server.client_env(tmp_path / "pusher"), repo, SECOND)
    commits = hub_server.repos[("dataset", repo)]
    second = commits.branches["main"]
    assert second != first and first in commits.commits  # main moved; the pinned commit is still there

    checked = run(
        hub_server.client_env(tmp_path / "home2"), sys.executable, "recipes/xnli.py", str(config), "--check-data"
    )
    assert checked.returncode == 0, checked.stderr[-3000:]
    assert checked.stdout.splitlines() == [
        f"train_data hub:{repo}@{first}:fr:train: ok (1 row, revision {first})",
        f"eval_data[fr] hub:{repo}@{first}:fr:test: ok ({len(FIRST['test'])} row, revision {first})",
        f"eval_data[en] hub:{repo}@main:fr:test: ok ({len(SECOND['test'])} rows, revision main = {second})",
    ]


def test_pin_offline_names_each_source_and_writes_nothing(hub_server, tmp_path):
    repo = f"{hub_server.user}/xnli"
    config = tmp_path / "xnli.yaml"
    text = CONFIG.format(revision="", repo=repo, output_dir=tmp_path / "out")
    config.write_text(text, encoding="utf-8")
    offline = {**hub_server.client_env(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}

    result = run(offline, sys.executable, "recipes/xnli.py", str(config), "--check-data", "--pin")

    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert [line.split(": ")[0] for line in lines[:3]] == [
        f"hub:{repo}:fr:train",
        f"hub:{repo}:fr:test",
        f"hub:{repo}@main:fr:test",
    ]
    assert ": not pinned: " in lines[0] and ": not pinned: " in lines[1]
    assert lines[3] == f"{config}: not changed (every unpinned source must resolve first)"
    assert config.read_text(encoding="utf-8") == text


def test_study_pin_offline_names_the_source_and_writes_nothing(tmp_path):
    config = tmp_path / "study.yaml"
    text = "# a study (pin runs before the study is read)\ntasks:\n  xnli:\n    overrides:\n      train_data: [hub:a/xnli:en:train]\n"
    config.write_text(text, encoding="utf-8")

    result = run(
        {**os.environ, "HF_HUB_OFFLINE": "1"}, sys.executable, "recipes/study.py", str(config), "--check-data", "--pin"
    )

    assert result.returncode == 1, result.stderr[-3000:]
    assert result.stdout.splitlines()[0].startswith("hub:a/xnli:en:train: not pinned: ")
    assert config.read_text(encoding="utf-8") == text
