"""`hf_xalign._compat`: every private name of another package, present in the installed versions, and named
with the installed version when one is gone.

Oracles: the installed packages themselves (the table is looked up in them), transformers' own `Trainer`
(which of our methods override a private one of it), the package's source text (no private name of another
package outside `_compat.py`), and a forward of a model whose class was renamed as FSDP2 renames it.
"""

from __future__ import annotations

import pathlib
import re

import pytest
import torch
import transformers
from conftest import make_model

from hf_xalign import AlignmentTrainer, _compat
from hf_xalign._compat import PRIVATE_NAMES, PrivateNameError, missing_private_names, private

PACKAGE = pathlib.Path(_compat.__file__).parent
# A private name of another package in source text: `torch._x`, `transformers.x._y`, `from torch._x import`,
# `from x import _y`, Trainer's internal keyword of save_model.
FOREIGN_PRIVATE = re.compile(
    r"\b(?:torch|transformers|accelerate|datasets|huggingface_hub|safetensors|peft|argparse)(?:\.\w+)*\._(?!_)\w"  # not a dunder (`__version__`)
    r"|^\s*from\s+(?!\.)[\w.]+\s+import\s+(?:\([^)]*|[^\n]*)\b_[A-Za-z]\w*"
    r"|\b_internal_call\b"
    r"|\b_CAN_RECORD_REGISTRY\b",
    re.MULTILINE,
)


def test_every_listed_private_name_is_in_the_installed_versions():
    assert missing_private_names() == []


def test_a_missing_name_is_named_with_the_installed_version(monkeypatch):
    monkeypatch.delattr(transformers.trainer, "TRAINER_STATE_NAME")
    (message,) = missing_private_names()
    assert "transformers.trainer.TRAINER_STATE_NAME" in message
    assert f"transformers {transformers.__version__} does not have it" in message
    assert "checked against transformers 5.16.0 (the lowest declared, make test-min) and 5.25.0 (the lock)" in message
    with pytest.raises(PrivateNameError) as raised:
        private("transformers.trainer", "TRAINER_STATE_NAME")
    assert str(raised.value) == message


def test_a_missing_private_parameter_is_named(monkeypatch):
    def save_model(self, output_dir=None):  # a release without the internal keyword
        raise AssertionError("must not be called")

    monkeypatch.setattr(transformers.Trainer, "save_model", save_model)
    (message,) = missing_private_names()
    assert "transformers.Trainer.save_model(_internal_call=...)" in message
    assert "takes no parameter '_internal_call'" in message
    with pytest.raises(PrivateNameError, match=re.escape("Trainer.save_model(_internal_call=...)")):
        _compat.save_model_without_push(object())


def test_every_overridden_private_trainer_method_is_listed():
    # The class and the mixins it is made of (hf_xalign/trainer/): every class before Trainer in its MRO.
    own_classes = AlignmentTrainer.__mro__[: AlignmentTrainer.__mro__.index(transformers.Trainer)]
    overridden = {
        name
        for cls in own_classes
        for name, value in vars(cls).items()
        if name.startswith("_")
        and not name.startswith("__")
        and callable(value)
        and hasattr(transformers.Trainer, name)
    }
    listed = {entry.attribute.removeprefix("Trainer.") for entry in PRIVATE_NAMES if entry.module == "transformers"}
    assert overridden  # the check sees the overrides
    assert overridden <= listed, f"not in _compat.PRIVATE_NAMES: {sorted(overridden - listed)}"


def test_no_private_name_of_another_package_outside_compat():
    sources = [
        path
        for folder in (PACKAGE, PACKAGE.parent / "recipes", PACKAGE.parent / "benchmarks")
        for path in sorted(folder.rglob("*.py"))
        if path.name != "_compat.py"
    ]
    assert len(sources) > 20
    found = [
        f"{path.relative_to(PACKAGE.parent)}: {match.group(0).strip()}"
        for path in sources
        for match in FOREIGN_PRIVATE.finditer(path.read_text(encoding="utf-8"))
    ]
    assert found == []


def test_the_scan_sees_a_private_name():
    assert FOREIGN_PRIVATE.search("from torch._utils import _flatten_dense_tensors")
    assert FOREIGN_PRIVATE.search("from transformers.utils.output_capturing import _CAN_RECORD_REGISTRY")
    assert FOREIGN_PRIVATE.search("    x = torch._foreach_copy_(a, b)")
    assert FOREIGN_PRIVATE.search("trainer.save_model(_internal_call=True)")
    assert not FOREIGN_PRIVATE.search("from ._compat import private")


def test_registered_output_capture_gives_a_renamed_model_its_hidden_states(tokenizer):
    # fully_shard swaps a module's class for a subclass named FSDP<name>; transformers finds what a
    # forward records by the class, so the renamed encoder returns no hidden states until registered.
    encoder = make_model(tokenizer).roberta
    encoder.__class__ = type(f"FSDP{type(encoder).__name__}", (type(encoder),), {})
    input_ids = torch.tensor([[0, 5, 6, 2]])
    assert encoder(input_ids, output_hidden_states=True).hidden_states is None
    _compat.register_output_capture(encoder)
    hidden_states = encoder(input_ids, output_hidden_states=True).hidden_states
    assert hidden_states is not None and len(hidden_states) == encoder.config.num_hidden_layers + 1
