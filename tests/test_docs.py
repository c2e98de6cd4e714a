"""The README and docs/ say what the code does: every ```python block runs, every abridged config is the shipped one,
every make target and recipe file a command names exists.

How a block runs: the blocks of one page run in order in one fresh subprocess (a page's later blocks build on its
earlier ones, as a reader pastes them), in a temporary folder holding the repository's `recipes/` (the shipped
data the examples read), offline. Hub ids the examples name (`xlm-roberta-base`, ...) resolve to tiny stand-in
models put into a temporary Hugging Face cache under those ids (`HUB_STAND_INS`): the reader's code runs
unchanged, with no rewriting of the text they see. A block whose first line is `# requires: WHAT` (a network, a
GPU, torchrun) is skipped with that reason, shown to the reader too.

docs/subclassing.md starts from "your script" (`model`, `args`, `collator`, `train_ds`, `eval_ds`, `tokenizer`
already defined, your parallel text in `data/en-de.tsv`): `YOUR_SCRIPT` defines those, with the same stand-in and
the shipped data, before its blocks.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
REQUIRES = re.compile(r"#\s*requires:\s*(.+)")
# Hub ids named in the examples -> the architecture of their tiny stand-in (8 layers: the highest an example names).
HUB_STAND_INS = {"xlm-roberta-base": "xlm-roberta", "intfloat/multilingual-e5-small": "bert"}
YOUR_SCRIPT = """
import os
import shutil

from transformers import AutoTokenizer, DataCollatorForTokenClassification, TrainingArguments
from transformers import XLMRobertaForTokenClassification

from hf_xalign.data.conllu import read_conllu, tokenize_and_align_labels
from hf_xalign.tiny import tiny_xlmr_config

