"""Turning rows of parallel text into the tensors the alignment losses read."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

VIEWS: frozenset[str] = frozenset({"word_ids", "mlm", "tlm"})


class ParallelCollator:
    """Tokenizes a list of parallel pairs into one batch for the alignment forward.

    The returned dict always holds `input_ids`, `attention_mask` and `special_tokens_mask` of
    shape `(2 * pairs, seq)`: the source sentences in the first `pairs` rows, their translations
    in the same order in the last `pairs` rows, so that one encoder forward sees both sides.
    Sentences are tokenized from their whitespace-split words (`is_split_into_words`), which for
    SentencePiece tokenizers such as XLM-R's gives the same tokens as the raw sentence and lets
    word alignments `i-j` address words. Extra views, asked for by the losses' `requires`:

    - `"word_ids"`: `word_ids` `(2 * pairs, seq)`, the word index of each token, -1 for special
      tokens and padding; and `alignment`, each pair's links kept within the truncated words.
    - `"mlm"`: `mlm_input_ids` and `mlm_labels` `(2 * pairs, seq)`, a BERT-style corrupted copy.
    - `"tlm"`: `tlm_input_ids`, `tlm_attention_mask`, `tlm_labels` `(pairs, pair_seq)`, the
      concatenated pair (tokenizer pair format) with the same corruption.

    Args:
        tokenizer ([`PreTrainedTokenizerBase`]): a fast tokenizer (word ids need one).
        max_length (`int`, *optional*, defaults to `128`): tokens per sentence (per pair for TLM: twice).
        views (`Iterable[str]`, *optional*): extra views to build, a subset of `{"word_ids", "mlm", "tlm"}`.
        mlm_probability (`float`, *optional*, defaults to `0.15`): share of content tokens to corrupt.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        max_length: int = 128,
        views: Iterable[str] = (),
        mlm_probability: float = 0.15,
    ) -> None:
        self.views = frozenset(views)
        unknown = self.views - VIEWS
        if unknown:
            raise ValueError(f"Unknown batch views {sorted(unknown)}; known: {sorted(VIEWS)}.")
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError("ParallelCollator needs a fast tokenizer (word ids come from `tokenizers`).")
        if self.views & {"mlm", "tlm"} and tokenizer.mask_token_id is None:
            raise ValueError("MLM/TLM losses need a tokenizer with a mask token.")
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.mlm_probability = mlm_probability

    def __call__(self, rows: list[dict[str, Any]], generator: torch.Generator | None = None) -> dict[str, Any]:
        """Collate `rows` (dicts with `src`, `tgt`, optional `alignment`); `generator` seeds the masking."""
        src_words = [row["src"].split() for row in rows]
        tgt_words = [row["tgt"].split() for row in rows]
        encoded = self.tokenizer(
            src_words + tgt_words,
            is_split_into_words=True,
            truncation=True,
            max_length=self.max_length,
            padding=True,
            return_special_tokens_mask=True,
            return_tensors="pt",
        )
        batch: dict[str, Any] = {
            "input_ids": encoded["input_ids"],
            "attention_mask": encoded["attention_mask"],
            "special_tokens_mask": encoded["special_tokens_mask"],
        }
        if "word_ids" in self.views:
            word_ids = torch.tensor(
                [[-1 if w is None else w for w in encoded.word_ids(row)] for row in range(2 * len(rows))],
                dtype=torch.long,
            )  # (2 * pairs, seq)
            batch["word_ids"] = word_ids
            batch["alignment"] = _links_within(rows, word_ids)
        if "mlm" in self.views:
            content = encoded["attention_mask"].bool() & ~encoded["special_tokens_mask"].bool()
            batch["mlm_input_ids"], batch["mlm_labels"] = mask_tokens(
                encoded["input_ids"], content, self.tokenizer, self.mlm_probability, generator
            )
        if "tlm" in self.views:
            pair = self.tokenizer(
                [row["src"] for row in rows],
                [row["tgt"] for row in rows],
                truncation=True,
                max_length=2 * self.max_length,
                padding=True,
                return_special_tokens_mask=True,
                return_tensors="pt",
            )
            content = pair["attention_mask"].bool() & ~pair["special_tokens_mask"].bool()
            batch["tlm_input_ids"], batch["tlm_labels"] = mask_tokens(
                pair["input_ids"], content, self.tokenizer, self.mlm_probability, generator
            )
            batch["tlm_attention_mask"] = pair["attention_mask"]
        return batch


def _links_within(rows: list[dict[str, Any]], word_ids: torch.Tensor) -> list[list[tuple[int, int]]]:
    """Each pair's word links, dropping those whose words were cut off by truncation."""
    pairs = len(rows)
    src_kept = (word_ids[:pairs].max(dim=1).values + 1).tolist()
    tgt_kept = (word_ids[pairs:].max(dim=1).values + 1).tolist()
    return [
        [(int(i), int(j)) for i, j in (row.get("alignment") or []) if i < src_kept[k] and j < tgt_kept[k]]
        for k, row in enumerate(rows)
    ]


def mask_tokens(
    input_ids: torch.Tensor,
    candidates: torch.Tensor,
    tokenizer: PreTrainedTokenizerBase,
    probability: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT-style corruption: of the selected tokens, 80% `<mask>`, 10% a random token, 10% kept.

    Each row with at least one candidate gets at least one selected token, so short
    sentences still contribute to the loss.

    Args:
        input_ids (`torch.Tensor` of shape `(rows, seq)`): token ids.
        candidates (`torch.Tensor` of shape `(rows, seq)`, bool): tokens that may be selected.
        tokenizer: gives the mask token id and the vocabulary size.
        probability (`float`): chance of each candidate being selected.
        generator (`torch.Generator`, *optional*): makes the corruption reproducible.

    Returns:
        `(corrupted_ids, labels)`: labels hold the original id where selected, -100 elsewhere.
    """
    draw = torch.rand(input_ids.shape, generator=generator)  # (rows, seq)
    selected = (draw < probability) & candidates
    # Rows where nothing was drawn get their candidate with the smallest draw.
    empty_rows = ~selected.any(dim=1) & candidates.any(dim=1)
    fallback = torch.where(candidates, draw, torch.full_like(draw, 2.0)).argmin(dim=1)  # (rows,)
    selected[empty_rows, fallback[empty_rows]] = True
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, -100))
    action = torch.rand(input_ids.shape, generator=generator)  # (rows, seq)
    corrupted = input_ids.clone()
    corrupted[selected & (action < 0.8)] = tokenizer.mask_token_id
    randomize = selected & (action >= 0.8) & (action < 0.9)
    random_ids = torch.randint(len(tokenizer), input_ids.shape, generator=generator)
    corrupted[randomize] = random_ids[randomize]
    return corrupted, labels
