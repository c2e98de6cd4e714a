# Copyright 2025 The hf-xalign Authors.
# Licensed under the Apache License, Version 2.0.
"""Specification of `hf_xalign.losses`: each loss against a hand computation, then the full path.

The oracles are explicit Python loops over small float64 tensors (cosine = dot / (norm * norm),
log-sum-exp by hand, LayerNorm by its formula); none calls the code under test.
"""

import math
import re

import pytest
import torch
import transformers
from _corpus import corpus_tokenizer, english_spanish_rows

from hf_xalign.data.collator import ParallelCollator
from hf_xalign.losses import (
    LOSS_REGISTRY,
    AlignmentLoss,
    ContrastiveLoss,
    CosineLoss,
    DistillationLoss,
    DriftLoss,
    MaskedLMLoss,
    MSELoss,
    TokenAlignmentLoss,
    get_loss,
    mutual_argmax_links,
)
from hf_xalign.pooling import ParallelEncoding
from hf_xalign.tiny import tiny_xlmr_config

TOL = dict(rtol=0, atol=1e-10)

KNOWN_LOSSES = ("contrastive", "cosine", "distill", "drift", "mlm", "mse", "tlm", "token")


# --------------------------------------------------------------------------- oracles


def dot(u, v):
    return sum(a * b for a, b in zip(u, v))


def norm(u):
    return math.sqrt(dot(u, u))


def cosine(u, v):
    return dot(u, v) / (norm(u) * norm(v))


def log_sum_exp(values):
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def squared_distance(u, v):
    return sum((a - b) ** 2 for a, b in zip(u, v))


def gelu(x):
    return 0.5 * x * (1.0 + math.erf(x / math.sqrt(2.0)))


def info_nce_oracle(src, tgt, temperature):
    """Symmetric InfoNCE over rows of `src`, `tgt` (lists of vectors)."""
    pairs = len(src)
    total = 0.0
    for i in range(pairs):
        src_to_tgt = [cosine(src[i], tgt[j]) / temperature for j in range(pairs)]
        tgt_to_src = [cosine(tgt[i], src[j]) / temperature for j in range(pairs)]
        total += log_sum_exp(src_to_tgt) - src_to_tgt[i]
        total += log_sum_exp(tgt_to_src) - tgt_to_src[i]
    return total / (2 * pairs)


def scalar(value):
    return torch.tensor(value, dtype=torch.float64)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def tokenizer():
    return corpus_tokenizer()


def tiny_model(tokenizer, dtype=torch.float32):
    torch.manual_seed(0)
    model = transformers.XLMRobertaForTokenClassification(tiny_xlmr_config(tokenizer, num_labels=3))
    model.to(dtype)
    model.eval()  # no dropout: losses are deterministic and "the start point" is exact
    return model


def perturb(model, scale=0.01):
    generator = torch.Generator().manual_seed(123)
    with torch.no_grad():
        for parameter in model.base_model.parameters():
            parameter.add_(scale * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))


# --------------------------------------------------------------------------- contrastive


@pytest.mark.parametrize("temperature", [0.05, 1.0])
def test_contrastive_is_symmetric_info_nce(temperature):
    torch.manual_seed(0)
    src, tgt = torch.randn(4, 6, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64)

    expected = info_nce_oracle(src.tolist(), tgt.tolist(), temperature)

    loss = ContrastiveLoss(temperature=temperature).compute_loss_from_embeddings(src, tgt)
    torch.testing.assert_close(loss, scalar(expected), **TOL)


def test_contrastive_is_lower_for_aligned_pairs_than_for_shuffled_ones():
    torch.manual_seed(0)
    src = torch.randn(6, 8, dtype=torch.float64)
    tgt = src + 0.05 * torch.randn(6, 8, dtype=torch.float64)  # translations: near their source
    shuffled = tgt[[1, 2, 3, 4, 5, 0]]
    loss = ContrastiveLoss(temperature=0.1)

    assert loss.compute_loss_from_embeddings(src, tgt) < loss.compute_loss_from_embeddings(src, shuffled)


