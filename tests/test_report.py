"""`xalign report`: every number it states is recomputed here from the files it read (scipy, the bootstrap)."""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re

import matplotlib.image
import numpy as np
import pytest
from _gradient_oracle import expected_gradient_lines, read_records
from scipy import stats

from hf_xalign.analysis.bootstrap import delta_interval, excludes_zero
from hf_xalign.analysis.report.build import build_report
from hf_xalign.analysis.report.inputs import RunFolderError
from hf_xalign.analysis.report.stats import correlate, layer_groups
from hf_xalign.cli.report import add_report_command
from hf_xalign.conflict import ConflictMeasurement
from hf_xalign.experiment import write_results
from hf_xalign.results import CellResult

MEASURES = ("pair_cosine", "cosine_gap", "pair_l2", "linear_cka", "retrieval_src_to_tgt", "retrieval_tgt_to_src")
TARGETS = ("fr", "de", "tr", "sw", "hi")
ALIGNMENT_LAYER = 2
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _outcomes(rng: random.Random, examples: int) -> dict[str, list[int]]:
    total = [rng.randint(1, 8) for _ in range(examples)]
    return {"correct": [rng.randint(0, t) for t in total], "total": total}


def _accuracy(outcome: dict[str, list[int]]) -> float:
    return sum(outcome["correct"]) / sum(outcome["total"])


def make_run(
    folder,
    *,
    targets=TARGETS,
    layers=(0, 1, 2),
    steps=20,
    seed=0,
    task="pos",
    analysis=True,
    conflict=True,
    outcomes=True,
) -> str:
    """A run folder as the recipes write it, with known values: `aligned` and `baseline` cells.

    `tr`: the aligned cell gets every example right, the baseline half of every example (Δ excludes 0);
    `fr`: both cells have the same outcomes (Δ interval [0, 0]).
    """
    rng = random.Random(seed)
    languages = ("en", *targets)
    per_cell = {"aligned": {}, "baseline": {}}
    for language in languages:
        baseline = _outcomes(rng, 30)
        aligned = _outcomes(rng, 30) if language != "fr" else baseline
        aligned["total"] = baseline["total"]  # the same test examples
        aligned["correct"] = [min(c, t) for c, t in zip(aligned["correct"], aligned["total"])]
        if language == "tr":
            aligned = {"correct": list(baseline["total"]), "total": baseline["total"]}
            baseline = {"correct": [t // 2 for t in baseline["total"]], "total": baseline["total"]}
        per_cell["aligned"][language], per_cell["baseline"][language] = aligned, baseline
    configs = {"aligned": {"alignment_layer": ALIGNMENT_LAYER}, "baseline": {"alignment_mode": "none"}}
    results = []
    for name, cell_outcomes in per_cell.items():
        cell_folder = os.path.join(folder, name)
        os.makedirs(cell_folder)
        scores = {language: {"accuracy": _accuracy(outcome)} for language, outcome in cell_outcomes.items()}
        results.append(CellResult(name, task, "accuracy", "en", scores, config=configs[name], model_path=cell_folder))
        if outcomes:
            with open(os.path.join(cell_folder, "outcomes.json"), "w") as f:
                json.dump(cell_outcomes, f)
    with open(os.path.join(folder, "aligned", "alignment_config.json"), "w") as f:
        json.dump({"layer": ALIGNMENT_LAYER, "mode": "joint"}, f)
    if conflict:
        write_conflict(os.path.join(folder, "aligned", "conflict.jsonl"), rng, steps, max(layers))
    if analysis:
        write_analysis(os.path.join(folder, "analysis.csv"), rng, targets, layers)
    write_results(results, os.fspath(folder), "baseline")
    return os.fspath(folder)


def write_conflict(path: str, rng: random.Random, steps: int, last_layer: int) -> None:
    with open(path, "w") as f:
        for step in range(1, steps + 1):
            groups = {
                f"layer.{k}": {"cosine": rng.uniform(-0.3, 0.3), "norm_ratio": rng.uniform(0.1, 3)}
                for k in range(last_layer + 1)
            }
            groups["head"] = {"cosine": None, "norm_ratio": None}  # no alignment gradient in the task head
            measurement = ConflictMeasurement(step, 0.5, rng.uniform(-0.2, 0.2), 1.0, rng.uniform(0.1, 3), groups)
            f.write(json.dumps(measurement.to_record()) + "\n")


def write_analysis(path: str, rng: random.Random, targets, layers) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["model", "pair", "layer", "measure", "value", "n"])
        for model in ("base", "aligned", "baseline"):
            for target in targets:
                for layer in layers:
                    for measure in MEASURES:
                        writer.writerow([model, f"en-{target}", layer, measure, rng.random(), 50])


def read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def analysis_values(run_folder: str) -> dict[tuple, float]:
    rows = read_csv(os.path.join(run_folder, "analysis.csv"))
    return {(r["model"], r["pair"], int(r["layer"]), r["measure"]): float(r["value"]) for r in rows}


def embedded_images(report_path: str) -> list[str]:
    text = open(report_path, encoding="utf-8").read()
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)


