"""The study report: every number it states is recomputed here from the cells' own files (numpy, scipy).

The study folder is built once (tests/_tiny_study.py): 1 encoder × (base | contrastive on en-xx,
sequential | joint) × (pos | classification) × seeds 1, 2; the pos cells of seed 1 are real runs.
"""

from __future__ import annotations

import csv
import json
import os
import shutil

import numpy as np
import pytest
from _tiny_study import LAYER, TARGETS, VARIANTS, build_tiny_study, cell_id
from scipy import stats

from hf_xalign.analysis.report.inputs import RunFolderError
from hf_xalign.cli import main
from hf_xalign.experiment.study.inputs import read_study
from hf_xalign.experiment.study.report import build_study_report
from hf_xalign.experiment.study.sections import results_section
from hf_xalign.experiment.study.stats import NEAR_CHANCE_MARGIN, near_chance

TASKS, SEEDS = ("pos", "classification"), (1, 2)
ALIGNED = VARIANTS[1:]


@pytest.fixture(scope="module")
def study(tmp_path_factory, tokenizer) -> str:
    return build_tiny_study(os.fspath(tmp_path_factory.mktemp("study") / "full"), tokenizer)


@pytest.fixture(scope="module")
def report(study) -> str:
    with open(build_study_report([study]), encoding="utf-8") as f:
        return f.read()


def result_of(study: str, task: str, variant: str, seed: int) -> dict:
    with open(os.path.join(study, "cells", cell_id(task, variant, seed), "results.jsonl"), encoding="utf-8") as f:
        return json.loads(f.readline())