# --------------------------------------------------------------------------- MSE / cosine


def test_mse_is_mean_squared_difference_over_pairs_and_dimensions():
    torch.manual_seed(0)
    src, tgt = torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64)

    expected = sum(squared_distance(x, y) for x, y in zip(src.tolist(), tgt.tolist())) / (3 * 5)

    torch.testing.assert_close(MSELoss().compute_loss_from_embeddings(src, tgt), scalar(expected), **TOL)


def test_cosine_loss_is_mean_of_one_minus_cosine():
    torch.manual_seed(0)
    src, tgt = torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64)

    expected = sum(1 - cosine(x, y) for x, y in zip(src.tolist(), tgt.tolist())) / 3

    torch.testing.assert_close(CosineLoss().compute_loss_from_embeddings(src, tgt), scalar(expected), **TOL)


# --------------------------------------------------------------------------- token alignment


@pytest.mark.parametrize("distance", ["l2", "cosine"])
def test_token_loss_with_given_links(distance):
    torch.manual_seed(0)
    src_words, tgt_words = torch.randn(2, 4, 3, dtype=torch.float64), torch.randn(2, 5, 3, dtype=torch.float64)
    src_counts, tgt_counts = torch.tensor([4, 3]), torch.tensor([5, 4])
    links = [[(0, 1), (2, 2), (3, 4)], [(1, 0)]]

    d = squared_distance if distance == "l2" else (lambda u, v: 1 - cosine(u, v))
    terms = [d(src_words[b, i].tolist(), tgt_words[b, j].tolist()) for b, pair in enumerate(links) for i, j in pair]
    expected = sum(terms) / len(terms)

    loss = TokenAlignmentLoss(distance=distance).compute_loss_from_words(
        src_words, tgt_words, src_counts, tgt_counts, links
    )
    torch.testing.assert_close(loss, scalar(expected), **TOL)


def test_the_token_distance_comes_from_the_training_arguments(tmp_path):
    from hf_xalign import AlignmentTrainingArguments

    args = AlignmentTrainingArguments(output_dir=str(tmp_path), alignment_token_distance="cosine", alignment_layer=3)
    loss = TokenAlignmentLoss.from_training_args(args)
    assert (loss.distance, loss.layer) == ("cosine", 3)
    assert TokenAlignmentLoss.from_training_args(AlignmentTrainingArguments(output_dir=str(tmp_path))).distance == "l2"
    with pytest.raises(ValueError, match=r"alignment_token_distance must be one of \('l2', 'cosine'\), got 'dot'"):
        AlignmentTrainingArguments(output_dir=str(tmp_path), alignment_token_distance="dot")


def mutual_argmax_case():
    """Word vectors whose mutual cosine-argmax pairs are known by construction.

    cos(src, tgt):        tgt0=e0  tgt1=.2 e1  tgt2=e2+e3
        src0 = 3 e0         1        0          0
        src1 = e1           0        1          0
        src2 = e1 + .5 e2   0        0.894      0.316
    src0 <-> tgt0 and src1 <-> tgt1 are mutual. src2's best is tgt1, whose best is src1:
    dropped. tgt2's best is src2, whose best is tgt1: dropped. (Scales differ so that a
    dot product instead of the cosine would pick other pairs.)
    """
    e = torch.eye(4, dtype=torch.float64)
    src = torch.stack([3 * e[0], e[1], e[1] + 0.5 * e[2]])
    tgt = torch.stack([e[0], 0.2 * e[1], e[2] + e[3]])
    return src, tgt, [(0, 0), (1, 1)]


def test_mutual_argmax_keeps_only_mutual_best_pairs():
    src, tgt, expected = mutual_argmax_case()

    assert sorted(mutual_argmax_links(src, tgt)) == expected


