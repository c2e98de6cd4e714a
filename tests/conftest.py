"""Shared fixtures: a tiny XLM-R with a tokenizer trained here, synthetic parallel and task data.

Nothing touches the network. The synthetic "language" maps each English word to a made-up
word, so every pair is a word-by-word translation with known links `i-i`, and the task
(a word-class tag per word) is the same in both languages.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import datasets
import pytest
import torch
from hub_server import HubServer
from transformers import DataCollatorForTokenClassification, XLMRobertaForTokenClassification

from hf_xalign.extras import EXPERIMENTS_MODULES
from hf_xalign.tiny import tiny_xlmr_config, train_tokenizer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

# The tests of the core (`pip install hf-xalign`, no extra): `make test-core` runs them with --core in a venv without
# the experiments extra, where importing a harness module fails. A test of the trainer, the losses, gradient
# measurement, parallel text, the Hub helpers or per-layer analysis that needs no recipe, task or report belongs here.
# Left to `make test` for CI time: the launches of several processes (test_distributed.py, the launch matrix, 6 of
# the 25 minutes the first list took on the loaded 2-core machine; test_distributed_equivalence.py,
# test_fsdp_trainer.py, test_process_group.py) and test_crash_resume.py (kill and resume, 2 more). They import no
# extra either; `make test` runs them with everything else.
CORE_TESTS = (
    "test_alignment_stream.py",
    "test_analysis_measures.py",
    "test_clipping.py",
    "test_compat.py",
    "test_conflict.py",
    "test_core_install.py",
    "test_early_exit.py",
    "test_faults.py",
    "test_files.py",
    "test_formatting.py",
    "test_fsdp_sums.py",
    "test_fuzz_parallel.py",
    "test_hub_server.py",
    "test_install.py",
    "test_layers.py",
    "test_losses.py",
    "test_mixed_precision.py",
    "test_parallel_data.py",
    "test_pooling_collator.py",
    "test_surgery.py",
    "test_trainer.py",
    "test_trainer_contract.py",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--core",
        action="store_true",
        help="only the core tests (CORE_TESTS in tests/conftest.py), in a venv without the experiments extra",
    )


# `@pytest.mark.cuda`: a test of what changes on a GPU. It runs on a CUDA device when there is one (the `device`
# fixture gives it) and is skipped without one, unless this variable is "cpu": then it runs on the CPU, as
# `benchmarks/gpu_check.py --dry-run` runs it, so that the GPU run cannot fail on a typo.
TEST_DEVICE_VARIABLE = "XALIGN_TEST_DEVICE"


def pytest_configure(config: pytest.Config) -> None:
    """Register the `cuda` marker; with --core, refuse a venv that has an extra's package: the claim is that the
    core tests pass without it."""
    config.addinivalue_line(
        "markers",
        f"cuda: needs a CUDA device; skipped without one unless {TEST_DEVICE_VARIABLE}=cpu (tests/conftest.py)",
    )
    present = [name for name in EXPERIMENTS_MODULES if importlib.util.find_spec(name) is not None]
    if config.getoption("--core") and present:
        raise pytest.UsageError(
            f"--core runs in a venv without the experiments extra (make test-core); this one has {', '.join(present)}"
        )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With --core, a test file that is not in CORE_TESTS is not collected (it may import the harness)."""
    if config.getoption("--core") and collection_path.name.startswith("test_") and collection_path.suffix == ".py":
        return collection_path.name not in CORE_TESTS or None
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without a CUDA device (and without XALIGN_TEST_DEVICE=cpu), skip the tests marked `cuda`, saying why."""
    if torch.cuda.is_available() or os.environ.get(TEST_DEVICE_VARIABLE) == "cpu":
        return
    skip = pytest.mark.skip(
        reason=f"no CUDA device (benchmarks/gpu_check.py runs it on a GPU; {TEST_DEVICE_VARIABLE}=cpu runs it here)"
    )
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def device() -> torch.device:
    """Where a `cuda`-marked test runs: the GPU, or the CPU under XALIGN_TEST_DEVICE=cpu without one."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# word -> (made-up translation, tag id): 0 determiner, 1 noun, 2 verb, 3 adjective
LEXICON = {
    "the": ("lo", 0),
    "a": ("un", 0),
    "cat": ("gatu", 1),
    "dog": ("perru", 1),
    "bird": ("avis", 1),
    "house": ("domu", 1),
    "tree": ("arbo", 1),
    "sees": ("vidi", 2),
    "likes": ("amas", 2),
    "runs": ("kuri", 2),
    "big": ("granda", 3),
    "small": ("malgra", 3),
    "red": ("ruga", 3),
    "green": ("verda", 3),
}
TAGS = ["DET", "NOUN", "VERB", "ADJ"]


