"""Recipe machinery: configs, the per-language table."""

from __future__ import annotations

import glob
import json
import math
import os
import sys

import pytest
import yaml

from hf_xalign import AlignmentTrainingArguments
from hf_xalign.experiment import ZeroShotReport, config_errors, parse_config, parse_language_paths

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "recipes"))
import pos  # noqa: E402
import xnli  # noqa: E402

RECIPE_ARGUMENTS = {"pos": pos.PosArguments, "xnli": xnli.ClassificationArguments, "sib": xnli.ClassificationArguments}


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "recipes", "configs", "*.yaml"))))
def test_every_shipped_config_is_valid(path):
    recipe = os.path.basename(path).split("_")[0].split(".")[0]
    with open(path, encoding="utf-8") as f:
        values = yaml.safe_load(f)
    assert config_errors(values, (RECIPE_ARGUMENTS[recipe], AlignmentTrainingArguments), path) == []


def test_config_errors_are_reported_all_at_once(tmp_path):
    values = {
        "model_name_or_path": "m",
        "train_treebank": ["a"],
        "eval_treebanks": ["en=a"],
        "alignment_los": ["x"],
        "tag_map": "nope",
        "alignment_loss": ["contrastiv"],
        "output_dir": str(tmp_path),
    }
    errors = config_errors(values, (pos.PosArguments, AlignmentTrainingArguments), "c.yaml")
    assert len(errors) == 3
    assert "c.yaml: unknown option 'alignment_los'" in errors[0] and "alignment_loss" in errors[0]
    assert any("tag_map" in e for e in errors) and any("Unknown alignment loss 'contrastiv'" in e for e in errors)


def test_yaml_values_with_command_line_overrides(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model_name_or_path": "m",
                "train_treebank": ["train.conllu"],
                "eval_treebanks": ["en=a", "tr=b"],
                "output_dir": str(tmp_path / "out"),
                "alignment_loss": ["contrastive", "mlm"],
                "max_steps": 10,
            }
        )
    )
    script, training = parse_config((pos.PosArguments, AlignmentTrainingArguments), [str(config), "--max_steps", "3"])
    assert script.eval_languages == {"en": "a", "tr": "b"}
    assert training.alignment_loss == ["contrastive", "mlm"]
    assert training.max_steps == 3  # the command line wins
    _, same = parse_config((pos.PosArguments, AlignmentTrainingArguments), ["--config", str(config)])
    assert same.max_steps == 10


def test_unknown_yaml_key_is_named(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("model_name_or_path: m\nlearning_rat: 0.1\n")
    with pytest.raises(ValueError, match=r"c\.yaml: unknown option 'learning_rat'.*learning_rate"):
        parse_config((pos.PosArguments, AlignmentTrainingArguments), [str(config)])


@pytest.mark.parametrize("entry", ["tr", "=x", "tr="])
def test_language_paths_need_lang_equals_path(entry):
    with pytest.raises(ValueError, match="eval_treebanks: .* is not LANG=PATH"):
        parse_language_paths([entry], "eval_treebanks")


def test_table_rows_averages_and_differences(tmp_path):
    report = ZeroShotReport(
        metric="accuracy",
        source_language="en",
        runs={
            "aligned": {"en": {"accuracy": 0.9}, "fr": {"accuracy": 0.6}, "tr": {"accuracy": 0.5}},
            "baseline": {"en": {"accuracy": 0.92}, "fr": {"accuracy": 0.55}, "tr": {"accuracy": 0.51}},
        },
    )
    markdown = report.to_markdown()
    assert "| en (source) | 0.9000 | 0.9200 | -0.0200 |" in markdown
    assert "| fr | 0.6000 | 0.5500 | +0.0500 |" in markdown
    # macro average over the targets only: (0.6 + 0.5) / 2 and (0.55 + 0.51) / 2
    assert "| **macro avg (targets)** | 0.5500 | 0.5300 | +0.0200 |" in markdown
    report.conflict_summary = {"measured_steps": 2, "mean_cosine": float("nan"), "per_group": {}}
    report.save(str(tmp_path))
    saved = json.loads((tmp_path / "results.json").read_text())  # strict JSON: NaN became null
    assert saved["conflict_summary"]["mean_cosine"] is None
    assert math.isclose(saved["macro_average_targets"]["baseline"], 0.53)


def test_an_option_defined_by_two_dataclasses_is_an_error():
    from dataclasses import dataclass

    @dataclass
    class Clashing:
        label_names: str = "x"  # also a TrainingArguments field

    errors = config_errors({}, (Clashing, AlignmentTrainingArguments), "c.yaml")
    assert errors == ["option 'label_names' is defined by both Clashing and AlignmentTrainingArguments"]
