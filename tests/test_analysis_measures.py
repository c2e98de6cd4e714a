# Copyright 2025 The hf-xalign Authors.
# Licensed under the Apache License, Version 2.0.
"""Specification of `hf_xalign.analysis.measures` and `hf_xalign.analysis.analyze`.

Each expected value comes from an independent oracle: a property of the geometry (identical sets,
rotations, shuffles, a collapsed space), arithmetic by hand on three vectors, a second formula
(CKA through Gram matrices), or a hand loop over `model(..., output_hidden_states=True)` with its
own pooling, one sentence at a time.
"""

import argparse
import json
import math

import datasets
import numpy as np
import pytest
import torch
from conftest import translate
from transformers import XLMRobertaModel

from hf_xalign.analysis import (
    COLUMNS,
    MEASURES,
    analyze,
    analyze_model,
    cosine_gap,
    linear_cka,
    measure_all,
    pair_cosine,
    pair_l2,
    read_table,
    retrieval_accuracy,
    write_table,
)
from hf_xalign.analysis.analyze import length_sorted_batches, pair_lengths
from hf_xalign.cli.analyze import add_analyze_command
from hf_xalign.data import DataFileError, ParallelCollator
from hf_xalign.tiny import tiny_xlmr_config


def random_set(n: int, dim: int, seed: int) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def noisy_translations(source: torch.Tensor, seed: int, scale: float = 0.1) -> torch.Tensor:
    return source + scale * random_set(*source.shape, seed=seed)


def random_rotation(dim: int, seed: int) -> torch.Tensor:
    q, r = torch.linalg.qr(random_set(dim, dim, seed))
    return q * torch.sign(torch.diagonal(r))  # (dim, dim), orthogonal


# --------------------------------------------------------------------------- measures


def test_identical_sets_are_perfectly_aligned():
    source = random_set(50, 16, seed=0)

    assert pair_cosine(source, source.clone()) == pytest.approx(1.0, abs=1e-12)
    assert pair_l2(source, source.clone()) == 0.0
    assert retrieval_accuracy(source, source.clone()) == (1.0, 1.0)


def test_rotating_the_target_keeps_linear_cka_at_one_while_pair_cosine_drops():
    source = random_set(50, 16, seed=0)
    rotated = source @ random_rotation(16, seed=1)  # same geometry, other directions

    assert linear_cka(source, rotated) == pytest.approx(1.0, abs=1e-6)
    assert pair_cosine(source, rotated) < 0.5


def test_rotating_both_sides_keeps_retrieval_and_pair_cosine():
    source = random_set(60, 16, seed=0)
    target = noisy_translations(source, seed=1, scale=1.0)  # noisy enough that P@1 < 1
    rotation = random_rotation(16, seed=2)

    before = retrieval_accuracy(source, target)
    assert before[0] < 1.0 and before[1] < 1.0
    assert retrieval_accuracy(source @ rotation, target @ rotation) == before
    assert pair_cosine(source @ rotation, target @ rotation) == pytest.approx(pair_cosine(source, target), abs=1e-12)


def test_shuffled_pairs_retrieve_at_chance_level():
    n = 200
    source = random_set(n, 32, seed=0)
    target = noisy_translations(source, seed=1)
    shuffled = target[torch.randperm(n, generator=torch.Generator().manual_seed(2))]

    assert retrieval_accuracy(source, target) == (1.0, 1.0)
    source_to_target, target_to_source = retrieval_accuracy(source, shuffled)
    assert source_to_target < 0.05 and target_to_source < 0.05  # chance is 1/n = 0.005


def test_collapsed_space_has_cosine_one_but_gap_zero():
    vector = random_set(1, 8, seed=0)
    source, target = vector.repeat(10, 1), vector.repeat(10, 1)  # every sentence the same point

    assert pair_cosine(source, target) == pytest.approx(1.0, abs=1e-12)
    assert cosine_gap(source, target) == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(linear_cka(source, target))  # no variance to compare


def test_cosine_gap_and_l2_by_hand_on_three_pairs():
    source = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    target = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
    r = math.sqrt(0.5)
    # cos(s_i, t_j), row i, column j
    cosines = [
        [1.0, r, 0.0],
        [0.0, r, 1.0],
        [r, 1.0, r],
    ]
    pairs = (cosines[0][0] + cosines[1][1] + cosines[2][2]) / 3
    others = sum(cosines[i][j] for i in range(3) for j in range(3) if i != j) / 6
    distances = [0.0, 1.0, math.sqrt(2.0)]  # |(0,0)|, |(-1,0)|, |(1,-1)|

    assert pair_cosine(source, target) == pytest.approx(pairs, abs=1e-12)
    assert cosine_gap(source, target) == pytest.approx(pairs - others, abs=1e-12)
    assert cosine_gap(source, target) == pytest.approx(math.sqrt(2.0) / 6, abs=1e-12)
    assert pair_l2(source, target) == pytest.approx(sum(distances) / 3, abs=1e-12)