def synthetic_sentences(n: int, seed: int) -> list[list[str]]:
    """`n` sentences of the pattern DET [ADJ] NOUN VERB DET [ADJ] NOUN."""
    rng = random.Random(seed)
    by_tag = {tag: [w for w, (_, t) in LEXICON.items() if t == tag] for tag in range(4)}
    sentences = []
    for _ in range(n):
        words = []
        for _ in range(2):
            words.append(rng.choice(by_tag[0]))
            if rng.random() < 0.5:
                words.append(rng.choice(by_tag[3]))
            words.append(rng.choice(by_tag[1]))
            if len(words) < 4:
                words.append(rng.choice(by_tag[2]))
        sentences.append(words)
    return sentences


def translate(words: list[str]) -> list[str]:
    return [LEXICON[w][0] for w in words]


@pytest.fixture(scope="session")
def tokenizer():
    texts = []
    for words in synthetic_sentences(200, seed=0):
        texts += [" ".join(words), " ".join(translate(words))]
    return train_tokenizer(texts, vocab_size=120)


@pytest.fixture(scope="session")
def parallel_dataset() -> datasets.Dataset:
    sentences = synthetic_sentences(64, seed=1)
    return datasets.Dataset.from_dict(
        {
            "src": [" ".join(w) for w in sentences],
            "tgt": [" ".join(translate(w)) for w in sentences],
            "src_lang": ["en"] * len(sentences),
            "tgt_lang": ["xx"] * len(sentences),
            "alignment": [[[i, i] for i in range(len(w))] for w in sentences],
        }
    )


def tag_dataset(tokenizer, sentences: list[list[str]]) -> datasets.Dataset:
    """Token-classification rows: tags on the first sub-token of each word, -100 elsewhere."""
    rows = {"input_ids": [], "attention_mask": [], "labels": []}
    for words in sentences:
        encoded = tokenizer(words, is_split_into_words=True)
        tags = [LEXICON.get(w, (None, None))[1] for w in words]
        if None in tags:  # translated sentence: look tags up by translation
            reverse = {v[0]: v[1] for v in LEXICON.values()}
            tags = [reverse[w] for w in words]
        labels, previous = [], None
        for word_id in encoded.word_ids():
            labels.append(-100 if word_id is None or word_id == previous else tags[word_id])
            previous = word_id
        rows["input_ids"].append(encoded["input_ids"])
        rows["attention_mask"].append(encoded["attention_mask"])
        rows["labels"].append(labels)
    return datasets.Dataset.from_dict(rows)


@pytest.fixture(scope="session")
def task_dataset(tokenizer) -> datasets.Dataset:
    return tag_dataset(tokenizer, synthetic_sentences(32, seed=2))


@pytest.fixture
def task_collator(tokenizer):
    return DataCollatorForTokenClassification(tokenizer)


def make_model(tokenizer, dropout: float = 0.0, seed: int = 0) -> XLMRobertaForTokenClassification:
    """A 2-layer XLM-R tagger (hidden 32); dropout off by default so gradients are comparable."""
    torch.manual_seed(seed)
    config = tiny_xlmr_config(
        tokenizer, num_labels=len(TAGS), hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout
    )
    return XLMRobertaForTokenClassification(config)


@pytest.fixture
def hub_server(tmp_path_factory) -> Iterator[HubServer]:
    """A Hub-compatible HTTP server on 127.0.0.1 (hf_xalign/local_hub/), its files in a temporary folder.

    The client reads HF_ENDPOINT and HF_HUB_OFFLINE at import, and the tests run offline: drive it in a subprocess
    with `env=hub_server.client_env(home)`.
    """
    with HubServer(tmp_path_factory.mktemp("hub")) as server:
        yield server


@pytest.fixture(scope="module")
def hub_datasets(tmp_path_factory) -> Iterator[tuple[HubServer, dict]]:
    """A test Hub holding the dataset layouts of tests/_hub_datasets.py, pushed once per module with the real
    `datasets` and `huggingface_hub` clients; yields the server and what the push reported (`xnli_sha`)."""
    with HubServer(tmp_path_factory.mktemp("hub_datasets")) as server:
        env = server.client_env(tmp_path_factory.mktemp("hub_datasets_home"))
        script = Path(__file__).with_name("_hub_datasets.py")
        result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-4000:]
        yield server, json.loads(result.stdout.splitlines()[-1])