def own_measures(study: str, task: str, variant: str, seed: int, before: bool = False) -> dict[tuple, float]:
    """The rows of the cell's analysis.csv of its fine-tuned model, or with `before` of the model it started
    from (the runner's first rows, named `base`, which a base cell's own later rows share)."""
    with open(os.path.join(study, "cells", cell_id(task, variant, seed), "analysis.csv"), encoding="utf-8") as f:
        rows = [row for row in csv.DictReader(f) if row["model"] == ("base" if before else variant)]
    if variant == "base":
        rows = rows[: len(rows) // 2] if before else rows[len(rows) // 2 :]
    return {(row["pair"], int(row["layer"]), row["measure"]): float(row["value"]) for row in rows}


def table(report: str) -> dict[tuple[str, str], str]:
    """(row label, column header) -> entry of the results table."""
    lines = report.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| model |"))
    header = [cell.strip() for cell in lines[start].strip("|").split("|")]
    entries = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        entries.update({(cells[0], column): value for column, value in zip(header[1:], cells[1:])})
    return entries


def test_results_table_is_mean_and_std_over_seeds_of_scores_and_deltas_to_base(study, report):
    entries = table(report)
    for task in TASKS:
        for language in ("en", *TARGETS):
            column = f"{task} {language}" + (" (source)" if language == "en" else "")
            base = [result_of(study, task, "base", seed)["scores"][language]["accuracy"] for seed in SEEDS]
            assert entries[("tiny base", column)] == f"{np.mean(base):.4f} ± {np.std(base, ddof=1):.4f}, n=2"
            for variant in ALIGNED:
                scores = [result_of(study, task, variant, seed)["scores"][language]["accuracy"] for seed in SEEDS]
                deltas = np.array(scores) - np.array(base)
                expected = (
                    f"{np.mean(scores):.4f} ± {np.std(scores, ddof=1):.4f} "
                    f"({np.mean(deltas):+.4f} ± {np.std(deltas, ddof=1):.4f}), n=2"
                )
                assert entries[(f"tiny {variant}", column)] == expected


def hand_collected_pairs(study: str, task: str, measure: str) -> tuple[list[float], list[float]]:
    """(Δ measure, Δ score) per aligned variant and target language, each the mean over seeds."""
    xs, ys = [], []
    for variant in ALIGNED:
        for language in TARGETS:
            key = (f"en-{language}", LAYER, measure)
            x = [own_measures(study, task, variant, s)[key] - own_measures(study, task, "base", s)[key] for s in SEEDS]
            y = [
                result_of(study, task, variant, s)["scores"][language]["accuracy"]
                - result_of(study, task, "base", s)["scores"][language]["accuracy"]
                for s in SEEDS
            ]
            xs.append(float(np.mean(x)))
            ys.append(float(np.mean(y)))
    return xs, ys


def spearman_exact(x: list[float], y: list[float]) -> tuple[float, float]:
    """ρ and its exact two-sided p over all pairings (`scipy.stats.permutation_test`): the report's p for n ≤ 8."""
    test = stats.permutation_test(
        (x,), lambda a: stats.spearmanr(a, y).statistic, permutation_type="pairings", n_resamples=np.inf
    )
    return stats.spearmanr(x, y).statistic, test.pvalue


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("measure", ["pair_cosine", "retrieval_src_to_tgt"])
def test_spearman_of_distance_change_vs_transfer_change_equals_scipy(study, report, task, measure):
    expected_rho, expected_p = spearman_exact(*hand_collected_pairs(study, task, measure))
    row = next(line for line in report.splitlines() if line.startswith(f"| {task} | Δ {measure} |"))
    rho, p, n = (cell.strip() for cell in row.strip("|").split("|")[2:])
    assert (rho, p, n) == (f"{expected_rho:.3f}", f"{expected_p:.3g}", "6")


@pytest.mark.parametrize("task", TASKS)
def test_the_finding_names_the_best_ranking_measure_and_counts_significant_ones(study, report, task):
    measures = ("pair_cosine", "cosine_gap", "pair_l2", "linear_cka", "retrieval_src_to_tgt", "retrieval_tgt_to_src")
    results = {m: spearman_exact(*hand_collected_pairs(study, task, m)) for m in measures}
    best = max(measures, key=lambda m: results[m][0])
    significant = sum(p < 0.05 for _, p in results.values())
    line = next(line for line in report.splitlines() if line.startswith(f"- {task}: The measure"))
    assert f"most like Δ accuracy: {best} (ρ = {results[best][0]:.3f})" in line
    assert line.endswith(f"p < 0.05 for {significant} of 6 measures.")


@pytest.mark.parametrize("before", [True, False], ids=["before-fine-tuning", "after-fine-tuning"])
def test_alignment_change_before_and_after_fine_tuning_equals_hand_computation(study, report, before):
    variant, measure = ALIGNED[0], "pair_cosine"  # sequential: it starts from the aligned encoder
    per_seed = []
    for seed in SEEDS:
        own, base = (own_measures(study, "pos", v, seed, before) for v in (variant, "base"))
        per_seed.append(
            np.mean([own[(f"en-{t}", LAYER, measure)] - base[(f"en-{t}", LAYER, measure)] for t in TARGETS])
        )
    row = next(line for line in report.splitlines() if line.startswith(f"| pos | tiny | {variant} | Δ {measure} |"))
    shown = row.strip("|").split("|")[4 if before else 5].strip()
    assert shown == f"{np.mean(per_seed):+.4f}"
    if before:
        assert np.mean(per_seed) != 0  # the aligned encoder differs from the pretrained one


def test_mean_gradient_cosine_and_median_ratio_per_task_and_objective_are_read_from_the_conflict_logs(study, report):
    for task in TASKS:
        cosines, ratios = [], []  # per cell: the mean cosine and the median ‖align‖ / ‖task‖ over its steps
        for seed in SEEDS:
            path = os.path.join(study, "cells", cell_id(task, ALIGNED[1], seed), ALIGNED[1], "conflict.jsonl")
            with open(path, encoding="utf-8") as f:
                records = [json.loads(line) for line in f]
            cosines.append(np.mean([r["cosine"] for r in records]))
            ratios.append(np.median([r["align_norm"] / r["task_norm"] for r in records]))
        assert f"| {task} | contrastive | joint | {np.mean(cosines):+.4f} | {np.mean(ratios):.3f} |" in report
        assert f"| {task} | contrastive | sequential | not measured" in report


def test_objective_effects_state_the_mean_delta_and_how_many_seeds_agree(study, report):
    for task in TASKS:
        for variant in ALIGNED:
            per_seed = []
            for seed in SEEDS:
                own, base = result_of(study, task, variant, seed), result_of(study, task, "base", seed)
                per_seed.append(
                    np.mean([own["scores"][t]["accuracy"] - base["scores"][t]["accuracy"] for t in TARGETS])
                )
            mean = np.mean(per_seed)
            agreeing = sum(np.sign(value) == np.sign(mean) for value in per_seed)
            verdict = {2: "helped" if mean > 0 else "hurt"}.get(agreeing, "mixed")
            mode = variant.split("__")[-1]
            assert (
                f"- {task}: contrastive ({mode}) {verdict}: mean Δ accuracy {mean:+.4f} ± "
                f"{np.std(per_seed, ddof=1):.4f} over 6 target-language scores; {agreeing} of 2 seeds agree in sign."
            ) in report


def copy_study(study: str, folder: str, cells: list[str]) -> str:
    os.makedirs(os.path.join(folder, "cells"))
    shutil.copy(os.path.join(study, "study.yaml"), folder)
    shutil.copytree(os.path.join(study, "aligned"), os.path.join(folder, "aligned"))
    for cell in cells:
        shutil.copytree(os.path.join(study, "cells", cell), os.path.join(folder, "cells", cell))
    return folder


def all_cells(task: str | None = None) -> list[str]:
    return [cell_id(t, v, s) for t in TASKS for v in VARIANTS for s in SEEDS if task in (None, t)]


def test_two_disjoint_subsets_in_two_folders_give_the_report_of_one_full_folder(study, report, tmp_path):
    first = copy_study(study, os.fspath(tmp_path / "a"), all_cells("pos"))
    second = copy_study(study, os.fspath(tmp_path / "b"), all_cells("classification"))
    for order in ([first, second], [second, first]):
        with open(build_study_report(order), encoding="utf-8") as f:
            assert f.read() == report
    assert os.path.isfile(os.path.join(second, "report", "report.md"))  # the first folder of the second order


def test_missing_and_unfinished_cells_are_listed_and_left_out(study, tmp_path, capsys):
    subset = copy_study(study, os.fspath(tmp_path / "subset"), all_cells("pos"))
    unfinished = cell_id("classification", "base", 1)
    shutil.copytree(os.path.join(study, "cells", unfinished), os.path.join(subset, "cells", unfinished))
    # The experiment finished, the study was killed before it recorded the cell: the experiment's marker only.
    with open(os.path.join(subset, "cells", unfinished, "finished.json"), "w", encoding="utf-8") as f:
        json.dump({"kind": "experiment", "cells": ["base"]}, f)
    assert main(["report", subset]) == 0
    path = capsys.readouterr().out.strip()
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert "6 of 12 cells finished; **6 missing**" in text
    assert f"- `{unfinished}`: unfinished (a folder without its finished marker: failed, killed or running)" in text
    not_run = [cell for cell in all_cells("classification") if cell != unfinished]
    assert [line for line in text.splitlines() if line.endswith(": not run")] == [f"- `{c}`: not run" for c in not_run]
    assert table(text)[("tiny base", "pos en (source)")] != "missing"
    assert all(value == "missing" for (_, column), value in table(text).items() if column.startswith("classification"))


def test_a_cell_finished_twice_with_different_scores_is_refused(study, tmp_path):
    cell = cell_id("pos", "base", 1)
    first = copy_study(study, os.fspath(tmp_path / "a"), [cell])
    second = copy_study(study, os.fspath(tmp_path / "b"), [cell])
    assert len(read_study([first, second]).cells) == 1  # the same scores twice: one cell
    path = os.path.join(second, "cells", cell, "results.jsonl")
    with open(path, encoding="utf-8") as f:
        result = json.loads(f.read())
    result["scores"]["xx"]["accuracy"] += 0.1
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(result) + "\n")
    with pytest.raises(RunFolderError, match=f"cell {cell} is finished in .* with different scores"):
        read_study([first, second])