@pytest.mark.parametrize("n", [10, 40])  # fewer pairs than dimensions, and more
def test_linear_cka_equals_the_centered_gram_matrix_form(n):
    source = random_set(n, 12, seed=0).numpy()
    target = np.tanh(random_set(n, 7, seed=1).numpy() + source[:, :7])  # other width, related
    centering = np.eye(n) - np.ones((n, n)) / n
    k = centering @ source @ source.T @ centering
    l_ = centering @ target @ target.T @ centering
    expected = np.trace(k @ l_) / math.sqrt(np.trace(k @ k) * np.trace(l_ @ l_))

    assert linear_cka(torch.from_numpy(source), torch.from_numpy(target)) == pytest.approx(expected, abs=1e-10)


def test_measure_all_names_every_measure_in_table_order_in_float64():
    source = random_set(20, 8, seed=0)
    target = noisy_translations(source, seed=1)

    values = measure_all(source.float(), target.float())

    assert tuple(values) == MEASURES
    assert values["pair_cosine"] == pytest.approx(pair_cosine(source.float().double(), target.float().double()))
    assert all(isinstance(value, float) for value in values.values())


def test_measures_refuse_unpaired_shapes():
    with pytest.raises(ValueError, match=r"same n"):
        pair_cosine(random_set(5, 4, seed=0), random_set(6, 4, seed=1))
    with pytest.raises(ValueError, match="differ in size"):
        retrieval_accuracy(random_set(5, 4, seed=0), random_set(5, 3, seed=1))


# --------------------------------------------------------------------------- analyze on a tiny model


@pytest.fixture(scope="module")
def encoder(tokenizer):
    torch.manual_seed(0)
    return XLMRobertaModel(tiny_xlmr_config(tokenizer))  # 2 blocks: layers 0, 1, 2; dropout 0.1


def oracle_sentence_vectors(model, tokenizer, sentences: list[str]) -> list[list[list[float]]]:
    """Per layer, per sentence: one sentence per forward (no padding at all), mean over the tokens but <s>, </s>."""
    special = set(tokenizer.all_special_ids)
    per_layer = [[] for _ in range(model.config.num_hidden_layers + 1)]
    with torch.no_grad():
        for sentence in sentences:
            encoded = tokenizer(sentence, return_tensors="pt")
            kept = [t for t, token_id in enumerate(encoded["input_ids"][0].tolist()) if token_id not in special]
            for layer, hidden in enumerate(model(**encoded, output_hidden_states=True).hidden_states):
                tokens = hidden[0].tolist()  # (seq, dim)
                per_layer[layer].append([sum(tokens[t][d] for t in kept) / len(kept) for d in range(len(tokens[0]))])
    return per_layer


def cosine(u: list[float], v: list[float]) -> float:
    return sum(a * b for a, b in zip(u, v)) / math.sqrt(sum(a * a for a in u) * sum(b * b for b in v))


def oracle_retrieval(queries: list[list[float]], candidates: list[list[float]]) -> tuple[float, float]:
    """P@1 and the smallest margin between the best and second-best candidate (to rule out near-ties)."""
    hits, margin = 0, math.inf
    for i, query in enumerate(queries):
        scores = [cosine(query, candidate) for candidate in candidates]
        best = max(range(len(scores)), key=lambda j: scores[j])
        hits += best == i
        margin = min(margin, scores[best] - max(s for j, s in enumerate(scores) if j != best))
    return hits / len(queries), margin


def table(rows) -> dict[tuple[str, int, str], float]:
    return {(row["pair"], row["layer"], row["measure"]): row["value"] for row in rows}


