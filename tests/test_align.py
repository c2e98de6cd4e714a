"""Alignment-only training (`hf_xalign.experiment.align`, `recipes/align.py`) on a tiny bare XLM-R encoder."""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import subprocess
import sys

import pytest
import torch
from _tiny_experiment import training_arguments, write_parallel_tsv
from conftest import synthetic_sentences, translate
from huggingface_hub import ModelCard
from safetensors.torch import load_file
from transformers import (
    AutoModel,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    BertConfig,
    BertForMaskedLM,
    XLMRobertaForMaskedLM,
    XLMRobertaModel,
)

from hf_xalign import AlignmentTrainer
from hf_xalign.data import load_parallel
from hf_xalign.experiment import (
    FINISHED_NAME,
    OBJECTIVES,
    AlignArguments,
    align_encoder,
    objective_arguments,
    read_marker,
    resolve_objective,
)
from hf_xalign.experiment import align as align_module
from hf_xalign.experiment.align import select_language_pairs
from hf_xalign.losses import pretrained_head_state
from hf_xalign.pooling import ParallelEncoding
from hf_xalign.tiny import tiny_xlmr_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# One English sentence and one synthetic-language sentence of the parallel file (write_parallel_tsv's pairs).
HELD_OUT = [" ".join(synthetic_sentences(64, seed=1)[0]), " ".join(translate(synthetic_sentences(64, seed=1)[5]))]


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory, tokenizer) -> str:
    """A 2-layer bare XLM-R encoder (no dropout) and its tokenizer, saved like a Hub model."""
    folder = str(tmp_path_factory.mktemp("encoder"))
    torch.manual_seed(0)
    config = tiny_xlmr_config(tokenizer, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    XLMRobertaModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def parallel_tsv(tmp_path_factory) -> str:
    return write_parallel_tsv(str(tmp_path_factory.mktemp("data") / "en-xx.tsv"))


def align_training_args(output_dir, **overrides):
    options = dict(max_steps=2, logging_steps=1, alignment_prefetch=False)
    return training_arguments(str(output_dir), **{**options, **overrides})


@pytest.fixture(scope="module")
def aligned(tmp_path_factory, encoder_dir, parallel_tsv) -> str:
    """The paper's mix for 2 steps, with two held-out sentences."""
    script_args = AlignArguments(model_name_or_path=encoder_dir, parallel_data=[parallel_tsv], objective="paper_mix")
    return align_encoder(script_args, align_training_args(tmp_path_factory.mktemp("aligned")), held_out_texts=HELD_OUT)


@pytest.mark.parametrize("num_layers, middle", [(12, 6), (2, 1), (7, 3), (24, 12)])
def test_the_middle_layer_is_half_the_blocks(num_layers, middle):
    for name, preset in OBJECTIVES.items():
        options = resolve_objective(name, num_layers)
        assert options["alignment_loss"] == preset["alignment_loss"]
        assert len(options["alignment_loss_weights"]) == len(options["alignment_loss"])
        if "token" in preset["alignment_loss"]:  # scale-free: L2 can be lowered by shrinking every vector
            assert options["alignment_token_distance"] == "cosine"
        if preset.get("alignment_layer") == "middle":
            assert options["alignment_layer"] == middle, name
        else:  # MLM-only presets read no layer of their own
            assert "alignment_layer" not in options
    assert (
        resolve_objective({"alignment_loss": ["token"], "alignment_layer": "middle"}, num_layers)["alignment_layer"]
        == middle
    )


def test_an_objective_replaces_the_loss_options_and_is_checked(tmp_path):
    args = align_training_args(tmp_path, alignment_loss=["contrastive"], alignment_loss_weights=[0.5])
    mixed = objective_arguments(args, "paper_mix", num_layers=12)
    assert (mixed.alignment_loss, mixed.alignment_loss_weights, mixed.alignment_layer) == (
        ["mlm", "tlm", "contrastive", "token"],
        [1.0, 1.0, 1.0, 1.0],
        6,
    )
    assert (args.alignment_loss, args.alignment_loss_weights) == (["contrastive"], [0.5])  # unchanged
    with pytest.raises(ValueError, match="Unknown alignment loss 'contrastiv'"):
        objective_arguments(args, {"alignment_loss": ["contrastiv"], "alignment_loss_weights": [1.0]}, 12)
    with pytest.raises(ValueError, match=r"unknown option 'alignment_layers' \(did you mean: alignment_layer"):
        objective_arguments(args, {"alignment_layers": 3}, 12)


@pytest.mark.parametrize("name", sorted(set(OBJECTIVES) - {"paper_mix"}))  # paper_mix: the `aligned` fixture
def test_each_preset_trains_two_steps_with_a_finite_loss(name, tmp_path, encoder_dir, parallel_tsv):
    script_args = AlignArguments(model_name_or_path=encoder_dir, parallel_data=[parallel_tsv], objective=name)
    marker = read_marker(align_encoder(script_args, align_training_args(tmp_path)))
    assert marker["losses"] == OBJECTIVES[name]["alignment_loss"]
    assert marker["steps"] == 2
    assert marker["logged_losses"].keys() == {"align_loss", *(f"align/{name}" for name in marker["losses"])}
    for logged in marker["logged_losses"].values():
        assert math.isfinite(logged["first"]) and math.isfinite(logged["last"])


def test_the_paper_mix_trains_with_a_finite_loss(aligned):
    marker = read_marker(aligned)
    assert (marker["objective"], marker["losses"], marker["layer"], marker["steps"]) == (
        "paper_mix",
        ["mlm", "tlm", "contrastive", "token"],
        1,
        2,
    )
    assert marker["logged_losses"].keys() == {"align_loss", *(f"align/{name}" for name in marker["losses"])}
    for logged in marker["logged_losses"].values():
        assert math.isfinite(logged["first"]) and math.isfinite(logged["last"])


def test_the_mix_is_the_weighted_sum_of_the_single_losses(tmp_path, encoder_dir, parallel_tsv, tokenizer):
    weights = [0.5, 2.0, 1.5, 0.25]
    objective = {"alignment_loss": ["mlm", "tlm", "contrastive", "token"], "alignment_loss_weights": weights}
    args = objective_arguments(align_training_args(tmp_path, max_steps=1, conflict_every=0), objective, 2)
    model = AutoModel.from_pretrained(encoder_dir)
    trainer = AlignmentTrainer(
        model=model, args=args, alignment_dataset=load_parallel(parallel_tsv), processing_class=tokenizer
    )
    # Oracle: each loss alone, each with a full forward of its own, on the step's batch, before the update.
    batch = trainer.alignment_stream.batch(0, 0)
    reference_model, reference_losses = copy.deepcopy(model), copy.deepcopy(trainer.alignment_losses)
    with torch.no_grad():
        singles = [loss(ParallelEncoding(reference_model, batch)).item() for loss in reference_losses]
    trainer.train()
    logged = trainer.state.log_history[0]
    assert logged["align_loss"] == pytest.approx(sum(w * value for w, value in zip(weights, singles)), rel=1e-5)
    for name, value in zip(objective["alignment_loss"], singles):
        assert logged[f"align/{name}"] == pytest.approx(value, rel=1e-5)


def test_language_pairs_are_selected_as_named(tmp_path):
    path = tmp_path / "mixed.tsv"
    rows = [
        ("en", "fr", "one", "un"),
        ("en", "tr", "two", "iki"),
        ("en", "fr", "three", "trois"),
        ("de", "en", "vier", "four"),
    ]
    path.write_text("src_lang\ttgt_lang\tsrc\ttgt\n" + "".join("\t".join(row) + "\n" for row in rows), encoding="utf-8")
    pairs = load_parallel(str(path))
    assert select_language_pairs(pairs, ["en-fr"])["src"] == ["one", "three"]
    assert select_language_pairs(pairs, ["en-tr", "de-en"])["src"] == ["two", "vier"]
    assert len(select_language_pairs(pairs, [])) == 4
    with pytest.raises(ValueError) as error:
        select_language_pairs(pairs, ["en-fr", "en-xx", "fr-en"])
    message = str(error.value)
    assert "no parallel text for en-xx, fr-en" in message
    assert "de-en (1), en-fr (2), en-tr (1)" in message


def test_pairs_with_held_out_text_are_dropped(tmp_path, aligned, parallel_tsv):
    pairs = load_parallel(parallel_tsv)
    # By hand: the pairs whose English or synthetic side is one of the held-out sentences.
    expected = sum(src in HELD_OUT or tgt in HELD_OUT for src, tgt in zip(pairs["src"], pairs["tgt"]))
    assert expected >= 2
    marker = read_marker(aligned)
    assert marker["pairs_dropped_as_held_out"] == expected
    assert marker["language_pairs"] == {"en-xx": len(pairs) - expected}


def test_a_finished_folder_is_returned_without_training(aligned, monkeypatch, encoder_dir, parallel_tsv):
    stamps = {name: os.stat(os.path.join(aligned, name)).st_mtime_ns for name in os.listdir(aligned)}

    def no_training(*args, **kwargs):
        raise AssertionError("a finished folder was trained again")

    monkeypatch.setattr(align_module, "AlignmentTrainer", no_training)
    script_args = AlignArguments(model_name_or_path=encoder_dir, parallel_data=[parallel_tsv], objective="token")
    assert align_encoder(script_args, align_training_args(aligned)) == aligned
    assert {name: os.stat(os.path.join(aligned, name)).st_mtime_ns for name in os.listdir(aligned)} == stamps


def test_a_folder_without_the_marker_is_trained(tmp_path, encoder_dir, parallel_tsv):
    (tmp_path / "config.yaml").write_text("half: written\n", encoding="utf-8")  # a run killed before its end
    script_args = AlignArguments(model_name_or_path=encoder_dir, parallel_data=[parallel_tsv], objective="contrastive")
    align_encoder(script_args, align_training_args(tmp_path, max_steps=1))
    assert read_marker(str(tmp_path))["steps"] == 1
    assert FINISHED_NAME + ".tmp" not in os.listdir(tmp_path)


def test_arguments_shared_with_task_cells_align_as_the_sequential_stage(tmp_path, encoder_dir, parallel_tsv):
    # A study's task cells share these arguments: alignment alone has nothing to evaluate, and trains as the
    # sequential mode's alignment stage does (evaluation, best model, measurement and push off).
    script_args = AlignArguments(model_name_or_path=encoder_dir, parallel_data=[parallel_tsv], objective="contrastive")
    plain = align_encoder(script_args, align_training_args(tmp_path / "plain"))
    task_options = dict(
        eval_strategy="steps",
        eval_steps=1,
        save_strategy="steps",
        save_steps=1,
        load_best_model_at_end=True,
        conflict_every=1,
        gradient_combination="pcgrad",
    )
    shared = align_encoder(script_args, align_training_args(tmp_path / "shared", **task_options))
    assert read_marker(shared)["steps"] == 2
    expected = load_file(os.path.join(plain, "model.safetensors"))
    for name, tensor in load_file(os.path.join(shared, "model.safetensors")).items():
        torch.testing.assert_close(tensor, expected[name], rtol=0, atol=0, msg=name)


@pytest.mark.parametrize("auto_class", [AutoModelForTokenClassification, AutoModelForSequenceClassification])
def test_the_checkpoint_loads_as_a_task_model_with_the_aligned_encoder(auto_class, aligned, encoder_dir):
    saved = load_file(os.path.join(aligned, "model.safetensors"))  # read apart from transformers
    base = load_file(os.path.join(encoder_dir, "model.safetensors"))
    task_model = auto_class.from_pretrained(aligned, num_labels=3)
    encoder = task_model.base_model.state_dict()
    compared = [name for name in encoder if name in saved]
    assert len(compared) >= len(encoder) - 1  # all but a buffer the file may leave out
    for name in compared:
        torch.testing.assert_close(encoder[name], saved[name], rtol=0, atol=0, msg=name)
    assert any(not torch.equal(saved[name], base[name]) for name in compared)  # training moved the encoder
    assert not any("classifier" in name for name in saved)  # the task head is fresh
    assert task_model.config.num_labels == 3


def test_the_card_says_alignment_only_with_objective_pairs_and_steps(aligned):
    card = ModelCard.load(os.path.join(aligned, "README.md"))
    assert "alignment-only checkpoint" in card.text
    assert "`paper_mix`" in card.text and "en-xx" in card.text and "for 2 steps" in card.text
    assert "mode alignment only" in card.text
    assert card.data.language == ["en", "xx"]
    with open(os.path.join(aligned, "alignment_config.json"), encoding="utf-8") as f:
        config = json.load(f)
    assert (config["objective"], config["alignment_only"], config["steps"]) == ("paper_mix", True, 2)


def test_bad_objective_or_pair_fails_clearly(encoder_dir, parallel_tsv, tmp_path):
    with pytest.raises(ValueError) as error:
        AlignArguments(model_name_or_path=encoder_dir, parallel_data=[parallel_tsv], objective="paper-mix")
    assert "Did you mean 'paper_mix'?" in str(error.value)
    assert "mlm, mlm_tlm, contrastive, token, paper_mix" in str(error.value)
    with pytest.raises(ValueError, match="'en_fr' not of the form SRC-TGT"):
        AlignArguments(model_name_or_path=encoder_dir, parallel_data=[parallel_tsv], language_pairs=["en_fr"])
    script_args = AlignArguments(model_name_or_path=encoder_dir, parallel_data=[parallel_tsv], language_pairs=["en-fr"])
    with pytest.raises(ValueError, match=r"no parallel text for en-fr; the parallel data has en-xx \(64\)"):
        align_encoder(script_args, align_training_args(tmp_path))
    assert read_marker(str(tmp_path)) is None


def test_the_recipe_aligns_prints_its_summary_and_pushes(tmp_path, encoder_dir, parallel_tsv, hub_server):
    config = tmp_path / "align.yaml"
    config.write_text(
        f"model_name_or_path: {encoder_dir}\nparallel_data: [{parallel_tsv}]\nlanguage_pairs: [en-xx]\n"
        "objective: mlm\neval_pairs: 4\noutput_dir: out\nmax_steps: 2\nlogging_steps: 1\nalignment_batch_size: 8\n"
        "use_cpu: true\nreport_to: none\ndisable_tqdm: true\n",
        encoding="utf-8",
    )
    repo = f"{hub_server.user}/tiny-aligned"
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "recipes", "align.py"), str(config), "--push_to_hub", "true"]
        + ["--hub_model_id", repo],
        env=hub_server.client_env(tmp_path / "home"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    marker = read_marker(str(tmp_path / "out"))
    assert f"with mlm on en-xx {marker['language_pairs']['en-xx']} pairs" in result.stdout
    assert "retrieval P@1 en-xx at layer 2: " in result.stdout  # mlm reads no layer: the last one is measured
    assert marker["language_pairs"]["en-xx"] == 64 - 4  # 4 pairs kept aside to measure retrieval
    assert marker["pushed"] and repo in marker["pushed"]
    files = hub_server.root / "models" / hub_server.user / "tiny-aligned" / "files"
    pushed = {str(path.relative_to(files)) for path in files.rglob("*") if path.is_file()}
    assert {"model.safetensors", "config.json", "alignment_config.json", "README.md", "tokenizer.json"} <= pushed
    assert "alignment_losses.safetensors" not in pushed and "training_args.bin" not in pushed  # heads and pickles stay
    assert "alignment-only checkpoint" in ModelCard.load(files / "README.md").text


@pytest.mark.parametrize("layout", ["roberta", "bert"])
def test_the_pretrained_lm_head_is_read_from_the_checkpoint(layout, tmp_path, tokenizer, encoder_dir):
    torch.manual_seed(1)
    config = tiny_xlmr_config(tokenizer)
    if layout == "roberta":
        model = XLMRobertaForMaskedLM(config)
        head = model.lm_head
        expected = {"dense": head.dense, "layer_norm": head.layer_norm, "bias": head.bias}
    else:
        model = BertForMaskedLM(BertConfig(**{**config.to_dict(), "model_type": "bert"}))
        head = model.cls.predictions
        expected = {"dense": head.transform.dense, "layer_norm": head.transform.LayerNorm, "bias": head.bias}
    model.save_pretrained(tmp_path)
    state = pretrained_head_state(tmp_path)
    for part in ("dense", "layer_norm"):
        for name in ("weight", "bias"):
            torch.testing.assert_close(state[f"{part}.{name}"], getattr(expected[part], name), rtol=0, atol=0)
    torch.testing.assert_close(state["bias"], expected["bias"], rtol=0, atol=0)
    assert pretrained_head_state(encoder_dir) is None  # a bare encoder has no LM head


def test_mlm_and_tlm_start_from_the_checkpoints_lm_head(tmp_path, tokenizer, parallel_tsv):
    torch.manual_seed(2)
    model = XLMRobertaForMaskedLM(tiny_xlmr_config(tokenizer, hidden_dropout_prob=0.0))
    model.save_pretrained(tmp_path / "mlm")
    tokenizer.save_pretrained(tmp_path / "mlm")
    script_args = AlignArguments(
        model_name_or_path=str(tmp_path / "mlm"), parallel_data=[parallel_tsv], objective="mlm_tlm"
    )
    # A learning rate of 0: the heads the losses trained are still the ones they started from.
    folder = align_encoder(script_args, align_training_args(tmp_path / "out", max_steps=1, learning_rate=0.0))
    assert read_marker(folder)["lm_head"] == "pretrained"
    heads = load_file(os.path.join(folder, "alignment_losses.safetensors"))
    for loss_index in (0, 1):  # mlm, tlm: one head each
        torch.testing.assert_close(heads[f"{loss_index}.head.dense.weight"], model.lm_head.dense.weight, rtol=0, atol=0)
        torch.testing.assert_close(heads[f"{loss_index}.head.bias"], model.lm_head.bias, rtol=0, atol=0)


def test_an_interrupted_alignment_goes_on_from_its_last_checkpoint(tmp_path, encoder_dir, parallel_tsv, monkeypatch):
    script_args = AlignArguments(model_name_or_path=encoder_dir, parallel_data=[parallel_tsv], objective="contrastive")
    options = dict(save_strategy="steps", save_steps=1)
    uninterrupted = align_encoder(script_args, align_training_args(tmp_path / "whole", **options))
    # A run killed after its first step: its first checkpoint, no model, no marker.
    shutil.copytree(os.path.join(uninterrupted, "checkpoint-1"), tmp_path / "killed" / "checkpoint-1")
    steps_run = []
    training_step = AlignmentTrainer.training_step

    def counted_step(self, *args, **kwargs):
        steps_run.append(self.state.global_step)
        return training_step(self, *args, **kwargs)

    monkeypatch.setattr(AlignmentTrainer, "training_step", counted_step)
    resumed = align_encoder(script_args, align_training_args(tmp_path / "killed", **options))
    assert steps_run == [1]  # only the step the killed run had not done
    assert read_marker(resumed)["steps"] == 2
    expected = load_file(os.path.join(uninterrupted, "model.safetensors"))
    for name, tensor in load_file(os.path.join(resumed, "model.safetensors")).items():
        torch.testing.assert_close(tensor, expected[name], msg=name)
