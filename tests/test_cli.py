"""The `xalign` command."""

from __future__ import annotations

import json

from hf_xalign.cli import main
from hf_xalign.losses import LOSS_REGISTRY


def test_losses_lists_every_registered_loss(capsys):
    assert main(["losses"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == sorted(LOSS_REGISTRY)


def test_inspect_prints_the_saved_alignment_config(tmp_path, capsys):
    config = {"losses": [{"name": "contrastive", "weight": 1.0}], "lambda": 0.5}
    (tmp_path / "alignment_config.json").write_text(json.dumps(config))
    assert main(["inspect", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out) == config


def test_inspect_of_a_directory_without_config_fails_naming_the_file(tmp_path, capsys):
    assert main(["inspect", str(tmp_path)]) == 2
    assert "alignment_config.json not found" in capsys.readouterr().err
