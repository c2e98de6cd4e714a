"""Recipe machinery: configs, the per-language table."""

from __future__ import annotations

import configparser
import dataclasses
import glob
import json
import math
import os

import pytest
import yaml

from hf_xalign import AlignmentTrainingArguments
from hf_xalign.conflict import ConflictMeasurement, summarize
from hf_xalign.experiment import (
    AlignArguments,
    CellResult,
    ConfigError,
    config_errors,
    parse_config,
    parse_language_paths,
    read_results,
    resolved_config,
    run_recipe,
    save_config,
    write_results,
)
from hf_xalign.experiment.console import time_split
from hf_xalign.tasks.classification import ClassificationArguments
from hf_xalign.tasks.pos import PosArguments

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RECIPE_ARGUMENTS = {"pos": PosArguments, "xnli": ClassificationArguments, "sib": ClassificationArguments}
RECIPE_ARGUMENTS["align"] = AlignArguments


# Study configs are not recipe options: tests/test_study.py checks them.
RECIPE_CONFIGS = [
    path
    for path in sorted(glob.glob(os.path.join(ROOT, "recipes", "configs", "*.yaml")))
    if not os.path.basename(path).startswith("study")
]


@pytest.mark.parametrize("path", RECIPE_CONFIGS)
def test_every_shipped_config_is_valid(path):
    recipe = os.path.basename(path).split("_")[0].split(".")[0]
    with open(path, encoding="utf-8") as f:
        values = yaml.safe_load(f)
    assert config_errors(values, (RECIPE_ARGUMENTS[recipe], AlignmentTrainingArguments), path) == []


def test_configs_that_log_to_tensorboard_name_the_extra_that_installs_it():
    setup = configparser.ConfigParser()
    setup.read(os.path.join(ROOT, "setup.cfg"))
    extras = setup["options.extras_require"]
    assert "tensorboard" in extras["tensorboard"]
    for path in RECIPE_CONFIGS:
        with open(path, encoding="utf-8") as f:
            lines = [line for line in f if line.startswith("report_to:")]
        if "tensorboard" in yaml.safe_load("".join(lines))["report_to"]:
            assert 'pip install "hf-xalign[tensorboard]"' in lines[0], path


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
    errors = config_errors(values, (PosArguments, AlignmentTrainingArguments), "c.yaml")
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
    script, training = parse_config((PosArguments, AlignmentTrainingArguments), [str(config), "--max_steps", "3"])
    assert script.eval_languages == {"en": "a", "tr": "b"}
    assert training.alignment_loss == ["contrastive", "mlm"]
    assert training.max_steps == 3  # the command line wins
    _, same = parse_config((PosArguments, AlignmentTrainingArguments), ["--config", str(config)])
    assert same.max_steps == 10