def correlation_text(rho: float, r: float, n: int) -> str:
    return f"Spearman ρ = {rho:.3f}, Pearson r = {r:.3f}, n = {n}."


def files_under(folder) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(root, name), folder) for root, _, names in os.walk(folder) for name in names
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> str:
    return make_run(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def report(run) -> str:
    return build_report([run])


def test_report_is_written_in_the_first_run_folder(run, report):
    assert report == os.path.join(run, "report", "report.md")
    assert os.path.isfile(os.path.join(run, "report", "report_table.csv"))
    assert not [name for name in os.listdir(run) if name.startswith(".report-")]  # the staging folder moved


def test_every_embedded_plot_is_a_drawn_png(report):
    folder = os.path.dirname(report)
    images = embedded_images(report)
    names = {os.path.basename(image) for image in images}
    assert {f"measures_{m}.png" for m in MEASURES} | {
        "transfer_aligned.png",
        "gradient_cosine.png",
        "gradient_norm_ratio.png",
        "gradient_layers_aligned.png",
    } <= names
    for image in images:
        path = os.path.join(folder, image)
        with open(path, "rb") as f:
            assert f.read(8) == PNG_SIGNATURE, image
        pixels = matplotlib.image.imread(path)
        assert pixels.ndim == 3 and pixels.std() > 0, image
    # and no plot is written that the report does not show
    assert sorted(images) == [p for p in files_under(folder) if p.endswith(".png")]


def test_table_holds_the_deltas_of_results_and_analysis(run, report):
    table = read_csv(os.path.join(os.path.dirname(report), "report_table.csv"))
    values = analysis_values(run)
    scores = {cell.name: cell for cell in map(CellResult.from_dict, map(json.loads, open(f"{run}/results.jsonl")))}
    assert [row["language"] for row in table] == list(TARGETS)
    for row in table:
        assert (row["cell"], row["reference"], row["layer"], row["metric"]) == ("aligned", "baseline", "2", "accuracy")
        language = row["language"]
        assert float(row["delta_score"]) == scores["aligned"].score(language) - scores["baseline"].score(language)
        for measure in MEASURES:
            key = (f"en-{language}", ALIGNMENT_LAYER, measure)
            assert float(row[f"delta_{measure}"]) == values[("aligned", *key)] - values[("base", *key)]


def test_correlations_equal_scipy_on_the_table(report):
    text = open(report, encoding="utf-8").read()
    table = read_csv(os.path.join(os.path.dirname(report), "report_table.csv"))
    y = [float(row["delta_score"]) for row in table]
    for measure in MEASURES:
        x = [float(row[f"delta_{measure}"]) for row in table]
        rho, r = stats.spearmanr(x, y).statistic, stats.pearsonr(x, y).statistic
        expected = f"Δ accuracy vs Δ {measure} at layer 2 (aligned): " + correlation_text(rho, r, len(TARGETS))
        assert expected in text


def test_delta_sentence_follows_the_paired_bootstrap(run, report):
    text = open(report, encoding="utf-8").read()
    sentence = next(line for line in text.splitlines() if line.startswith("Δ accuracy (aligned − baseline) excludes 0"))
    aligned = json.load(open(f"{run}/aligned/outcomes.json"))
    baseline = json.load(open(f"{run}/baseline/outcomes.json"))
    excluded, included = sentence.split("; not for ") if "; not for " in sentence else (sentence, "")
    for language in ("en", *TARGETS):
        interval = delta_interval(
            aligned[language]["correct"],
            aligned[language]["total"],
            baseline[language]["correct"],
            baseline[language]["total"],
        )
        delta = _accuracy(aligned[language]) - _accuracy(baseline[language])
        shown = f"{language} ({delta:+.4f} [{interval[0]:+.4f}, {interval[1]:+.4f}])"
        assert shown in (excluded if excludes_zero(interval) else included), shown
    assert " tr (" in excluded and " fr (" in included  # all right vs half right; identical outcomes
    assert "fr (+0.0000 [+0.0000, +0.0000])" in included


def test_alignment_change_sentence_counts_closer_pairs(run, report):
    text = open(report, encoding="utf-8").read()
    values = analysis_values(run)
    deltas = [
        values[("aligned", f"en-{t}", ALIGNMENT_LAYER, "pair_l2")]
        - values[("base", f"en-{t}", ALIGNMENT_LAYER, "pair_l2")]
        for t in TARGETS
    ]
    closer = sum(delta < 0 for delta in deltas)  # a distance: lower is closer
    assert (
        f"Δ pair_l2 (aligned − base) at layer 2: mean {np.mean(deltas):+.4f} over 5 target language pairs; "
        f"translations closer for {closer} of 5." in text
    )


def test_gradient_sentences_come_from_conflict_jsonl(run, report):
    lines = open(report, encoding="utf-8").read().splitlines()
    expected = expected_gradient_lines(read_records(f"{run}/aligned/conflict.jsonl"), "aligned")
    assert "over 20 measured steps" in expected[0] and len(expected) == 3  # cosine, ratio, per-layer extremes
    start = lines.index(expected[0])
    assert lines[start : start + 3] == expected


def test_layer_groups_are_in_numeric_order(tmp_path):
    folder = make_run(tmp_path, layers=tuple(range(12)), steps=3)
    from hf_xalign.analysis.report.inputs import read_run

    assert layer_groups(read_run(folder).cell("aligned")) == list(range(12))  # layer.10 after layer.9


@pytest.mark.parametrize("content", [None, "", "\n\n"])
def test_a_folder_without_results_is_an_error_and_nothing_is_written(tmp_path, content):
    good = make_run(tmp_path / "good")
    bad = tmp_path / "bad"
    bad.mkdir()
    if content is not None:
        (bad / "results.jsonl").write_text(content)
    before = {folder: files_under(folder) for folder in (good, bad)}
    with pytest.raises(RunFolderError, match=re.escape(str(bad))):
        build_report([good, str(bad)])
    with pytest.raises(RunFolderError, match=re.escape(str(bad))):
        build_report([str(bad)], output_dir=str(tmp_path / "out"))
    assert {folder: files_under(folder) for folder in (good, bad)} == before
    assert not (tmp_path / "out").exists()


def test_missing_optional_inputs_are_left_out_and_named(tmp_path):
    folder = make_run(tmp_path, analysis=False, conflict=False, outcomes=False)
    text = open(build_report([folder]), encoding="utf-8").read()
    assert embedded_images(os.path.join(folder, "report", "report.md")) == []
    assert "### Not measured" in text
    assert "alignment per layer (no analysis.csv" in text
    assert "the gradients of cell aligned (no conflict.jsonl" in text
    assert "per-example outcomes of cell baseline (no outcomes.json)" in text
    assert "no paired interval for en, fr, de, tr, sw, hi" in text
    assert "Spearman" not in text and "nan" not in text.lower()


def test_too_few_languages_give_an_undefined_correlation(tmp_path):
    folder = make_run(tmp_path, targets=("fr", "tr"))
    text = open(build_report([folder]), encoding="utf-8").read()
    assert (
        "Δ accuracy vs Δ of each measure (pair_cosine, cosine_gap, pair_l2, linear_cka, retrieval_src_to_tgt, retrieval_tgt_to_src): correlation undefined (n = 2; at least 3 points are needed)."
        in text
    )
    assert "nan" not in text.lower()


def test_several_runs_get_a_section_each_and_a_combined_scatter(tmp_path):
    first, second = make_run(tmp_path / "first", seed=1), make_run(tmp_path / "second", seed=2)
    report = build_report([first, second], output_dir=str(tmp_path / "both"))
    text = open(report, encoding="utf-8").read()
    assert "## Run `first`" in text and "## Run `second`" in text
    images = embedded_images(report)
    assert "plots/combined_transfer.png" in images
    assert "plots/first/transfer_aligned.png" in images and "plots/second/transfer_aligned.png" in images
    table = read_csv(os.path.join(tmp_path, "both", "report", "report_table.csv"))
    assert [row["run"] for row in table] == ["first"] * 5 + ["second"] * 5
    y = [float(row["delta_score"]) for row in table]
    x = [float(row["delta_linear_cka"]) for row in table]
    expected = correlation_text(stats.spearmanr(x, y).statistic, stats.pearsonr(x, y).statistic, 10)
    assert f"Across 2 runs, Δ accuracy vs Δ linear_cka at each cell's alignment layer: {expected}" in text


def test_runs_of_different_tasks_are_not_combined(tmp_path):
    minimal = dict(analysis=False, conflict=False)
    first, second = make_run(tmp_path / "a", **minimal), make_run(tmp_path / "b", task="classification", **minimal)
    text = open(build_report([first, second]), encoding="utf-8").read()
    assert "The runs differ in task or metric (classification/accuracy, pos/accuracy): no combined scatter." in text


def test_a_second_report_replaces_the_first(tmp_path):
    folder = make_run(tmp_path, analysis=False)
    stale = os.path.join(os.path.dirname(build_report([folder])), "plots", "stale.png")
    open(stale, "wb").close()
    build_report([folder])
    assert not os.path.exists(stale)
    assert embedded_images(os.path.join(folder, "report", "report.md"))  # the new plots are there


def test_report_command(tmp_path, capsys):
    folder = make_run(tmp_path / "run", analysis=False, conflict=False)
    parser = argparse.ArgumentParser(prog="xalign")
    add_report_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["report", folder, "--output", str(tmp_path / "out"), "--reference", "baseline"])
    assert args.run(args) == 0
    assert capsys.readouterr().out.strip() == os.path.join(tmp_path, "out", "report", "report.md")
    assert os.path.isfile(tmp_path / "out" / "report" / "report.md")