def test_analyze_matches_a_hand_loop_over_hidden_states(encoder, tokenizer, parallel_dataset):
    # Targets half translated, so that retrieval is neither 0 nor 1; no sentence twice (a copy ties exactly).
    src_texts = list(dict.fromkeys(parallel_dataset["src"]))[:24]
    tgt_texts = [" ".join(translate(text.split()[:3]) + text.split()[3:]) for text in src_texts]
    pairs = datasets.Dataset.from_dict(
        {"src": src_texts, "tgt": tgt_texts, "src_lang": ["en"] * 24, "tgt_lang": ["xx"] * 24}
    )
    encoder.eval()  # the oracle's forwards without dropout, as analyze's

    rows = analyze(encoder, tokenizer, pairs, batch_size=5)  # 5 batches, the last one ragged

    values = table(rows)
    sources = oracle_sentence_vectors(encoder, tokenizer, pairs["src"])
    targets = oracle_sentence_vectors(encoder, tokenizer, pairs["tgt"])
    for layer, (source, target) in enumerate(zip(sources, targets)):
        expected_cosine = sum(cosine(s, t) for s, t in zip(source, target)) / len(source)
        source_to_target, margin_st = oracle_retrieval(source, target)
        target_to_source, margin_ts = oracle_retrieval(target, source)
        assert min(margin_st, margin_ts) > 1e-5  # no near-tie that float32 noise could flip
        assert values["en-xx", layer, "pair_cosine"] == pytest.approx(expected_cosine, abs=1e-5)
        assert values["en-xx", layer, "retrieval_src_to_tgt"] == source_to_target
        assert values["en-xx", layer, "retrieval_tgt_to_src"] == target_to_source


def test_batches_group_pairs_of_similar_token_length(tokenizer):
    rows = [{"src": "a cat", "tgt": "un gatu"}, {"src": "the big red dog runs", "tgt": "lo perru"}]
    batch = ParallelCollator(tokenizer)(rows)
    tokens = batch["attention_mask"].sum(dim=1).tolist()  # per row: sources, then targets

    assert pair_lengths(tokenizer, rows, max_length=128) == [max(tokens[0], tokens[2]), max(tokens[1], tokens[3])]
    assert length_sorted_batches([5, 1, 3, 1, 9], batch_size=2) == [[1, 3], [2, 0], [4]]


def test_analyze_rows_are_tidy_and_ordered(encoder, tokenizer, parallel_dataset):
    rows = analyze(encoder, tokenizer, parallel_dataset.select(range(8)), model_name="tiny")

    assert [(row["layer"], row["measure"]) for row in rows] == [(k, m) for k in range(3) for m in MEASURES]
    assert all(tuple(row) == COLUMNS for row in rows)
    assert {(row["model"], row["pair"], row["n"]) for row in rows} == {("tiny", "en-xx", 8)}


def test_analyze_groups_by_language_pair(encoder, tokenizer, parallel_dataset):
    forward = parallel_dataset.select(range(10))
    backward = datasets.Dataset.from_dict(
        {"src": forward["tgt"], "tgt": forward["src"], "src_lang": ["xx"] * 10, "tgt_lang": ["en"] * 10}
    )
    pairs = datasets.concatenate_datasets([forward.remove_columns("alignment"), backward])

    values = table(analyze(encoder, tokenizer, pairs, layers=[-1]))

    assert {pair for pair, _, _ in values} == {"en-xx", "xx-en"}
    # Swapping the sides swaps the retrieval directions and keeps the pair cosine.
    assert values["xx-en", 2, "retrieval_src_to_tgt"] == values["en-xx", 2, "retrieval_tgt_to_src"]
    assert values["xx-en", 2, "pair_cosine"] == pytest.approx(values["en-xx", 2, "pair_cosine"], abs=1e-6)


def test_analyze_resolves_negative_layers_and_restores_training_mode(encoder, tokenizer, parallel_dataset):
    encoder.train()

    rows = analyze(encoder, tokenizer, parallel_dataset.select(range(4)), layers=[-1, 0])

    assert encoder.training
    assert [row["layer"] for row in rows[:: len(MEASURES)]] == [2, 0]


def test_analyze_refuses_a_missing_layer_before_any_forward(encoder, tokenizer, parallel_dataset):
    calls = []
    handle = encoder.register_forward_hook(lambda *_: calls.append(1))
    try:
        with pytest.raises(ValueError, match=r"no layer 3 .* 0 \(embedding output\) to 2"):
            analyze(encoder, tokenizer, parallel_dataset, layers=[0, 3])
    finally:
        handle.remove()
    assert calls == []


def test_analyze_refuses_a_language_pair_with_one_pair(encoder, tokenizer, parallel_dataset):
    lonely = datasets.Dataset.from_dict({"src": ["a cat"], "tgt": ["un gatu"], "src_lang": ["en"], "tgt_lang": ["yy"]})
    pairs = datasets.concatenate_datasets([parallel_dataset.select(range(4)).remove_columns("alignment"), lonely])

    with pytest.raises(ValueError, match=r"'en-yy' has 1 translation pair"):
        analyze(encoder, tokenizer, pairs)


# --------------------------------------------------------------------------- files, the saved model, the command


@pytest.fixture(scope="module")
def saved_encoder(encoder, tokenizer, tmp_path_factory):
    folder = tmp_path_factory.mktemp("encoder")
    encoder.save_pretrained(folder)  # safetensors
    tokenizer.save_pretrained(folder)
    return folder


