# Copyright 2025 The hf-xalign Authors.
# Licensed under the Apache License, Version 2.0.
"""Specification of `hf_xalign.pooling` (pooling functions) and `hf_xalign.data.collator`.

Every expected value is written out by hand (explicit loops over small tensors, or the
tokenizer applied word by word), never produced by the code under test.
"""

import pytest
import torch
from _corpus import corpus_tokenizer, english_spanish_rows

from hf_xalign.data.collator import ParallelCollator, mask_tokens
from hf_xalign.pooling import cls_pool, mean_pool, word_vectors


@pytest.fixture(scope="module")
def tokenizer():
    torch.manual_seed(0)
    return corpus_tokenizer()


def special_ids(tokenizer):
    return {tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id}


# --------------------------------------------------------------------------- pooling


def test_mean_pool_averages_selected_tokens_and_gives_zeros_for_empty_rows():
    torch.manual_seed(0)
    hidden = torch.randn(3, 5, 4, dtype=torch.float64)
    token_mask = torch.tensor([[0, 1, 1, 0, 1], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0]])

    expected = torch.zeros(3, 4, dtype=torch.float64)
    for b in range(3):
        selected = [t for t in range(5) if token_mask[b, t] == 1]
        for d in range(4):
            if selected:
                expected[b, d] = sum(hidden[b, t, d].item() for t in selected) / len(selected)

    torch.testing.assert_close(mean_pool(hidden, token_mask), expected, rtol=0, atol=1e-12)


def test_cls_pool_takes_the_first_token():
    torch.manual_seed(0)
    hidden = torch.randn(2, 4, 3, dtype=torch.float64)

    expected = torch.tensor([[hidden[b, 0, d].item() for d in range(3)] for b in range(2)], dtype=torch.float64)

    torch.testing.assert_close(cls_pool(hidden), expected, rtol=0, atol=0)