def test_token_loss_without_links_uses_mutual_argmax_over_real_words_only():
    src, tgt, mutual = mutual_argmax_case()
    # A padding word slot beyond the count that would match tgt2 perfectly: it must be ignored.
    src_words = torch.cat([src, tgt[2:3]]).unsqueeze(0)  # (1, 4, 4)
    tgt_words = tgt.unsqueeze(0)  # (1, 3, 4)

    expected = sum(squared_distance(src[i].tolist(), tgt[j].tolist()) for i, j in mutual) / len(mutual)

    loss = TokenAlignmentLoss(distance="l2").compute_loss_from_words(
        src_words, tgt_words, torch.tensor([3]), torch.tensor([3]), [[]]
    )
    torch.testing.assert_close(loss, scalar(expected), **TOL)


# --------------------------------------------------------------------------- masked LM


def test_mlm_loss_is_cross_entropy_of_the_tied_head_at_masked_positions(tokenizer):
    model = tiny_model(tokenizer, torch.float64)
    loss = MaskedLMLoss()
    loss.setup(model)
    torch.manual_seed(1)
    with torch.no_grad():  # non-trivial head parameters, so that each term of the formula matters
        for parameter in (loss.head.dense.bias, loss.head.layer_norm.weight, loss.head.layer_norm.bias, loss.head.bias):
            parameter.copy_(torch.randn_like(parameter))
    hidden = torch.randn(2, 5, model.config.hidden_size, dtype=torch.float64)
    labels = torch.full((2, 5), -100)
    labels[0, 1], labels[0, 3], labels[1, 4] = 7, 12, 30

    W, b = loss.head.dense.weight.tolist(), loss.head.dense.bias.tolist()
    ln_w, ln_b, eps = (
        loss.head.layer_norm.weight.tolist(),
        loss.head.layer_norm.bias.tolist(),
        model.config.layer_norm_eps,
    )
    E, out_bias = model.get_input_embeddings().weight.tolist(), loss.head.bias.tolist()
    terms = []
    for r, t in [(0, 1), (0, 3), (1, 4)]:
        x = hidden[r, t].tolist()
        g = [gelu(dot(W[k], x) + b[k]) for k in range(len(x))]
        mean = sum(g) / len(g)
        var = sum((v - mean) ** 2 for v in g) / len(g)
        z = [(v - mean) / math.sqrt(var + eps) * ln_w[k] + ln_b[k] for k, v in enumerate(g)]
        logits = [dot(z, E[v]) + out_bias[v] for v in range(len(E))]
        terms.append(log_sum_exp(logits) - logits[int(labels[r, t])])
    expected = sum(terms) / len(terms)

    torch.testing.assert_close(loss.compute_loss_from_hidden(hidden, labels), scalar(expected), **TOL)


def test_mlm_head_is_tied_so_the_loss_owns_no_embedding_matrix(tokenizer):
    model = tiny_model(tokenizer)
    loss = MaskedLMLoss()
    loss.setup(model)

    assert set(loss.state_dict()) == {
        "head.dense.weight",
        "head.dense.bias",
        "head.layer_norm.weight",
        "head.layer_norm.bias",
        "head.bias",
    }
    embedding_shape = model.get_input_embeddings().weight.shape
    assert all(tensor.shape != embedding_shape for tensor in loss.state_dict().values())


def test_mlm_loss_gradient_reaches_the_input_embeddings(tokenizer):
    model = tiny_model(tokenizer)
    loss = MaskedLMLoss()
    loss.setup(model)
    torch.manual_seed(0)
    hidden = torch.randn(1, 4, model.config.hidden_size)  # not from the model: only the decoder links them
    labels = torch.tensor([[-100, 9, -100, 15]])

    (grad,) = torch.autograd.grad(loss.compute_loss_from_hidden(hidden, labels), model.get_input_embeddings().weight)

    assert grad.abs().sum() > 0


# --------------------------------------------------------------------------- distillation / drift