tokenizer = AutoTokenizer.from_pretrained("xlm-roberta-base")
# 2 layers: a small model keeps the page's training blocks quick.
model = XLMRobertaForTokenClassification(tiny_xlmr_config(tokenizer, num_layers=2, num_labels=17))
collator = DataCollatorForTokenClassification(tokenizer)
train_ds = tokenize_and_align_labels(read_conllu("recipes/data/pos/en_silver/train.conllu"), tokenizer)
eval_ds = tokenize_and_align_labels(read_conllu("recipes/data/pos/tr_gold/test.conllu"), tokenizer)
args = TrainingArguments(output_dir="pos-run", max_steps=5, report_to="none")
os.makedirs("data", exist_ok=True)
shutil.copy("recipes/data/django/parallel/en-de.tsv", "data/en-de.tsv")  # your parallel text
"""
PAGES_FROM_YOUR_SCRIPT = {"docs/subclassing.md"}


def fenced_blocks(page: Path, language: str) -> list[tuple[int, str]]:
    """`(line of the first code line, code)` for each fenced block of `language` (the fence's info string)."""
    blocks, current, start, inside = [], [], 0, None
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
        if inside is None and line.startswith("```") and len(line) > 3:
            inside, current, start = line[3:].strip(), [], number + 1
        elif inside is not None and line.startswith("```"):
            if inside == language:
                blocks.append((start, "\n".join(current) + "\n"))
            inside = None
        elif inside is not None:
            current.append(line)
    return blocks


def required(code: str) -> str | None:
    """What a block needs that the test machine lacks, from its first line `# requires: ...`."""
    match = REQUIRES.fullmatch(code.splitlines()[0].strip()) if code.strip() else None
    return match.group(1) if match else None


def page_name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def python_pages() -> list[Path]:
    return [page for page in PAGES if fenced_blocks(page, "python")]


def skipped_blocks() -> list[tuple[str, int, str]]:
    return [
        (page_name(page), line, required(code))
        for page in PAGES
        for line, code in fenced_blocks(page, "python")
        if required(code)
    ]


def write_stand_ins(cache: Path) -> None:
    """Fill the Hugging Face cache `cache` with a tiny model under each id of `HUB_STAND_INS`, as a download would."""
    from transformers import BertConfig, BertForMaskedLM, XLMRobertaForMaskedLM

    from hf_xalign.tiny import tiny_xlmr_config, train_tokenizer

    texts = [
        text
        for tsv in sorted((ROOT / "recipes/data/django/parallel").glob("*.tsv"))
        for line in tsv.read_text(encoding="utf-8").splitlines()
        for text in line.split("\t")[2:]
    ]
    tokenizer = train_tokenizer(texts, vocab_size=2000)
    config = tiny_xlmr_config(tokenizer, num_layers=8)
    commit = "0" * 40
    for repo_id, architecture in HUB_STAND_INS.items():
        if architecture == "bert":
            model = BertForMaskedLM(BertConfig(**{**config.to_dict(), "model_type": "bert", "type_vocab_size": 2}))
        else:
            model = XLMRobertaForMaskedLM(config)
        repo = cache / f"models--{repo_id.replace('/', '--')}"
        (repo / "refs").mkdir(parents=True)
        (repo / "refs" / "main").write_text(commit)
        model.save_pretrained(repo / "snapshots" / commit)
        tokenizer.save_pretrained(repo / "snapshots" / commit)


def runnable_blocks(page: Path) -> list[dict]:
    """What the page runner runs for `page`: its blocks without `# requires:`, after `YOUR_SCRIPT` where it applies."""
    name = page_name(page)
    blocks = [
        {"page": name, "line": line, "code": code} for line, code in fenced_blocks(page, "python") if not required(code)
    ]
    if blocks and name in PAGES_FROM_YOUR_SCRIPT:
        blocks.insert(0, {"page": "tests/test_docs.py:YOUR_SCRIPT", "line": 1, "code": YOUR_SCRIPT})
    return blocks


def run_page(blocks: list[dict], folder: Path, hub_cache: Path) -> subprocess.CompletedProcess:
    """Run `blocks` in a fresh process in `folder` (which gets the repository's `recipes/`), offline."""
    folder.mkdir()
    (folder / "recipes").symlink_to(ROOT / "recipes")
    (folder / "blocks.json").write_text(json.dumps(blocks), encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "HF_HUB_CACHE": str(hub_cache),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_CACHE": str(folder / "datasets_cache"),
        # One thread each: two pages run at once, and torch's default threads oversubscribe a shared machine
        # (a step 20x slower).
        "OMP_NUM_THREADS": "1",
    }
    return subprocess.run(
        [sys.executable, str(ROOT / "tests" / "_doc_page_runner.py"), "blocks.json"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def page_runs(request, tmp_path_factory) -> Iterator[dict[str, Future]]:
    """The run of every selected page, started at once, two at a time (a page's time is mostly imports)."""
    selected = [
        item.callspec.params["page"]
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_python_blocks_of_a_page_run"
    ]
    cache = tmp_path_factory.mktemp("hf_cache")
    write_stand_ins(cache)
    folders = tmp_path_factory.mktemp("pages")
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield {
            page_name(page): pool.submit(run_page, blocks, folders / page.stem, cache)
            for page in selected
            if (blocks := runnable_blocks(page))
        }


@pytest.mark.parametrize("page", python_pages(), ids=page_name)
def test_python_blocks_of_a_page_run(page, page_runs):
    name = page_name(page)
    if name not in page_runs:
        pytest.skip(f"{name}: every Python block needs what this machine lacks")
    completed = page_runs[name].result()
    assert completed.returncode == 0, completed.stderr[-4000:]


@pytest.mark.parametrize(("page", "line", "reason"), skipped_blocks(), ids=lambda value: str(value))
def test_blocks_marked_requires_are_skipped_with_their_reason(page, line, reason):
    pytest.skip(f"{page}:{line} requires {reason}")


def abridged_configs() -> list[tuple[str, int, str, str]]:
    """`(page, line, shipped config path, block)` for each yaml block opening with `# recipes/configs/NAME.yaml`."""
    found = []
    for page in PAGES:
        for line, code in fenced_blocks(page, "yaml"):
            match = re.match(r"#\s*(recipes/configs/\S+\.yaml)", code)
            if match:
                found.append((page_name(page), line, match.group(1), code))
    return found


def differences(shown, shipped, path: str = "") -> list[str]:
    """Where `shown` says something `shipped` does not: a key it lacks, or another value (nested dicts compared
    key by key, so an abridged block may leave keys out)."""
    if isinstance(shown, dict) and isinstance(shipped, dict):
        return [
            problem
            for key, value in shown.items()
            for problem in (
                differences(value, shipped[key], f"{path}.{key}".lstrip(".")) if key in shipped else [f"{path}.{key}"]
            )
        ]
    return [] if shown == shipped else [f"{path}: {shown!r} shown, {shipped!r} shipped"]


@pytest.mark.parametrize(("page", "line", "config", "code"), abridged_configs(), ids=lambda value: str(value)[:40])
def test_an_abridged_config_says_what_the_shipped_config_says(page, line, config, code):
    assert differences(yaml.safe_load(code), yaml.safe_load((ROOT / config).read_text())) == [], f"{page}:{line}"


def shell_lines() -> list[tuple[str, int, str]]:
    """`(page, line, command)` for each line of a bash block, comments dropped."""
    return [
        (page_name(page), start + offset, text.split(" #", 1)[0].strip())
        for page in PAGES
        for start, code in fenced_blocks(page, "bash")
        for offset, text in enumerate(code.splitlines())
        if text.strip() and not text.lstrip().startswith("#")
    ]


def test_every_make_target_a_command_names_exists():
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    named = {
        (page, line, word) for page, line, command in shell_lines() for word in re.findall(r"^make ([\w-]+)", command)
    }
    assert named, "no `make` command found in a bash block"
    assert {(page, line, word) for page, line, word in named if word not in targets} == set()


def test_every_recipe_and_config_a_command_names_is_shipped():
    named = {
        (page, line, path)
        for page, line, command in shell_lines()
        for path in re.findall(r"(?<![\w/])recipes/[\w/.-]+\.(?:py|yaml)", command)
    }
    assert named, "no recipe named in a bash block"
    assert {entry for entry in named if not (ROOT / entry[2]).is_file()} == set()