def test_word_vectors_average_sub_tokens_per_word_ignoring_minus_one():
    torch.manual_seed(0)
    hidden = torch.randn(2, 7, 3, dtype=torch.float64)
    word_ids = torch.tensor([[-1, 0, 0, 1, 2, 2, -1], [-1, 0, 1, 1, 1, -1, -1]])
    num_words = 4  # slot 3 is absent in both rows, slot 2 in the second

    expected = torch.zeros(2, num_words, 3, dtype=torch.float64)
    for b in range(2):
        for w in range(num_words):
            tokens = [t for t in range(7) if word_ids[b, t] == w]
            for d in range(3):
                if tokens:
                    expected[b, w, d] = sum(hidden[b, t, d].item() for t in tokens) / len(tokens)

    torch.testing.assert_close(word_vectors(hidden, word_ids, num_words), expected, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- collator: layout


def test_collator_puts_sources_first_then_targets_in_order(tokenizer):
    rows = english_spanish_rows(4)

    batch = ParallelCollator(tokenizer)(rows)

    decoded = tokenizer.batch_decode(batch["input_ids"], skip_special_tokens=True)
    assert decoded == [row["src"] for row in rows] + [row["tgt"] for row in rows]


def test_collator_word_ids_mark_special_and_padding_tokens_minus_one(tokenizer):
    rows = english_spanish_rows(4)

    batch = ParallelCollator(tokenizer, views={"word_ids"})(rows)

    word_ids, input_ids = batch["word_ids"], batch["input_ids"]
    for r in range(word_ids.shape[0]):
        length = int(batch["attention_mask"][r].sum())
        assert word_ids[r, 0] == -1 and input_ids[r, 0] == tokenizer.bos_token_id
        assert word_ids[r, length - 1] == -1 and input_ids[r, length - 1] == tokenizer.eos_token_id
        assert all(word_ids[r, t] == -1 for t in range(length, word_ids.shape[1]))  # padding
        assert all(word_ids[r, t] >= 0 for t in range(1, length - 1))  # content


def test_collator_word_ids_count_and_spell_the_whitespace_words(tokenizer):
    rows = english_spanish_rows(4)
    sentences = [row["src"] for row in rows] + [row["tgt"] for row in rows]

    batch = ParallelCollator(tokenizer, views={"word_ids"})(rows)

    for r, sentence in enumerate(sentences):
        words = sentence.split()
        ids = batch["word_ids"][r].tolist()
        assert max(ids) + 1 == len(words)
        for w, word in enumerate(words):
            tokens = [batch["input_ids"][r, t].item() for t in range(len(ids)) if ids[t] == w]
            assert tokenizer.decode(tokens).strip() == word


def test_collator_drops_alignment_links_beyond_truncation(tokenizer):
    rows = english_spanish_rows(4)
    max_length = 8

    batch = ParallelCollator(tokenizer, max_length=max_length, views={"word_ids"})(rows)

    def words_kept(sentence):
        # A word survives when its first sub-token fits in the max_length - 2 content slots.
        used, kept = 0, 0
        for word in sentence.split():
            if used >= max_length - 2:
                break
            kept += 1
            used += len(tokenizer(word, add_special_tokens=False)["input_ids"])
        return kept

    expected = []
    for row in rows:
        src_kept, tgt_kept = words_kept(row["src"]), words_kept(row["tgt"])
        expected.append([(i, j) for i, j in row["alignment"] if i < src_kept and j < tgt_kept])
    assert any(len(kept) < len(row["alignment"]) for kept, row in zip(expected, rows))  # the case is exercised
    assert batch["alignment"] == expected


# --------------------------------------------------------------------------- collator: MLM / TLM views


def test_mlm_labels_hold_the_original_id_exactly_where_the_input_may_differ(tokenizer):
    rows = english_spanish_rows(4)

    batch = ParallelCollator(tokenizer, views={"mlm"}, mlm_probability=0.3)(
        rows, generator=torch.Generator().manual_seed(1)
    )

    original, corrupted, labels = batch["input_ids"], batch["mlm_input_ids"], batch["mlm_labels"]
    for r in range(original.shape[0]):
        for t in range(original.shape[1]):
            if labels[r, t] == -100:
                assert corrupted[r, t] == original[r, t]  # not selected: untouched
            else:
                assert labels[r, t] == original[r, t]  # selected: the label is the original token
    assert (corrupted != original).any()


def test_mlm_never_selects_special_or_padding_tokens(tokenizer):
    rows = english_spanish_rows(4)

    batch = ParallelCollator(tokenizer, views={"mlm"}, mlm_probability=0.5)(
        rows, generator=torch.Generator().manual_seed(2)
    )

    for r in range(batch["input_ids"].shape[0]):
        for t in range(batch["input_ids"].shape[1]):
            if batch["mlm_labels"][r, t] != -100:
                assert batch["input_ids"][r, t].item() not in special_ids(tokenizer)
                assert batch["attention_mask"][r, t] == 1


def test_mlm_every_row_with_content_has_a_label(tokenizer):
    rows = [{"src": "yo", "tgt": "I"}, {"src": "sí", "tgt": "ja"}] + english_spanish_rows(2)

    for seed in range(5):
        # A tiny probability makes an empty draw likely: the fallback must select a token.
        batch = ParallelCollator(tokenizer, views={"mlm"}, mlm_probability=0.01)(
            rows, generator=torch.Generator().manual_seed(seed)
        )
        for r in range(batch["mlm_labels"].shape[0]):
            assert sum(1 for t in batch["mlm_labels"][r].tolist() if t != -100) >= 1


def test_mlm_same_seed_same_masking_other_seed_other_masking(tokenizer):
    rows = english_spanish_rows(4)
    collator = ParallelCollator(tokenizer, views={"mlm"})

    first = collator(rows, generator=torch.Generator().manual_seed(7))
    again = collator(rows, generator=torch.Generator().manual_seed(7))
    other = collator(rows, generator=torch.Generator().manual_seed(8))

    assert torch.equal(first["mlm_input_ids"], again["mlm_input_ids"])
    assert torch.equal(first["mlm_labels"], again["mlm_labels"])
    assert not torch.equal(first["mlm_labels"], other["mlm_labels"])


def test_tlm_view_concatenates_each_pair(tokenizer):
    rows = english_spanish_rows(3)

    batch = ParallelCollator(tokenizer, views={"tlm"})(rows, generator=torch.Generator().manual_seed(0))

    assert batch["tlm_input_ids"].shape[0] == len(rows)
    # Undo the corruption with the labels, then read the pair back.
    restored = torch.where(batch["tlm_labels"] != -100, batch["tlm_labels"], batch["tlm_input_ids"])
    for r, row in enumerate(rows):
        ids = [i for i, keep in zip(restored[r].tolist(), batch["tlm_attention_mask"][r].tolist()) if keep]
        assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
        separator = [t for t in range(1, len(ids) - 1) if ids[t] == ids[t + 1] == tokenizer.eos_token_id]
        assert len(separator) == 1  # <s> A </s></s> B </s>
        cut = separator[0]
        assert tokenizer.decode(ids[1:cut]).strip() == row["src"]
        assert tokenizer.decode(ids[cut + 2 : -1]).strip() == row["tgt"]


def test_tlm_labels_only_on_content_tokens(tokenizer):
    rows = english_spanish_rows(3)

    batch = ParallelCollator(tokenizer, views={"tlm"}, mlm_probability=0.5)(
        rows, generator=torch.Generator().manual_seed(3)
    )

    for r in range(batch["tlm_labels"].shape[0]):
        for t in range(batch["tlm_labels"].shape[1]):
            if batch["tlm_labels"][r, t] != -100:
                assert batch["tlm_labels"][r, t].item() not in special_ids(tokenizer)
                assert batch["tlm_attention_mask"][r, t] == 1


# --------------------------------------------------------------------------- mask_tokens statistics


def test_mask_tokens_selection_rate_and_80_10_10_split(tokenizer):
    generator = torch.Generator().manual_seed(0)
    vocab = len(tokenizer)
    input_ids = torch.randint(5, vocab, (200, 500), generator=generator)  # no special ids
    candidates = torch.rand(200, 500, generator=generator) < 0.7

    corrupted, labels = mask_tokens(
        input_ids, candidates, tokenizer.mask_token_id, vocab, 0.15, generator=torch.Generator().manual_seed(1)
    )

    selected = labels != -100
    n_candidates, n_selected = int(candidates.sum()), int(selected.sum())
    assert not (selected & ~candidates).any()
    assert abs(n_selected / n_candidates - 0.15) < 0.01
    to_mask = int((selected & (corrupted == tokenizer.mask_token_id)).sum())
    to_other = int((selected & (corrupted != tokenizer.mask_token_id) & (corrupted != input_ids)).sum())
    unchanged = int((selected & (corrupted == input_ids)).sum())
    assert abs(to_mask / n_selected - 0.8) < 0.02
    # A random replacement can draw the original id or <mask> (2 of `vocab` ids), hence the slack.
    assert abs(to_other / n_selected - 0.1) < 0.02
    assert abs(unchanged / n_selected - 0.1) < 0.02
    assert torch.equal(corrupted[~selected], input_ids[~selected])