def test_distillation_is_mse_of_both_student_sides_to_the_teacher_source():
    torch.manual_seed(0)
    student_src, student_tgt, teacher_src = (torch.randn(3, 4, dtype=torch.float64) for _ in range(3))

    expected = sum(
        squared_distance(s, t) + squared_distance(u, t)
        for s, u, t in zip(student_src.tolist(), student_tgt.tolist(), teacher_src.tolist())
    ) / (3 * 4)

    loss = DistillationLoss.compute_loss_from_embeddings(student_src, student_tgt, teacher_src)
    torch.testing.assert_close(loss, scalar(expected), **TOL)


def test_drift_representations_is_mean_squared_distance_over_masked_tokens():
    torch.manual_seed(0)
    states, reference = torch.randn(2, 4, 3, dtype=torch.float64), torch.randn(2, 4, 3, dtype=torch.float64)
    token_mask = torch.tensor([[0, 1, 1, 0], [0, 1, 0, 0]])

    tokens = [(r, t) for r in range(2) for t in range(4) if token_mask[r, t] == 1]
    expected = sum(squared_distance(states[r, t].tolist(), reference[r, t].tolist()) for r, t in tokens) / (
        len(tokens) * 3
    )

    torch.testing.assert_close(
        DriftLoss.compute_loss_from_states(states, reference, token_mask), scalar(expected), **TOL
    )


def test_drift_weights_is_zero_at_setup_then_sum_of_squared_deltas(tokenizer):
    model = tiny_model(tokenizer, torch.float64)
    loss = DriftLoss(target="weights")
    loss.setup(model)
    encoding = ParallelEncoding(model.base_model, ParallelCollator(tokenizer)(english_spanish_rows(2)))

    assert loss(encoding).item() == 0.0

    query = model.base_model.encoder.layer[0].attention.self.query.weight
    with torch.no_grad():
        query[0, 0] += 0.5
        query[3, 2] -= 0.25
    torch.testing.assert_close(loss(encoding), scalar(0.5**2 + 0.25**2), **TOL)


def test_drift_representations_is_zero_at_the_start_point(tokenizer):
    model = tiny_model(tokenizer)
    loss = DriftLoss()
    loss.setup(model)
    batch = ParallelCollator(tokenizer)(english_spanish_rows(4))

    assert abs(loss(ParallelEncoding(model.base_model, batch)).item()) < 1e-10


# --------------------------------------------------------------------------- registry and full path


def test_unknown_loss_name_lists_the_known_ones():
    with pytest.raises(ValueError) as error:
        get_loss("nope")

    assert "nope" in str(error.value)
    assert all(name in str(error.value) for name in KNOWN_LOSSES)


@pytest.mark.parametrize("name", sorted(LOSS_REGISTRY))
def test_every_registered_loss_gives_a_finite_scalar_with_encoder_gradients(tokenizer, name):
    model = tiny_model(tokenizer)
    loss = get_loss(name)
    loss.setup(model)
    if name in ("distill", "drift"):
        perturb(model)  # drift is exactly 0 (zero gradient) at the start point; distill's source term too
    batch = ParallelCollator(tokenizer, views=loss.requires)(
        english_spanish_rows(4), generator=torch.Generator().manual_seed(0)
    )

    value = loss(ParallelEncoding(model.base_model, batch))

    assert value.dim() == 0 and torch.isfinite(value)
    parameters = list(model.base_model.parameters())
    grads = torch.autograd.grad(value, parameters, allow_unused=True)
    assert any(grad is not None and grad.abs().sum() > 0 for grad in grads)