def test_report_output_goes_into_dir_report_as_the_help_says(tmp_path, capsys):
    folder = make_run(tmp_path / "run", analysis=False, conflict=False)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's own file", encoding="utf-8")
    parser = argparse.ArgumentParser(prog="xalign")
    report_parser = add_report_command(parser.add_subparsers(dest="command"))
    assert "the report goes into DIR/report/" in " ".join(report_parser.format_help().split())
    args = parser.parse_args(["report", folder, "--output", str(mine)])
    assert args.run(args) == 0
    assert capsys.readouterr().out.strip() == str(mine / "report" / "report.md")
    assert (mine / "notes.txt").read_text(encoding="utf-8") == "the user's own file"  # DIR itself is left alone


def test_report_of_a_real_tiny_run(tmp_path, tokenizer):
    from _tiny_experiment import run_tiny_experiment, save_tiny_model, write_parallel_tsv

    model = save_tiny_model(str(tmp_path / "model"), tokenizer)
    run_tiny_experiment(tmp_path / "run", model, write_parallel_tsv(str(tmp_path / "en-xx.tsv")), conflict_every=1)
    report = build_report([str(tmp_path / "run")])
    text = open(report, encoding="utf-8").read()
    steps = sum(1 for _ in open(tmp_path / "run" / "aligned" / "conflict.jsonl"))
    assert f"over {steps} measured steps" in text
    images = {os.path.basename(path) for path in embedded_images(report)}
    assert {"gradient_cosine.png", "gradient_norm_ratio.png", "gradient_layers_aligned.png"} <= images
    assert "Δ accuracy (aligned − baseline) excludes 0 for" in text
    assert "nan" not in text.lower()


def test_spearman_p_is_exact_for_few_points():
    # 4 points in perfect rank order: of the 24 pairings only the identity and the reversal reach |ρ| = 1.
    assert correlate([1.0, 2.0, 3.0, 4.0], [0.1, 0.2, 0.3, 0.9]).spearman_p == pytest.approx(2 / 24)
    # 5 points, ρ = 0.8: 8 of the 120 pairings have ρ ≥ 0.8 and 8 have ρ ≤ −0.8 (Spearman's tables).
    assert correlate([1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 1.0, 3.0, 5.0, 4.0]).spearman_p == pytest.approx(16 / 120)
