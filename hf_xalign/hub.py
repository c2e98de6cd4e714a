"""Aligned checkpoints on the Hugging Face Hub: push a run's model with its card, load one back.

An aligned checkpoint is a model folder as `AlignmentTrainer` saves it: the model in
safetensors, the tokenizer, `alignment_config.json` (how it was aligned), and where the run has
them `results.json` (per-language scores, with the baseline's) and `conflict_summary.json`. The
card is written from those files ([`~hf_xalign.model_card.build_model_card`]).

What is never published: pickles (`training_args.bin`, optimizer states: they can run code when
loaded), checkpoint folders, the alignment stage (`_alignment_stage`), and, unless asked,
the parameters the alignment losses own (`alignment_losses.safetensors`, e.g. an MLM head).
Tokens come from the usual `huggingface_hub` sources (`HF_TOKEN`, the login cache) or the
`token` argument, and are never written anywhere.
"""

from __future__ import annotations

import fnmatch
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import CommitOperationAdd, HfApi, snapshot_download
from huggingface_hub.errors import HfHubHTTPError
from transformers import (
    AutoModel,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from .model_card import ALIGNMENT_CONFIG_NAME, build_model_card, task_kind_of

ALIGNMENT_LOSSES_NAME = "alignment_losses.safetensors"
# Weights in a format that runs code when loaded: never published, never loaded.
PICKLE_PATTERNS = ("*.bin", "*.pt", "*.pth", "*.pkl", "*.pickle", "*.ckpt")
UNPUBLISHED_DIRS = ("checkpoint-*", "_*", "runs", ".*")

LOAD_TASKS = {
    "token-classification": AutoModelForTokenClassification,
    "sequence-classification": AutoModelForSequenceClassification,
    "encoder": AutoModel,
}


class HubError(RuntimeError):
    """A push or download that the Hub refused; the message names the repository and the reason."""


@dataclass
class AlignedModel:
    """What [`load_aligned`] returns: unpack it as `model, tokenizer, alignment_config = ...`."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    alignment_config: dict[str, Any] | None
    path: str  # the local folder it was loaded from

    def __iter__(self):
        return iter((self.model, self.tokenizer, self.alignment_config))


def publishable_files(folder: str, include_loss_heads: bool = False) -> list[str]:
    """The files of a model folder that go to the Hub, relative to it, sorted (the card is made apart)."""
    skipped_files = [*PICKLE_PATTERNS, "README.md"] + ([] if include_loss_heads else [ALIGNMENT_LOSSES_NAME])
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not any(fnmatch.fnmatch(d, pattern) for pattern in UNPUBLISHED_DIRS)]
        for name in names:
            if not any(fnmatch.fnmatch(name, pattern) for pattern in skipped_files):
                files.append(os.path.relpath(os.path.join(root, name), folder))
    return sorted(files)


def _hub_error(action: str, repo_id: str, error: HfHubHTTPError) -> HubError:
    status = error.response.status_code if error.response is not None else None
    reason = (error.server_message or str(error).splitlines()[0]).strip()
    hint = ""
    if status in (401, 403):
        hint = " Check the token: HF_TOKEN, `hf auth login`, or --token / hub_token (it needs write access to push)."
    return HubError(f"Could not {action} {repo_id!r}: HTTP {status}: {reason}.{hint}")


def push_aligned(
    folder: str,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str = "Upload aligned model (hf-xalign)",
    include_loss_heads: bool = False,
    model_name: str | None = None,
) -> str:
    """Push the model folder `folder` to `repo_id` with a card written from its files; returns the commit URL.

    The repository is created if needed (`private` applies then). The local folder is not changed:
    the card is made in memory. Raises [`HubError`] when the Hub refuses (e.g. a wrong token).
    """
    if not os.path.isfile(os.path.join(folder, "config.json")):
        raise FileNotFoundError(f"{folder} is not a saved model folder (no config.json).")
    api = HfApi(token=token)
    try:
        repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
        card = build_model_card(folder, repo_id, model_name=model_name)
        operations = [
            CommitOperationAdd(path_in_repo=Path(name).as_posix(), path_or_fileobj=os.path.join(folder, name))
            for name in publishable_files(folder, include_loss_heads)
        ]
        operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=str(card).encode("utf-8")))
        commit = api.create_commit(repo_id, operations, commit_message=commit_message, revision=revision)
    except HfHubHTTPError as error:
        raise _hub_error("push to", repo_id, error) from None
    return commit.commit_url


def download_aligned(
    repo_id: str, *, revision: str | None = None, token: str | None = None, cache_dir: str | None = None
) -> str:
    """Fetch an aligned checkpoint into the Hugging Face cache (pickles left out); returns the local folder."""
    try:
        return snapshot_download(
            repo_id, revision=revision, token=token, cache_dir=cache_dir, ignore_patterns=list(PICKLE_PATTERNS)
        )
    except HfHubHTTPError as error:
        raise _hub_error("download", repo_id, error) from None


def _require_safetensors(folder: str) -> None:
    names = os.listdir(folder)
    if any(name.endswith(".safetensors") and name != ALIGNMENT_LOSSES_NAME for name in names):
        return
    pickles = sorted(name for name in names if any(fnmatch.fnmatch(name, p) for p in PICKLE_PATTERNS))
    if pickles:
        raise ValueError(
            f"{folder} has model weights only as pickle ({', '.join(pickles)}): hf-xalign loads safetensors only, "
            "since loading a pickle can run code. Convert it where you trust it "
            "(`AutoModel.from_pretrained(path).save_pretrained(path, safe_serialization=True)`)."
        )
    raise FileNotFoundError(f"{folder} has no model weights (expected model.safetensors).")


def load_aligned(
    repo_id_or_path: str,
    task: str | None = None,
    *,
    revision: str | None = None,
    token: str | None = None,
    cache_dir: str | None = None,
    **model_kwargs: Any,
) -> AlignedModel:
    """Load an aligned checkpoint (a Hub id or a local folder): model, tokenizer and alignment config.

    Args:
        repo_id_or_path (`str`): a Hub repository id, or a folder saved by `AlignmentTrainer`.
        task (`str`, *optional*): `"token-classification"`, `"sequence-classification"` or `"encoder"`;
            by default the task the checkpoint was saved for. An aligned bare encoder loads as the base of
            a new task model with `task="token-classification", num_labels=17` (and so on).
        revision, token, cache_dir: as for `huggingface_hub.snapshot_download`.
        **model_kwargs: passed to `from_pretrained` (`num_labels`, `id2label`, `torch_dtype`, ...).

    Weights load only from safetensors, and never with `trust_remote_code`.
    """
    if task is not None and task not in LOAD_TASKS:
        raise ValueError(f"Unknown task {task!r}; expected one of: {', '.join(LOAD_TASKS)} (or None: as saved).")
    if os.path.isdir(repo_id_or_path):
        folder = repo_id_or_path
    else:
        folder = download_aligned(repo_id_or_path, revision=revision, token=token, cache_dir=cache_dir)
    _require_safetensors(folder)
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
        architectures = json.load(f).get("architectures") or []
    model_class = LOAD_TASKS[task or task_kind_of(architectures)]
    model = model_class.from_pretrained(folder, use_safetensors=True, trust_remote_code=False, **model_kwargs)
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    alignment_path = os.path.join(folder, ALIGNMENT_CONFIG_NAME)
    alignment = None
    if os.path.isfile(alignment_path):
        with open(alignment_path, encoding="utf-8") as f:
            alignment = json.load(f)
    return AlignedModel(model=model, tokenizer=tokenizer, alignment_config=alignment, path=folder)