def write_pairs(path, pairs) -> None:
    lines = ["src_lang\ttgt_lang\tsrc\ttgt"] + [
        f"{r['src_lang']}\t{r['tgt_lang']}\t{r['src']}\t{r['tgt']}" for r in pairs
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def run_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="xalign")
    add_analyze_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.run(args)


def test_analyze_model_reads_files_and_loads_the_saved_encoder(
    saved_encoder, encoder, tokenizer, parallel_dataset, tmp_path
):
    pairs = parallel_dataset.select(range(6))
    write_pairs(tmp_path / "en-xx.tsv", pairs)

    rows = analyze_model(saved_encoder, tmp_path / "en-xx.tsv", layers=[1])

    assert table(rows) == pytest.approx(table(analyze(encoder, tokenizer, pairs, layers=[1])), abs=1e-6)
    assert rows[0]["model"] == str(saved_encoder)


def test_analyze_model_refuses_a_file_with_one_pair(saved_encoder, parallel_dataset, tmp_path):
    write_pairs(tmp_path / "en-xx.tsv", parallel_dataset.select(range(1)))

    with pytest.raises(ValueError, match=r"'en-xx' has 1 translation pair"):
        analyze_model(saved_encoder, tmp_path / "en-xx.tsv")


def test_analyze_model_passes_on_the_readers_file_and_line(saved_encoder, parallel_dataset, tmp_path):
    path = tmp_path / "en-xx.tsv"
    write_pairs(path, parallel_dataset.select(range(3)))
    with open(path, "a", encoding="utf-8") as file:
        file.write("en\txx\tonly a source\n")  # line 5: three fields under a four-column header

    with pytest.raises(DataFileError, match=rf"^{path}:5: "):
        analyze_model(saved_encoder, path)


def test_command_reads_a_folder_and_writes_the_table(saved_encoder, parallel_dataset, tmp_path, capsys):
    folder = tmp_path / "pairs"
    folder.mkdir()
    write_pairs(folder / "b.tsv", parallel_dataset.select(range(4)))
    (folder / "a.jsonl").write_text(
        "".join(
            json.dumps({"src": s, "tgt": t, "src_lang": "en", "tgt_lang": "zz"}) + "\n"
            for s, t in [("a cat", "un gatu"), ("the dog", "lo perru")]
        ),
        encoding="utf-8",
    )
    output = tmp_path / "out" / "analysis.json"

    assert (
        run_command(
            ["analyze", str(saved_encoder), "--pairs", str(folder), "--layers", "0", "-1", "--output", str(output)]
        )
        == 0
    )

    rows = read_table(output)
    assert [row["pair"] for row in rows[:: 2 * len(MEASURES)]] == ["en-zz", "en-xx"]  # a.jsonl before b.tsv
    assert {row["layer"] for row in rows} == {0, 2}
    printed = capsys.readouterr().out
    assert f"wrote {output}: 24 rows" in printed
    assert "en-zz" in printed and "en-xx" in printed


def test_command_refuses_a_missing_layer_and_writes_nothing(saved_encoder, parallel_dataset, tmp_path):
    write_pairs(tmp_path / "en-xx.tsv", parallel_dataset.select(range(4)))
    output = tmp_path / "analysis.csv"

    with pytest.raises(ValueError, match=r"no layer 7 "):
        run_command(
            [
                "analyze",
                str(saved_encoder),
                "--pairs",
                str(tmp_path / "en-xx.tsv"),
                "--layers",
                "7",
                "--output",
                str(output),
            ]
        )
    assert not output.exists()


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_tables_round_trip_with_nan(suffix, tmp_path):
    rows = [
        {"model": "m", "pair": "en-de", "layer": 3, "measure": "pair_cosine", "value": 0.1 + 0.2, "n": 5},
        {"model": "m", "pair": "en-de", "layer": 3, "measure": "linear_cka", "value": float("nan"), "n": 5},
    ]

    back = read_table(write_table(rows, tmp_path / f"t{suffix}"))

    assert back[0] == rows[0]
    assert math.isnan(back[1].pop("value")) and back[1] == {k: v for k, v in rows[1].items() if k != "value"}


def test_a_failed_table_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "analysis.csv"
    path.write_text("old\n", encoding="utf-8")

    with pytest.raises(ValueError, match="table row 0"):
        write_table([{"model": "m", "value": 1.0}], path)
    with pytest.raises(ValueError, match=r"\.csv or \.json"):
        write_table([], tmp_path / "analysis.txt")

    assert path.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["analysis.csv"]
