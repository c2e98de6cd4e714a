"""`analysis: true` in a recipe: pairs held out of alignment, measured on the base and trained models, and a report."""

from __future__ import annotations

import csv
import json

from _tiny_experiment import run_tiny_experiment, save_tiny_model, write_parallel_tsv

from hf_xalign.analysis.measures import MEASURES
from hf_xalign.data import load_parallel


def test_held_out_pairs_are_measured_on_every_model_and_reported(tmp_path, tokenizer, capsys):
    model_dir = save_tiny_model(str(tmp_path / "model"), tokenizer)
    parallel = write_parallel_tsv(str(tmp_path / "en-xx.tsv"))
    capsys.readouterr()  # the test's own model saving shows a bar; the experiment's must not
    results = run_tiny_experiment(
        tmp_path / "run", model_dir, parallel, script_options={"analysis": True, "analysis_pairs": 16}
    )
    details = results[0].details
    assert details["analysis_pairs_held_out"] == {"en-xx": 16}
    # alignment trained on what was left: every pair minus those holding a test sentence minus the held-out ones
    alignment = json.loads((tmp_path / "run" / "aligned" / "alignment_config.json").read_text())
    written = len(load_parallel(parallel))
    assert alignment["alignment_pairs"] == written - details["parallel_pairs_dropped_as_test_text"] - 16
    with open(tmp_path / "run" / "analysis.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert {row["model"] for row in rows} == {"base", "aligned", "baseline"}
    assert {row["pair"] for row in rows} == {"en-xx"} and {row["n"] for row in rows} == {"16"}
    assert {int(row["layer"]) for row in rows} == {0, 1, 2}  # every layer of the 2-block model
    assert {row["measure"] for row in rows} == set(MEASURES)
    report = tmp_path / "run" / "report" / "report.md"
    printed = capsys.readouterr()
    assert report.is_file() and f"report: {report}" in printed.out
    assert "analysis and report" in printed.out.splitlines()[-1]  # the time split comes last
    # disable_tqdm (the tiny experiment's setting) quiets every bar, not only the Trainer's
    for bar in ("Loading weights", "Writing model shards", "%|"):
        assert bar not in printed.err, bar
