"""Aligned checkpoints on the Hugging Face Hub: push a run's model with its card, load one back.

An aligned checkpoint is a model folder as `AlignmentTrainer` saves it: the model in
safetensors (for a PEFT model, the adapter as PEFT saves it, `adapter_config.json` and
`adapter_model.safetensors`, loaded back on its base model), the tokenizer,
`alignment_config.json` (how it was aligned), and where the run has them `results.json`
(per-language scores, with the baseline's) and `conflict_summary.json`. The card is written
from those files ([`~hf_xalign.model_card.build_model_card`]).

What is never published: pickles (`training_args.bin`, optimizer states: they can run code when
loaded), checkpoint folders, the alignment stage (`_alignment_stage`), and, unless asked,
the parameters the alignment losses own (`alignment_losses.safetensors`, e.g. an MLM head).
Tokens come from the usual `huggingface_hub` sources (`HF_TOKEN`, the login cache) or the
`token` argument, and are never written anywhere.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import CommitOperationAdd, HfApi, snapshot_download
from huggingface_hub.errors import HfHubHTTPError
from transformers import (
    AutoModel,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    PreTrainedTokenizerBase,
)
from transformers.utils import is_peft_available

from .files import (
    ADAPTER_CONFIG_NAME,
    ADAPTER_WEIGHTS_NAME,
    ALIGNMENT_CONFIG_NAME,
    ALIGNMENT_LOSSES_NAME,
    MODEL_CARD_NAME,
    MODEL_CONFIG_NAME,
    read_json,
)
from .model_card import build_model_card, task_kind_of

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


class ModelPathError(FileNotFoundError):
    """A model named by a path that does not exist."""


def _looks_like_path(name: str) -> bool:
    """Whether `name` is meant as a folder rather than a Hub id (`user/model`, `xlm-roberta-base`)."""
    if name.startswith((".", "/", "~")) or name.count("/") > 1 or os.sep != "/" and os.sep in name:
        return True
    return "/" in name and os.path.isdir(name.split("/", 1)[0])  # `outputs/align_demo` with `outputs/` here


def check_model_path(name: str, option: str = "model_name_or_path") -> None:
    """Raise [`ModelPathError`] when `name` is a path (not a Hub id) that does not exist.

    Without it `from_pretrained` takes the missing folder for a Hub id and fails with "Repo id must use
    alphanumeric chars". A relative path is named with the folder it is relative to.
    """
    if os.path.isdir(os.path.expanduser(name)) or not _looks_like_path(name):
        return
    where = "" if os.path.isabs(os.path.expanduser(name)) else f" (relative to the current folder {os.getcwd()})"
    raise ModelPathError(
        f"{option}: model path {name} does not exist{where}: run from the folder it is relative to, "
        "give an absolute path, or build it first (make demo builds the demo's encoder)"
    )


@dataclass
class AlignedModel:
    """What [`load_aligned`] returns: unpack it as `model, tokenizer, alignment_config = ...`."""

    model: torch.nn.Module  # a `PreTrainedModel`, or for an adapter a `peft.PeftModel` on its base model
    tokenizer: PreTrainedTokenizerBase
    alignment_config: dict[str, Any] | None
    path: str  # the local folder it was loaded from

    def __iter__(self):
        return iter((self.model, self.tokenizer, self.alignment_config))


def publishable_files(folder: str, include_loss_heads: bool = False) -> list[str]:
    """The files of a model folder that go to the Hub, relative to it, sorted (the card is made apart)."""
    skipped_files = [*PICKLE_PATTERNS, MODEL_CARD_NAME] + ([] if include_loss_heads else [ALIGNMENT_LOSSES_NAME])
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


def _connection_error(action: str, repo_id: str, error: ConnectionError) -> HubError:
    """A transfer that failed below HTTP: the Xet upload (hf_xet raises `ConnectionError`) or the network."""
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if "xet" in reason.lower():  # e.g. `.../xet-write-token/main` answered 404: the server stores no Xet files
        return HubError(
            f"Could not {action} {repo_id!r}: the server refused the Xet upload ({reason}); "
            "a server without Xet storage (a local or enterprise Hub) needs HF_HUB_DISABLE_XET=1 to upload over HTTP."
        )
    return HubError(f"Could not {action} {repo_id!r}: {reason}. Check the network and HF_ENDPOINT.")


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
    if not any(os.path.isfile(os.path.join(folder, name)) for name in (MODEL_CONFIG_NAME, ADAPTER_CONFIG_NAME)):
        raise FileNotFoundError(f"{folder} is not a saved model folder (no config.json or {ADAPTER_CONFIG_NAME}).")
    api = HfApi(token=token)
    try:
        repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
        card = build_model_card(folder, repo_id, model_name=model_name)
        operations = [
            CommitOperationAdd(path_in_repo=Path(name).as_posix(), path_or_fileobj=os.path.join(folder, name))
            for name in publishable_files(folder, include_loss_heads)
        ]
        operations.append(CommitOperationAdd(path_in_repo=MODEL_CARD_NAME, path_or_fileobj=str(card).encode("utf-8")))
        commit = api.create_commit(repo_id, operations, commit_message=commit_message, revision=revision)
    except HfHubHTTPError as error:
        raise _hub_error("push to", repo_id, error) from None
    except ConnectionError as error:
        raise _connection_error("push to", repo_id, error) from None
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
    if ADAPTER_CONFIG_NAME in names:  # PEFT would fall back to adapter_model.bin, a pickle
        if ADAPTER_WEIGHTS_NAME in names:
            return
    elif any(name.endswith(".safetensors") and name != ALIGNMENT_LOSSES_NAME for name in names):
        return
    pickles = sorted(name for name in names if any(fnmatch.fnmatch(name, p) for p in PICKLE_PATTERNS))
    if pickles:
        raise ValueError(
            f"{folder} has model weights only as pickle ({', '.join(pickles)}): hf-xalign loads safetensors only, "
            "since loading a pickle can run code. Convert it where you trust it "
            "(`AutoModel.from_pretrained(path).save_pretrained(path, safe_serialization=True)`)."
        )
    raise FileNotFoundError(
        f"{folder} has no model weights (expected model.safetensors, or adapter_model.safetensors for an adapter)."
    )


def load_aligned(
    repo_id_or_path: str,
    task: str | None = None,
    *,
    revision: str | None = None,
    token: str | None = None,
    cache_dir: str | None = None,
    base_model: str | None = None,
    **model_kwargs: Any,
) -> AlignedModel:
    """Load an aligned checkpoint (a Hub id or a local folder): model, tokenizer and alignment config.

    Args:
        repo_id_or_path (`str`): a Hub repository id, or a folder saved by `AlignmentTrainer`.
        task (`str`, *optional*): `"token-classification"`, `"sequence-classification"` or `"encoder"`;
            by default the task the checkpoint was saved for. An aligned bare encoder loads as the base of
            a new task model with `task="token-classification", num_labels=17` (and so on).
        revision, token, cache_dir: as for `huggingface_hub.snapshot_download`.
        base_model (`str`, *optional*): for an adapter, the checkpoint it adapts (a Hub id or a folder); defaults
            to the one `adapter_config.json` names (`base_model_name_or_path`).
        **model_kwargs: passed to `from_pretrained` (`num_labels`, `id2label`, `torch_dtype`, ...); for an adapter,
            to the base model's.

    An adapter (a folder with `adapter_config.json`, as a PEFT model saves) loads as a `peft.PeftModel` on its
    base model, with the task class and labels of the model it was trained on (`alignment_config.json`).
    Weights load only from safetensors, and never with `trust_remote_code`.
    """
    if task is not None and task not in LOAD_TASKS:
        raise ValueError(f"Unknown task {task!r}; expected one of: {', '.join(LOAD_TASKS)} (or None: as saved).")
    check_model_path(repo_id_or_path, "model")
    if os.path.isdir(repo_id_or_path):
        folder = repo_id_or_path
    else:
        folder = download_aligned(repo_id_or_path, revision=revision, token=token, cache_dir=cache_dir)
    _require_safetensors(folder)
    alignment = read_json(folder, ALIGNMENT_CONFIG_NAME)
    if os.path.isfile(os.path.join(folder, ADAPTER_CONFIG_NAME)):
        model = _load_adapter(folder, task, (alignment or {}).get("adapter") or {}, base_model, model_kwargs)
    else:
        architectures = (read_json(folder, MODEL_CONFIG_NAME) or {}).get("architectures") or []
        model_class = LOAD_TASKS[task or task_kind_of(architectures)]
        model = model_class.from_pretrained(folder, use_safetensors=True, trust_remote_code=False, **model_kwargs)
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    return AlignedModel(model=model, tokenizer=tokenizer, alignment_config=alignment, path=folder)


def _load_adapter(
    folder: str, task: str | None, adapted: dict[str, Any], base_model: str | None, model_kwargs: dict[str, Any]
) -> torch.nn.Module:
    """The adapter in `folder` on its base model, built as the task model it was trained on (`adapted`: the
    `adapter` entry of `alignment_config.json`, with its class and labels)."""
    if not is_peft_available():
        raise ImportError(f"{folder} holds a PEFT adapter; loading it needs peft: pip install 'hf-xalign[peft]'.")
    from peft import PeftModel

    base_model = base_model or read_json(folder, ADAPTER_CONFIG_NAME).get("base_model_name_or_path")
    if not base_model:
        raise ValueError(
            f"{folder}/{ADAPTER_CONFIG_NAME} names no base model (base_model_name_or_path): pass the checkpoint the "
            "adapter was trained on as load_aligned(..., base_model=<Hub id or folder>)."
        )
    kind = task or task_kind_of(adapted.get("architectures") or [])
    options = {}
    if kind != "encoder" and adapted.get("id2label"):  # the task head's size: one row per label
        options["id2label"] = {int(index): label for index, label in adapted["id2label"].items()}
    options.update(model_kwargs)
    base = LOAD_TASKS[kind].from_pretrained(base_model, use_safetensors=True, trust_remote_code=False, **options)
    return PeftModel.from_pretrained(base, folder)