def hand_sentence_vectors(model, tokenizer, input_ids, attention_mask, layer, pooling):
    """One side's sentence vectors from a forward of its own, pooled by loops."""
    width = int(attention_mask.sum(dim=1).max())  # this side's own padding
    with torch.no_grad():
        states = model.base_model(
            input_ids=input_ids[:, :width], attention_mask=attention_mask[:, :width], output_hidden_states=True
        ).hidden_states[layer]
    special = {tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id}
    vectors = []
    for r in range(input_ids.shape[0]):
        if pooling == "cls":
            vectors.append(states[r, 0].tolist())
            continue
        content = [t for t in range(width) if attention_mask[r, t] == 1 and int(input_ids[r, t]) not in special]
        vectors.append([sum(states[r, t, d].item() for t in content) / len(content) for d in range(states.shape[-1])])
    return torch.tensor(vectors, dtype=torch.float64)


@pytest.mark.parametrize(("layer", "pooling"), [(-1, "mean"), (0, "mean"), (1, "cls")])
def test_shared_forward_equals_separate_forwards_for_the_contrastive_loss(tokenizer, layer, pooling):
    model = tiny_model(tokenizer, torch.float64)
    rows = english_spanish_rows(4)
    batch = ParallelCollator(tokenizer)(rows)
    pairs = len(rows)
    loss = ContrastiveLoss(layer=layer, pooling=pooling, temperature=0.1)

    src = hand_sentence_vectors(
        model, tokenizer, batch["input_ids"][:pairs], batch["attention_mask"][:pairs], layer, pooling
    )
    tgt = hand_sentence_vectors(
        model, tokenizer, batch["input_ids"][pairs:], batch["attention_mask"][pairs:], layer, pooling
    )
    expected = loss.compute_loss_from_embeddings(src, tgt)

    with torch.no_grad():
        got = loss(ParallelEncoding(model.base_model, batch))
    torch.testing.assert_close(got, expected, **TOL)


def test_distillation_at_the_start_point_is_the_target_to_source_distance(tokenizer):
    # The teacher is the start model: the student-source term is 0, what remains is
    # ||S(t_i) - T(s_i)||^2 / (B d) with S = T, from sentence vectors computed by hand.
    model = tiny_model(tokenizer, torch.float64)
    loss = DistillationLoss()
    loss.setup(model)
    rows = english_spanish_rows(4)
    batch = ParallelCollator(tokenizer)(rows)
    pairs = len(rows)

    src = hand_sentence_vectors(
        model, tokenizer, batch["input_ids"][:pairs], batch["attention_mask"][:pairs], -1, "mean"
    )
    tgt = hand_sentence_vectors(
        model, tokenizer, batch["input_ids"][pairs:], batch["attention_mask"][pairs:], -1, "mean"
    )
    expected = sum(squared_distance(u, t) for u, t in zip(tgt.tolist(), src.tolist())) / (pairs * src.shape[1])

    with torch.no_grad():
        got = loss(ParallelEncoding(model.base_model, batch))
    torch.testing.assert_close(got, scalar(expected), **TOL)


def test_token_loss_through_the_encoding_uses_links_or_mutual_argmax_per_pair(tokenizer):
    model = tiny_model(tokenizer, torch.float64)
    rows = english_spanish_rows(4)
    rows[1]["alignment"], rows[3]["alignment"] = [], []  # these two pairs fall back to mutual argmax
    batch = ParallelCollator(tokenizer, views={"word_ids"})(rows)
    pairs = len(rows)

    with torch.no_grad():
        states = model.base_model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True
        ).hidden_states[-1]
    words = []  # words[row][w]: mean of the sub-token states of word w
    for r in range(2 * pairs):
        ids = batch["word_ids"][r].tolist()
        row_words = []
        for w in range(max(ids) + 1):
            tokens = [t for t in range(len(ids)) if ids[t] == w]
            row_words.append(
                [sum(states[r, t, d].item() for t in tokens) / len(tokens) for d in range(states.shape[-1])]
            )
        words.append(row_words)
    terms = []
    for b, row in enumerate(rows):
        src, tgt = words[b], words[pairs + b]
        links = row["alignment"]
        if not links:
            best_tgt = [max(range(len(tgt)), key=lambda j: cosine(src[i], tgt[j])) for i in range(len(src))]
            best_src = [max(range(len(src)), key=lambda i: cosine(src[i], tgt[j])) for j in range(len(tgt))]
            links = [(i, best_tgt[i]) for i in range(len(src)) if best_src[best_tgt[i]] == i]
            assert links  # the fallback is exercised
        terms += [squared_distance(src[i], tgt[j]) for i, j in links]
    expected = sum(terms) / len(terms)

    with torch.no_grad():
        got = TokenAlignmentLoss(distance="l2")(ParallelEncoding(model.base_model, batch))
    torch.testing.assert_close(got, scalar(expected), **TOL)


