"""Every private name of another package that hf_xalign uses, with the versions it was checked against.

A private name (a leading underscore, a keyword parameter marked internal, a module constant outside the
package's public API, a private method we override) can change in any release without notice. Each one
the package uses is listed in [`PRIVATE_NAMES`] with what it is used for and the versions whose source was
read; the code reaches it only through this module, so a release that drops one fails here with a message
naming the name and the installed version instead of somewhere inside training, and
`tests/test_compat.py` fails on it before a user does.

accelerate's private names are no longer used: what the package needs of it is public (`send_to_device`, the
`Accelerator.sync_gradients` setter, `Accelerator.scaler`), read in accelerate 1.1.0, 1.15.0 and 1.16.0 (1.3.0 is
the lowest declared: setup.cfg says why).

Importing this module imports nothing heavy: each name is looked up when it is first asked for.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import inspect
import platform
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

TRANSFORMERS_CHECKED = "transformers 5.16.0 (the lowest declared, make test-min) and 5.25.0 (the lock)"
TORCH_CHECKED = "torch 2.13.0 (2.6, the lowest declared, not read here)"
PYTHON_CHECKED = "Python 3.11"
NOT_INSTALLED = "(not installed)"

# Where transformers defines a name it exports lazily from its package: read as source (never imported) to know
# the recipes' options without torch (experiment/option_names.py). Checked in transformers 5.25.0; a name that
# moves makes that reader fail to find it, and the full parser answers instead.
TRANSFORMERS_DEFINING_MODULES: dict[tuple[str, str], str] = {
    ("transformers", "TrainingArguments"): "transformers.training_args",
}


@dataclass(frozen=True)
class PrivateName:
    """One private name of another package.

    Args:
        package (`str`): the distribution that owns it (`"python"` for the standard library); its installed
            version is named when the name is missing.
        module (`str`): the module to import.
        attribute (`str`): the dotted path inside the module (`"Trainer._finish_current_push"`).
        used_for (`str`): what hf_xalign needs it for.
        checked (`str`): the versions whose source was read and found to have it, with the meaning used here.
        parameter (`str`, *optional*): a keyword parameter of the callable at `attribute` that is the private part.
        on_instance (`bool`, *optional*, defaults to `False`): the last part of `attribute` is an attribute of
            instances, looked up on one built with no arguments.
    """

    package: str
    module: str
    attribute: str
    used_for: str
    checked: str
    parameter: str | None = None
    on_instance: bool = False

    @property
    def qualified_name(self) -> str:
        path = f"{self.module}.{self.attribute}"
        return f"{path}({self.parameter}=...)" if self.parameter else path


PRIVATE_NAMES: tuple[PrivateName, ...] = (
    # transformers (read in 5.3.0 and 5.25.0; the suite runs on 5.16.0 and 5.25.0): the same meaning in each.
    PrivateName(
        "transformers",
        "transformers.trainer",
        "TRAINER_STATE_NAME",
        "the file a checkpoint writes last (complete checkpoints) and a finished run's log history",
        TRANSFORMERS_CHECKED,
    ),
    PrivateName(
        "transformers",
        "transformers.trainer_utils",
        "PREFIX_CHECKPOINT_DIR",
        "the name of Trainer's checkpoint folders (checkpoint-N), to find the last complete one",
        TRANSFORMERS_CHECKED,
    ),
    PrivateName(
        "transformers",
        "transformers",
        "Trainer.save_model",
        "saving before a push without Trainer's own push at the end of save_model",
        TRANSFORMERS_CHECKED,
        parameter="_internal_call",
    ),
    PrivateName(
        "transformers",
        "transformers",
        "Trainer._finish_current_push",
        "waiting for Trainer's checkpoint pushes (hub_strategy) before the alignment push",
        TRANSFORMERS_CHECKED,
    ),
    PrivateName(
        "transformers",
        "transformers",
        "Trainer._load_from_checkpoint",
        "overridden: the loss-owned heads, the combining rules' state and the skipped steps resume with the model",
        TRANSFORMERS_CHECKED,
    ),
    PrivateName(
        "transformers",
        "transformers",
        "Trainer._load_best_model",
        "overridden: load_best_model_at_end loads the best checkpoint's loss-owned heads with its model",
        TRANSFORMERS_CHECKED,
    ),
    PrivateName(
        "transformers",
        "transformers",
        "Trainer._clip_grad_norm",
        "overridden: the loss-owned heads are clipped with the model, as one norm",
        TRANSFORMERS_CHECKED,
    ),
    PrivateName(
        "transformers",
        "transformers",
        "Trainer._get_grad_norm",
        "overridden: the logged grad_norm includes the loss-owned heads",
        TRANSFORMERS_CHECKED,
    ),
    PrivateName(
        "transformers",
        "transformers.utils.output_capturing",
        "_CAN_RECORD_REGISTRY",
        "output_hidden_states under FSDP2, whose fully_shard renames the model's class; a dict whose keys are "
        "str(model class) in both versions (5.3: a plain dict; 5.25: a dict subclass keyed on the model)",
        TRANSFORMERS_CHECKED,
    ),
    PrivateName(
        "transformers",
        "transformers",
        "PreTrainedModel._can_record_outputs",
        "what a model's forward records (hidden states), registered again for the FSDP2-renamed class",
        TRANSFORMERS_CHECKED,
    ),
    # torch (2.13.0): the in-place list operations the optimizers use; no public equivalent does one
    # kernel launch per list.
    PrivateName("torch", "torch", "_foreach_copy_", "the task-gradient buffer, one launch per step", TORCH_CHECKED),
    PrivateName("torch", "torch", "_foreach_add_", "the task-gradient buffer, one launch per step", TORCH_CHECKED),
    PrivateName("torch", "torch", "_foreach_sub_", "the task-gradient buffer, one launch per step", TORCH_CHECKED),
    PrivateName("torch", "torch", "_foreach_zero_", "the task-gradient buffer, one launch per step", TORCH_CHECKED),
    # submitit (the experiments extra; read in 1.5.4, the lock's and the lowest declared).
    PrivateName(
        "submitit",
        "submitit.slurm.slurm",
        "_make_sbatch_string",
        "study.py --dry-run: the sbatch script SlurmExecutor writes, without the executor (which refuses to exist "
        "where no srun is on PATH)",
        "submitit 1.5.4",
    ),
    # The standard library's argparse (Python 3.11).
    PrivateName(
        "python",
        "argparse",
        "ArgumentParser._actions",
        "a value given in a config file satisfies a required option of the command line",
        PYTHON_CHECKED,
        on_instance=True,
    ),
    PrivateName(
        "python",
        "argparse",
        "_SubParsersAction",
        "the type of add_subparsers()' result, in the commands' signatures",
        PYTHON_CHECKED,
    ),
)


class PrivateNameError(ImportError):
    """A private name of another package that hf_xalign uses is not in the installed version."""


def installed_version(package: str) -> str:
    """The installed version of `package` (`"python"`: the interpreter's)."""
    if package == "python":
        return platform.python_version()
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return NOT_INSTALLED


def _entry(module: str, attribute: str, parameter: str | None = None) -> PrivateName:
    for entry in PRIVATE_NAMES:
        if (entry.module, entry.attribute, entry.parameter) == (module, attribute, parameter):
            return entry
    raise KeyError(f"{module}.{attribute} is not listed in hf_xalign._compat.PRIVATE_NAMES: list it first.")


def _lookup(entry: PrivateName) -> tuple[Any, str | None]:
    """`(object, None)`, or `(None, why it is missing)`."""
    try:
        found: Any = importlib.import_module(entry.module)
    except ImportError as error:
        return None, f"module {entry.module} cannot be imported ({error})"
    path = entry.module
    parts = entry.attribute.split(".")
    for index, part in enumerate(parts):
        if entry.on_instance and index == len(parts) - 1:
            found = found()
        try:
            found = getattr(found, part)
        except AttributeError:
            return None, f"{path} has no attribute {part!r}"
        path = f"{path}.{part}"
    if entry.parameter is not None and entry.parameter not in inspect.signature(found).parameters:
        return None, f"{path} takes no parameter {entry.parameter!r}"
    return found, None


def missing_message(entry: PrivateName, reason: str) -> str:
    """The one message for a missing `entry`: the name, what it is for, the installed and the checked versions."""
    version = installed_version(entry.package)
    return (
        f"hf_xalign uses {entry.package}'s private {entry.qualified_name} ({entry.used_for}), but "
        f"{entry.package} {version} does not have it: {reason}. It was checked against {entry.checked}: install "
        f"one of those, or update hf_xalign/_compat.py for {entry.package} {version}."
    )


def missing_private_names() -> list[str]:
    """One message for each name of [`PRIVATE_NAMES`] that the installed versions do not have (empty if none)."""
    messages = []
    for entry in PRIVATE_NAMES:
        if installed_version(entry.package) == NOT_INSTALLED:  # an extra's package in a core install: unused there
            continue
        _, reason = _lookup(entry)
        if reason is not None:
            messages.append(missing_message(entry, reason))
    return messages


def private(module: str, attribute: str) -> Any:
    """The private name `module.attribute` (listed in [`PRIVATE_NAMES`]).

    Raises:
        [`PrivateNameError`]: the installed version does not have it; the message names the name, the
            installed version and the versions checked.
    """
    entry = _entry(module, attribute)
    found, reason = _lookup(entry)
    if reason is not None:
        raise PrivateNameError(missing_message(entry, reason))
    return found


def _require_parameter(module: str, attribute: str, parameter: str) -> None:
    entry = _entry(module, attribute, parameter)
    _, reason = _lookup(entry)
    if reason is not None:
        raise PrivateNameError(missing_message(entry, reason))


# ---- what the rest of the package calls ----


def trainer_state_name() -> str:
    """`trainer_state.json`: the file `Trainer` writes last into a checkpoint, and with `save_state()`."""
    return private("transformers.trainer", "TRAINER_STATE_NAME")


def checkpoint_prefix() -> str:
    """`checkpoint`: Trainer's checkpoint folders are `<prefix>-<global step>`."""
    return private("transformers.trainer_utils", "PREFIX_CHECKPOINT_DIR")


def save_model_without_push(trainer: Any, output_dir: str | None = None) -> None:
    """`trainer.save_model(output_dir)` without the push that `save_model` starts when `args.push_to_hub` is set."""
    _require_parameter("transformers", "Trainer.save_model", "_internal_call")
    trainer.save_model(output_dir, _internal_call=True)


def finish_current_push(trainer: Any) -> None:
    """Wait for the checkpoint pushes that `Trainer` started in the background (`hub_strategy`)."""
    private("transformers", "Trainer._finish_current_push")
    trainer._finish_current_push()


def register_output_capture(module: Any) -> None:
    """Register what `module`'s forward records under `module`'s own class (cheap when already done).

    transformers looks a model's `_can_record_outputs` up in `_CAN_RECORD_REGISTRY` by `str(model class)`
    (5.3.0 and 5.25.0 alike); writing through `dict` keeps the key the same whatever the registry's own
    `__setitem__` takes (the model in 5.25, the key in 5.3).
    """
    registry = private("transformers.utils.output_capturing", "_CAN_RECORD_REGISTRY")
    private("transformers", "PreTrainedModel._can_record_outputs")
    key = str(type(module))
    recordable = getattr(module, "_can_record_outputs", None)
    if recordable and not dict.get(registry, key):
        dict.__setitem__(registry, key, recordable)


def parser_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """Every option of `parser` (argparse keeps them in a private list)."""
    private("argparse", "ArgumentParser._actions")
    return parser._actions


def submitit_sbatch_text(command: str, folder: str, **parameters: Any) -> str:
    """The sbatch script submitit's `SlurmExecutor` writes for `command` with its job files in `folder` and its
    `update_parameters` keywords `parameters`, without an executor."""
    return private("submitit.slurm.slurm", "_make_sbatch_string")(command=command, folder=folder, **parameters)


if TYPE_CHECKING:  # annotations only; listed in PRIVATE_NAMES
    SubParsersAction = argparse._SubParsersAction  # what ArgumentParser.add_subparsers() returns
