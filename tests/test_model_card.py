"""Model cards and aligned checkpoints, offline: the card is written from the run's files, and loads refuse pickles."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from _gradient_oracle import expected_gradient_lines, read_records
from _tiny_experiment import run_tiny_experiment, save_tiny_model, write_parallel_tsv
from huggingface_hub import ModelCard
from transformers import AutoModel

from hf_xalign import load_aligned
from hf_xalign.analysis.bootstrap import delta_interval
from hf_xalign.model_card import PAPER_CITATION, build_model_card, template_path


@pytest.fixture(scope="module")
def run_inputs(tmp_path_factory, tokenizer):
    folder = tmp_path_factory.mktemp("inputs")
    return save_tiny_model(str(folder / "model"), tokenizer), write_parallel_tsv(str(folder / "en-xx.tsv"))


@pytest.fixture(scope="module")
def contrastive_run(tmp_path_factory, run_inputs):
    output_dir = tmp_path_factory.mktemp("contrastive")
    run_tiny_experiment(output_dir, *run_inputs, alignment_loss=["contrastive"], alignment_lambda=0.5)
    return output_dir


def section(text: str, title: str) -> list[str]:
    """The lines of the Markdown section `## title` (up to the next `## `)."""
    lines = text.splitlines()
    start = lines.index(f"## {title}")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return [line for line in lines[start + 1 : end] if line.strip()]


def test_card_metadata_and_model_index_come_from_the_run(contrastive_run):
    card = ModelCard.load(contrastive_run / "aligned" / "README.md")
    results = json.loads((contrastive_run / "aligned" / "results.json").read_text())
    assert card.data.language == ["en", "xx"]  # scored on en and xx, aligned on en-xx pairs
    assert card.data.pipeline_tag == "token-classification" and card.data.library_name == "transformers"
    assert {"cross-lingual-alignment", "hf-xalign"} <= set(card.data.tags)
    # model-index: every fractional score of results.json, this model's and (labelled) the baseline's
    indexed = {(r.dataset_config, r.metric_name): r.metric_value for r in card.data.eval_results}
    expected = {}
    for cell, label in ((results["result"], ""), (results["reference"], " (baseline without alignment)")):
        for language, scores in cell["scores"].items():
            expected[(language, "accuracy" + label)] = scores["accuracy"]
    assert indexed == expected
    assert results["reference"]["name"] == "baseline" and results["result"]["name"] == "aligned"


def test_card_prose_states_the_setup_the_scores_and_the_gradients(contrastive_run):
    text = (contrastive_run / "aligned" / "README.md").read_text()
    results = json.loads((contrastive_run / "aligned" / "results.json").read_text())
    aligned, baseline = results["result"]["scores"], results["reference"]["scores"]
    alignment = section(text, "How it was aligned")
    assert any(line.startswith("- Losses: `contrastive` (weight 1") for line in alignment)
    assert "- λ = 0.5 (constant schedule); mode joint: task loss + λ · alignment loss at every step." in alignment
    pairs = results["result"]["details"]["parallel_pairs"]  # 64 written, those holding a test sentence dropped
    assert 0 < pairs <= 64 and f"- Parallel data: {pairs} pairs (en-xx {pairs}), 8 pairs per step." in alignment
    table = section(text, "Zero-shot transfer")
    delta = aligned["xx"]["accuracy"] - baseline["xx"]["accuracy"]
    own, base = (
        json.loads((contrastive_run / cell / "outcomes.json").read_text())["xx"] for cell in ("aligned", "baseline")
    )
    low, high = delta_interval(own["correct"], own["total"], base["correct"], base["total"])  # recomputed here
    assert results["result"]["delta_intervals"]["xx"] == [low, high]
    a_low, a_high = results["result"]["intervals"]["xx"]
    b_low, b_high = results["reference"]["intervals"]["xx"]
    row = (
        f"| xx | {aligned['xx']['accuracy']:.4f} [{a_low:.3f}, {a_high:.3f}] | {baseline['xx']['accuracy']:.4f} "
        f"[{b_low:.3f}, {b_high:.3f}] | {delta:+.4f} [{low:+.3f}, {high:+.3f}] |"
    )
    assert row in table
    gradients = section(text, "Task vs alignment gradients")
    records = read_records(contrastive_run / "aligned" / "conflict.jsonl")
    assert gradients == [f"- {line}" for line in expected_gradient_lines(records)]  # no cell name: the card is one
    assert 'load_aligned("aligned", task="token-classification")' in text
    assert PAPER_CITATION in text and "oord2018representation" in text  # the paper and the loss's reference
    assert "None" not in text and "{{" not in text


def test_sections_without_data_are_left_out(tmp_path, run_inputs):
    run_tiny_experiment(tmp_path, *run_inputs, conflict_every=0, max_steps=2)
    baseline_card = (tmp_path / "baseline" / "README.md").read_text()
    aligned_card = (tmp_path / "aligned" / "README.md").read_text()
    assert "## Task vs alignment gradients" not in aligned_card  # nothing measured
    assert "## Zero-shot transfer" in aligned_card
    assert "Not aligned: task fine-tuning alone" in baseline_card and "Δ" not in baseline_card  # no reference


def test_the_card_changes_exactly_where_the_run_changes(tmp_path, contrastive_run, run_inputs):
    run_tiny_experiment(tmp_path, *run_inputs, alignment_loss=["mse"], alignment_lambda=0.2)
    first = (contrastive_run / "aligned" / "README.md").read_text()
    second = (tmp_path / "aligned" / "README.md").read_text()
    changed = [
        (a, b) for a, b in zip(section(first, "How it was aligned"), section(second, "How it was aligned")) if a != b
    ]
    assert [a.split(":")[0] for a, _ in changed] == ["- Losses", "- λ = 0.5 (constant schedule); mode joint"]
    assert "`mse`" in changed[0][1] and "λ = 0.2" in changed[1][1]
    cards = [ModelCard.load(tmp / "aligned" / "README.md") for tmp in (contrastive_run, tmp_path)]
    assert cards[0].data.language == cards[1].data.language and cards[0].data.tags == cards[1].data.tags
    assert "oord2018representation" in first and "oord2018representation" not in second
    assert "reimers-2020-multilingual-sentence-bert" in second


def test_card_usage_snippet_names_the_repo(contrastive_run):
    card = build_model_card(str(contrastive_run / "aligned"), "someone/tiny-aligned")
    assert 'load_aligned("someone/tiny-aligned", task="token-classification")' in str(card)
    assert card.data.model_name == "tiny-aligned"


def test_load_aligned_gives_the_saved_model_and_its_alignment(contrastive_run, tokenizer):
    model, loaded_tokenizer, alignment = load_aligned(str(contrastive_run / "aligned"))
    assert type(model).__name__ == "XLMRobertaForTokenClassification"
    assert alignment["losses"][0]["name"] == "contrastive" and alignment["lambda"] == 0.5
    assert list(alignment["language_pairs"]) == ["en-xx"] and alignment["layer"] == 1
    assert loaded_tokenizer("the cat runs")["input_ids"] == tokenizer("the cat runs")["input_ids"]


def test_an_aligned_encoder_becomes_the_base_of_a_new_task_model(tmp_path, contrastive_run):
    encoder = AutoModel.from_pretrained(contrastive_run / "aligned")
    encoder.save_pretrained(tmp_path / "encoder")
    (tmp_path / "encoder" / "tokenizer.json").write_bytes((contrastive_run / "aligned" / "tokenizer.json").read_bytes())
    (tmp_path / "encoder" / "tokenizer_config.json").write_bytes(
        (contrastive_run / "aligned" / "tokenizer_config.json").read_bytes()
    )
    tagger, _, _ = load_aligned(str(tmp_path / "encoder"), task="token-classification", num_labels=17)
    assert tagger.num_labels == 17
    state = encoder.state_dict()
    assert all(torch.equal(value, state[name]) for name, value in tagger.roberta.state_dict().items())


def test_a_folder_with_only_pickled_weights_is_refused(tmp_path, contrastive_run):
    folder = tmp_path / "pickled"
    model = AutoModel.from_pretrained(contrastive_run / "aligned")
    model.config.save_pretrained(folder)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")  # the old pickle format (transformers 5 writes none)
    with pytest.raises(ValueError, match=r"only as pickle \(pytorch_model.bin\): hf-xalign loads safetensors only"):
        load_aligned(str(folder))


def test_an_unknown_task_is_named(contrastive_run):
    with pytest.raises(ValueError, match="Unknown task 'ner'; expected one of: token-classification"):
        load_aligned(str(contrastive_run / "aligned"), task="ner")


def test_model_index_records_each_hub_source_with_its_revision():
    from hf_xalign.model_card import RunFiles, eval_results
    from hf_xalign.results import CellResult

    ud = "universal-dependencies/universal_dependencies"
    sources = {"en": f"hub:{ud}@2.16:en_ewt:test", "fr": "hub:facebook/xnli:fr:test[:100]", "xx": "data/xx.conllu"}
    scores = {language: {"accuracy": 0.5} for language in sources}
    cell = CellResult("aligned", "pos", "accuracy", "en", scores=scores, details={"eval_sources": sources})
    run = RunFiles(result=cell)

    recorded = {
        r.dataset_name: (r.dataset_type, r.dataset_config, r.dataset_split, r.dataset_revision)
        for r in eval_results(run)
    }
    assert recorded == {
        "en (source language)": (ud, "en_ewt", "test", "2.16"),
        "fr (zero-shot)": ("facebook/xnli", "fr", "test[:100]", "main"),  # no revision named: main was read
        "xx (zero-shot)": ("data/xx.conllu", "xx", None, None),
    }
    assert run.hub_datasets == ["facebook/xnli", ud]  # the card's `datasets:` holds ids, without revisions


ROOT = Path(__file__).resolve().parents[1]
PACKAGED_TEMPLATE = "hf_xalign/templates/aligned_model.md"


def test_the_package_carries_the_template_that_model_cards_shows():
    assert Path(template_path()) == ROOT / PACKAGED_TEMPLATE
    assert (ROOT / PACKAGED_TEMPLATE).read_bytes() == (ROOT / "model_cards" / "aligned_model.md").read_bytes()


def test_a_wheel_holds_the_template_inside_the_package(tmp_path):
    """A wheel built from the project's files, read as a zip: the template is a file of the package, so an
    install finds it beside the code, wherever the environment puts its data files."""
    source = tmp_path / "source"
    shutil.copytree(ROOT / "hf_xalign", source / "hf_xalign", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(source),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("*.whl")
    assert PACKAGED_TEMPLATE in zipfile.ZipFile(wheel).namelist()