def test_unknown_yaml_key_is_named(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("model_name_or_path: m\nlearning_rat: 0.1\n")
    with pytest.raises(ValueError, match=r"c\.yaml: unknown option 'learning_rat'.*learning_rate"):
        parse_config((PosArguments, AlignmentTrainingArguments), [str(config)])


def test_every_unknown_yaml_key_is_named_in_one_error(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("model_name_or_path: m\nlearning_rat: 0.1\nalignment_layr: 3\nzzz_qqq: 1\nmax_steps: 2\n")
    with pytest.raises(ConfigError) as error:
        parse_config((PosArguments, AlignmentTrainingArguments), [str(config)])
    assert str(error.value).splitlines() == [  # the unknown keys only: no line about options not given
        f"{config}: unknown option 'alignment_layr' (did you mean: alignment_layer, alignment_lambda, alignment_loss?)",
        f"{config}: unknown option 'learning_rat' (did you mean: learning_rate, head_learning_rate?)",
        f"{config}: unknown option 'zzz_qqq'",
    ]


@pytest.mark.parametrize("entry", ["tr", "=x", "tr="])
def test_language_paths_need_lang_equals_path(entry):
    with pytest.raises(ValueError, match="eval_treebanks: .* is not LANG=PATH"):
        parse_language_paths([entry], "eval_treebanks")


def cell(name: str, scores: dict[str, float], **fields) -> CellResult:
    return CellResult(
        name=name,
        task="pos",
        metric="accuracy",
        source_language="en",
        scores={language: {"accuracy": value} for language, value in scores.items()},
        **fields,
    )


def test_table_rows_averages_and_differences(tmp_path):
    aligned = cell("aligned", {"en": 0.9, "fr": 0.6, "tr": 0.5})
    baseline = cell("baseline", {"en": 0.92, "fr": 0.55, "tr": 0.51})
    write_results([aligned, baseline], str(tmp_path), reference="baseline")
    markdown = (tmp_path / "results.md").read_text()
    assert "| en (source) | 0.9000 | 0.9200 | -0.0200 |" in markdown
    assert "| fr | 0.6000 | 0.5500 | +0.0500 |" in markdown
    # macro average over the targets only: (0.6 + 0.5) / 2 and (0.55 + 0.51) / 2
    assert "| **macro avg (targets)** | 0.5500 | 0.5300 | +0.0200 |" in markdown
    aligned.conflict_summary = {"measured_steps": 2, "mean_cosine": float("nan"), "per_group": {}}
    write_results([aligned, baseline], str(tmp_path), reference="baseline")
    saved = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert saved[0]["conflict_summary"]["mean_cosine"] is None  # strict JSON: NaN became null
    assert math.isclose(saved[1]["target_average"], 0.53)


def test_results_md_states_the_gradient_summary_of_each_measured_cell(tmp_path):
    # three measured steps and one skipped: cosines 0.3, -0.05, 0.02; ratios 4/1 = 4, 1/2 = 0.5, 3/2 = 1.5
    records = [
        {"cosine": 0.3, "task_norm": 1.0, "align_norm": 4.0, "g": {"layer.0": 0.2, "layer.1": -0.1}},
        {"cosine": -0.05, "task_norm": 2.0, "align_norm": 1.0, "g": {"layer.0": 0.0, "layer.1": -0.3}},
        {"cosine": 0.02, "task_norm": 2.0, "align_norm": 3.0, "g": {"layer.0": 0.1, "layer.1": 0.1}},
    ]
    measurements = [
        ConflictMeasurement(
            step, 1.0, r["cosine"], r["task_norm"], r["align_norm"], {k: {"cosine": c} for k, c in r["g"].items()}
        )
        for step, r in enumerate(records)
    ]
    measurements.append(ConflictMeasurement(3, 1.0, math.nan, math.nan, math.nan, skipped=True))
    aligned = cell("aligned", {"en": 0.9, "fr": 0.6}, conflict_summary=summarize(measurements))
    write_results([aligned, cell("baseline", {"en": 0.92, "fr": 0.55})], str(tmp_path), reference="baseline")
    lines = (tmp_path / "results.md").read_text().splitlines()
    start = lines.index(
        "- Task vs alignment gradient cosine (aligned): mean +0.0900, median +0.0200 over 3 measured steps "
        "(1 more skipped: non-finite gradients); |cosine| < 0.1 at 67% of them, negative at 33% "
        "(near 0: the two objectives barely interact)."
    )
    assert lines[start + 1 : start + 3] == [
        "- ‖align grad‖ / ‖task grad‖ (aligned): median 1.500 over the steps (from 0.500 to 4.000).",
        "- Per layer (aligned), the mean cosine is lowest at layer 1 (-0.1000) and highest at layer 0 (+0.1000).",
    ]
    assert "| layer.0 | +0.1000 | – |" in lines  # no per-group norms recorded: no ratio


def test_a_grid_shows_every_cell_against_the_named_reference(tmp_path):
    cells = [
        cell("mse", {"en": 0.9, "fr": 0.7}),
        cell("base", {"en": 0.8, "fr": 0.5}),
        cell("contrastive", {"en": 0.7, "fr": 0.4}),
    ]
    write_results(cells, str(tmp_path), reference="base")
    lines = (tmp_path / "results.md").read_text().splitlines()
    assert "| language | mse | base | contrastive | Δ (mse − base) | Δ (contrastive − base) |" in lines
    assert "| fr | 0.7000 | 0.5000 | 0.4000 | +0.2000 | -0.1000 |" in lines


def test_scores_and_differences_carry_their_intervals(tmp_path):
    aligned = cell("aligned", {"en": 0.9, "fr": 0.6}, intervals={"fr": [0.55, 0.66]})
    aligned.reference, aligned.delta_intervals = "baseline", {"fr": [0.01, 0.09]}
    baseline = cell("baseline", {"en": 0.92, "fr": 0.55}, intervals={"fr": [0.5, 0.6]})
    write_results([aligned, baseline], str(tmp_path), reference="baseline")
    lines = (tmp_path / "results.md").read_text().splitlines()
    assert "| fr | 0.6000 [0.5500, 0.6600] | 0.5500 [0.5000, 0.6000] | +0.0500 [+0.0100, +0.0900] |" in lines
    assert "| en (source) | 0.9000 | 0.9200 | -0.0200 |" in lines  # no interval given: none shown
    assert "95% bootstrap interval" in lines[0]


def test_results_jsonl_round_trip(tmp_path):
    summary = {"measured_steps": 3, "mean_cosine": -0.01, "per_group": {"layer.1": {"mean_cosine": 0.02}}}
    written = [
        cell(
            "aligned",
            {"en": 0.9, "fr": 0.6},
            config={"alignment_loss": ["mse"], "seed": 3},
            conflict_summary=summary,
            model_path="out/aligned",
            train_metrics={"train_loss": 1.5},
            seconds={"train": 12.5, "evaluate": 1.25},
            details={"parallel_pairs": 7},
        ),
        cell("baseline", {"en": 0.92, "fr": float("nan")}, config={"alignment_mode": "none"}),
    ]
    write_results(written, str(tmp_path), reference="baseline")
    read = read_results(str(tmp_path))
    assert [r.name for r in read] == ["aligned", "baseline"]
    assert read[0] == written[0]
    assert '"fr": {"accuracy": null}' in (tmp_path / "results.jsonl").read_text()  # strict JSON: no NaN
    assert math.isnan(read[1].score("fr")) and read[1].score("en") == 0.92  # null reads as NaN again
    assert read_results(str(tmp_path / "results.jsonl"))[0].config == {"alignment_loss": ["mse"], "seed": 3}


def test_time_split_names_every_phase_and_adds_them_up():
    aligned = cell("aligned", {"en": 0.9}, seconds={"train": 100.4, "evaluate": 10.0})
    baseline = cell("baseline", {"en": 0.9}, seconds={"train": 49.6, "evaluate": 9.0})
    line = time_split(5.0, [aligned, baseline], analysis_seconds=21.0)
    # 5 + (100.4 + 10) + (49.6 + 9) + 21 = 195
    assert line == (
        "time: setup (data, tokenizer, metric) 5 s | aligned: train 100 s, evaluate 10 s"
        " | baseline: train 50 s, evaluate 9 s | analysis and report 21 s | total 195 s"
    )
    assert "analysis" not in time_split(5.0, [aligned])


def test_config_yaml_reruns_the_same_arguments(tmp_path):
    argv = [
        "--model_name_or_path",
        "m",
        "--train_treebank",
        "a.conllu",
        "--eval_treebanks",
        "en=a",
        "tr=b",
        "--output_dir",
        str(tmp_path / "out"),
        "--alignment_loss",
        "mse",
        "tlm",
        "--alignment_loss_weights",
        "1",
        "0.5",
        "--max_steps",
        "7",
        "--seed",
        "3",
        "--lr_scheduler_type",
        "cosine",
        "--hub_token",
        "hf_SECRET",
    ]
    first = parse_config((PosArguments, AlignmentTrainingArguments), argv)
    path = save_config(resolved_config(*first), str(tmp_path), recipe="recipes/pos.py")
    text = open(path, encoding="utf-8").read()
    assert "hf_SECRET" not in text and "hub_token" not in text  # secrets never reach a saved config
    again = parse_config((PosArguments, AlignmentTrainingArguments), [path])
    for before, after in zip(first, again):
        hidden = {k for k in dataclasses.asdict(before) if k.endswith("_token")}
        assert {k: v for k, v in dataclasses.asdict(after).items() if k not in hidden} == {
            k: v for k, v in dataclasses.asdict(before).items() if k not in hidden
        }
    values = yaml.safe_load(text)
    assert values["alignment_loss_weights"] == [1.0, 0.5] and values["lr_scheduler_type"] == "cosine"
    assert "learning_rate" not in values  # a default stays out: the file says what this run chose


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--max_stepz", "3"], "unknown option '--max_stepz' (did you mean: max_steps"),
        (["--alignment_loss", "contrastiv"], "Unknown alignment loss 'contrastiv'. Did you mean 'contrastive'?"),
        (["--tag_map", "nope"], "tag_map must be one of"),
    ],
)
def test_a_mistyped_option_exits_with_one_clear_message(tmp_path, capsys, argv, expected):
    base = [
        "--model_name_or_path",
        "m",
        "--train_treebank",
        "a",
        "--eval_treebanks",
        "en=a",
        "--output_dir",
        str(tmp_path),
    ]
    ran = []
    with pytest.raises(SystemExit) as stop:
        run_recipe(lambda *arguments: ran.append(arguments), (PosArguments, AlignmentTrainingArguments), base + argv)
    assert stop.value.code == 2 and not ran
    error = capsys.readouterr().err
    assert expected in error and "Traceback" not in error
    assert len(error.strip().splitlines()) == 1


def test_unknown_flag_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown option '--learning_rte'.*learning_rate"):
        parse_config(
            (PosArguments, AlignmentTrainingArguments),
            ["--model_name_or_path", "m", "--train_treebank", "a", "--eval_treebanks", "en=a", "--learning_rte", "0.1"],
        )


def test_an_option_defined_by_two_dataclasses_is_an_error():
    from dataclasses import dataclass

    @dataclass
    class Clashing:
        label_names: str = "x"  # also a TrainingArguments field

    errors = config_errors({}, (Clashing, AlignmentTrainingArguments), "c.yaml")
    assert errors == ["option 'label_names' is defined by both Clashing and AlignmentTrainingArguments"]