@pytest.mark.parametrize(
    ("cls", "options", "message"),
    [
        (ContrastiveLoss, {"temperature": 0.0}, "temperature must be > 0, got 0.0"),
        (TokenAlignmentLoss, {"distance": "dot"}, "distance must be 'l2' or 'cosine', got 'dot'"),
        (DriftLoss, {"target": "grads"}, "target must be 'representations' or 'weights', got 'grads'"),
    ],
)
def test_invalid_options_raise_value_error(cls, options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        cls(**options)


# --------------------------------------------------------------------------- citations

# The paper each loss comes from, written down from the papers themselves: (title, year).
PAPERS = {
    "contrastive": ("Representation Learning with Contrastive Predictive Coding", "2018"),
    "mse": ("Making Monolingual Sentence Embeddings Multilingual using Knowledge Distillation", "2020"),
    "cosine": ("Making Monolingual Sentence Embeddings Multilingual using Knowledge Distillation", "2020"),
    "distill": ("Making Monolingual Sentence Embeddings Multilingual using Knowledge Distillation", "2020"),
    "token": ("Multilingual Alignment of Contextual Word Representations", "2020"),
    "mlm": ("BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding", "2019"),
    "tlm": ("Cross-lingual Language Model Pretraining", "2019"),
    "drift": ("Explicit Inductive Bias for Transfer Learning with Convolutional Networks", "2018"),
}


def bibtex_entry(text):
    """`(type, key, {field: value})` of a text holding exactly one BibTeX entry (braces removed from values)."""
    match = re.fullmatch(r"\s*@(\w+)\{([^,\s{}]+),(.*)\}\s*", text, flags=re.DOTALL)
    assert match, f"not one @type{{key, ...}} entry:\n{text}"
    kind, key, body = match.groups()
    depth = 0
    for char in body:
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0, f"a brace closes the entry before its end:\n{text}"
    assert depth == 0, f"unbalanced braces:\n{text}"
    fields = {
        name.lower(): value.replace("{", "").replace("}", "").strip()
        for name, value in re.findall(r"^\s*(\w+)\s*=\s*(.+?),?\s*$", body, flags=re.MULTILINE)
    }
    return kind, key, fields


def test_every_registered_loss_has_a_written_down_paper():
    assert sorted(PAPERS) == sorted(LOSS_REGISTRY)


@pytest.mark.parametrize("name", sorted(PAPERS))
def test_citation_is_one_bibtex_entry_of_the_losss_paper(name):
    kind, _, fields = bibtex_entry(get_loss(name).citation)
    title, year = PAPERS[name]
    assert kind in ("article", "inproceedings", "misc")
    assert {"title", "author", "year"} <= fields.keys()
    assert (fields["title"], fields["year"]) == (title, year)


def test_citation_keys_differ_exactly_where_the_papers_differ():
    papers_by_key = {}
    for name in PAPERS:
        _, key, fields = bibtex_entry(get_loss(name).citation)
        papers_by_key.setdefault(key, set()).add(fields["title"])
    assert all(len(titles) == 1 for titles in papers_by_key.values()), papers_by_key  # one paper per key
    assert len(papers_by_key) == len(set(PAPERS.values()))  # one key per paper


def test_a_custom_loss_cites_nothing():
    class Custom(AlignmentLoss):
        def forward(self, encoding):
            return torch.zeros(())

    assert Custom().citation is None