def test_bad_folders_are_refused_naming_the_file(study, tmp_path, capsys):
    cell = cell_id("pos", "base", 1)
    broken = copy_study(study, os.fspath(tmp_path / "broken"), [cell])
    marker = os.path.join(broken, "cells", cell, "finished.json")
    with open(marker, encoding="utf-8") as f:
        values = json.load(f)
    del values["base_cell_id"], values["seed"]
    with open(marker, "w", encoding="utf-8") as f:
        json.dump(values, f)
    with pytest.raises(RunFolderError, match=f"{marker}: missing seed, base_cell_id"):
        read_study([broken])
    assert main(["report", study, os.path.join(study, "cells", cell)]) == 2  # a user error: one line, exit 2
    assert "no study.yaml in" in capsys.readouterr().err
    with pytest.raises(RunFolderError, match="not a study folder"):
        read_study([os.path.join(study, "cells")])


def test_a_base_model_near_majority_class_is_flagged(study, tmp_path):
    subset = copy_study(study, os.fspath(tmp_path / "chance"), all_cells("pos"))
    for seed in SEEDS:
        path = os.path.join(subset, "cells", cell_id("pos", "base", seed), "results.jsonl")
        with open(path, encoding="utf-8") as f:
            result = json.loads(f.read())
        majority = result["scores"]["en"]["accuracy"] - NEAR_CHANCE_MARGIN / 2  # learned less than the margin
        result["details"]["majority_class"] = {"label": "NOUN", "accuracy": {"en": majority}}
        with open(path, "w", encoding="utf-8") as f:
            f.write(json.dumps(result) + "\n")
    inputs = read_study([subset])
    (flag,) = near_chance(inputs)
    assert (flag.encoder, flag.task) == ("tiny", "pos")
    assert flag.source_score - flag.reference == pytest.approx(NEAR_CHANCE_MARGIN / 2)
    entries = table("\n".join(results_section(inputs, [flag])))
    assert all(value.endswith("†") for (_, column), value in entries.items() if column.startswith("pos"))


def test_a_study_without_finished_cells_reports_every_cell_missing(study, tmp_path):
    empty = copy_study(study, os.fspath(tmp_path / "empty"), [])
    with open(build_study_report([empty]), encoding="utf-8") as f:
        text = f.read()
    assert set(table(text).values()) == {"missing"}
    assert {column for _, column in table(text)} == set(TASKS)
    assert len([line for line in text.splitlines() if line.endswith(": not run")]) == 12
