"""Turning rows of parallel text into the tensors the alignment losses read."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import datasets
import torch
from transformers import PreTrainedTokenizerBase

VIEWS: frozenset[str] = frozenset({"word_ids", "mlm", "tlm"})
# The column that marks a row as pre-tokenized by `ParallelCollator.encode`.
ENCODED_MARKER = "src_input_ids"


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
        # Read once here: collating pre-tokenized rows then never touches the tokenizer, whose
        # Rust object refuses concurrent use when the stream collates on a background thread.
        self.mask_token_id = tokenizer.mask_token_id
        self.pad_token_id = tokenizer.pad_token_id
        self.vocab_size = len(tokenizer)

    def __call__(self, rows: list[dict[str, Any]], generator: torch.Generator | None = None) -> dict[str, Any]:
        """Collate `rows`; `generator` seeds the masking.

        Rows are either raw (`src`, `tgt`, optional `alignment`), tokenized here as one batch, or
        carry the columns [`~ParallelCollator.encode`] added (a dataset tokenized once with
        [`~ParallelCollator.encode_dataset`]), which are only padded and stacked. Both give the
        same tensors for the same rows.
        """
        if rows and ENCODED_MARKER in rows[0]:
            padded = self._pad_encoded(rows)
        else:
            padded = self._tokenize(rows)
        batch: dict[str, Any] = {
            "input_ids": padded["input_ids"],
            "attention_mask": padded["attention_mask"],
            "special_tokens_mask": padded["special_tokens_mask"],
        }
        if "word_ids" in self.views:
            batch["word_ids"] = padded["word_ids"]  # (2 * pairs, seq)
            batch["alignment"] = _links_within(rows, padded["word_ids"])
        if "mlm" in self.views:
            content = padded["attention_mask"].bool() & ~padded["special_tokens_mask"].bool()
            batch["mlm_input_ids"], batch["mlm_labels"] = mask_tokens(
                padded["input_ids"], content, self.mask_token_id, self.vocab_size, self.mlm_probability, generator
            )
        if "tlm" in self.views:
            content = padded["tlm_attention_mask"].bool() & ~padded["tlm_special_tokens_mask"].bool()
            batch["tlm_input_ids"], batch["tlm_labels"] = mask_tokens(
                padded["tlm_input_ids"], content, self.mask_token_id, self.vocab_size, self.mlm_probability, generator
            )
            batch["tlm_attention_mask"] = padded["tlm_attention_mask"]
        return batch

    def encode(self, columns: dict[str, list[Any]]) -> dict[str, list[list[int]]]:
        """Tokenizes a batch of dataset columns once, unpadded: the batched `datasets.map` function.

        Adds `src_input_ids`, `src_special_tokens_mask`, `tgt_input_ids`, `tgt_special_tokens_mask`,
        and, for the views that need them, `src_word_ids` / `tgt_word_ids` (-1 for special tokens)
        and `tlm_input_ids` / `tlm_special_tokens_mask` (the pair, truncated to `2 * max_length`),
        each truncated exactly as a batch tokenized in [`~ParallelCollator.__call__`] is.
        """
        pairs = len(columns["src"])
        encoded = self.tokenizer(
            [text.split() for text in columns["src"]] + [text.split() for text in columns["tgt"]],
            is_split_into_words=True,
            truncation=True,
            max_length=self.max_length,
            return_special_tokens_mask=True,
        )
        out = {}
        for side, rows in (("src", range(pairs)), ("tgt", range(pairs, 2 * pairs))):
            out[f"{side}_input_ids"] = [encoded["input_ids"][row] for row in rows]
            out[f"{side}_special_tokens_mask"] = [encoded["special_tokens_mask"][row] for row in rows]
            if "word_ids" in self.views:
                out[f"{side}_word_ids"] = [[-1 if w is None else w for w in encoded.word_ids(row)] for row in rows]
        if "tlm" in self.views:
            pair = self.tokenizer(
                columns["src"],
                columns["tgt"],
                truncation=True,  # longest_first, as in a batch tokenized whole
                max_length=2 * self.max_length,
                return_special_tokens_mask=True,
            )
            out["tlm_input_ids"] = pair["input_ids"]
            out["tlm_special_tokens_mask"] = pair["special_tokens_mask"]
        return out

    def encode_dataset(self, dataset: datasets.Dataset) -> datasets.Dataset:
        """`dataset` with the columns of [`~ParallelCollator.encode`] added, tokenized once (batched, fast tokenizer).

        The result is kept in memory (`keep_in_memory=True`). The default `map` cache would write
        an Arrow file into the folder of a file-backed dataset, from every process of a
        distributed run at once, under a hash of the tokenizer that differs for each tokenizer
        object (so a later run would not find it anyway). The cost is one pass of the fast
        tokenizer over the corpus before training, which the steps then no longer pay. Ids are
        stored as int32 and masks as int8: under half the memory of the default int64 lists.
        """
        features = dataset.features.copy()
        for name in self.encoded_columns():
            dtype = "int8" if name.endswith("special_tokens_mask") else "int32"
            features[name] = datasets.Sequence(datasets.Value(dtype))  # datasets.List is 4.0+; see PARALLEL_FEATURES
        return dataset.map(
            self.encode,
            batched=True,
            keep_in_memory=True,
            features=features,
            desc="Tokenizing the parallel text",
        )

    def encoded_columns(self) -> list[str]:
        """The columns [`~ParallelCollator.encode`] adds for this collator's views."""
        per_side = ["input_ids", "special_tokens_mask"] + (["word_ids"] if "word_ids" in self.views else [])
        columns = [f"{side}_{name}" for side in ("src", "tgt") for name in per_side]
        if "tlm" in self.views:
            columns += ["tlm_input_ids", "tlm_special_tokens_mask"]
        return columns

    def _tokenize(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Raw rows tokenized as one padded batch (source rows, then target rows; the TLM pairs)."""
        encoded = self.tokenizer(
            [row["src"].split() for row in rows] + [row["tgt"].split() for row in rows],
            is_split_into_words=True,
            truncation=True,
            max_length=self.max_length,
            padding=True,
            return_special_tokens_mask=True,
            return_tensors="pt",
        )
        padded = {name: encoded[name] for name in ("input_ids", "attention_mask", "special_tokens_mask")}
        if "word_ids" in self.views:
            padded["word_ids"] = torch.tensor(
                [[-1 if w is None else w for w in encoded.word_ids(row)] for row in range(2 * len(rows))],
                dtype=torch.long,
            )  # (2 * pairs, seq)
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
            padded["tlm_input_ids"] = pair["input_ids"]
            padded["tlm_attention_mask"] = pair["attention_mask"]
            padded["tlm_special_tokens_mask"] = pair["special_tokens_mask"]
        return padded

    def _pad_encoded(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Rows tokenized by [`~ParallelCollator.encode`], padded as the tokenizer pads a batch.

        Padding goes on the tokenizer's `padding_side` with the pad id; padding positions get
        attention 0, special-token mask 1 (as `tokenizers` marks them) and word id -1.
        """
        missing = [name for name in self.encoded_columns() if name not in rows[0]]
        if missing:
            raise ValueError(
                f"The pre-tokenized rows lack the columns {missing} that this collator's views {sorted(self.views)} "
                "need: tokenize the dataset with this collator's `encode_dataset`."
            )
        pad = functools.partial(_pad, left=self.tokenizer.padding_side == "left")
        ids = [row["src_input_ids"] for row in rows] + [row["tgt_input_ids"] for row in rows]
        padded = {
            "input_ids": pad(ids, self.pad_token_id),
            "attention_mask": pad([[1] * len(row) for row in ids], 0),
            "special_tokens_mask": pad(
                [row["src_special_tokens_mask"] for row in rows] + [row["tgt_special_tokens_mask"] for row in rows], 1
            ),
        }
        if "word_ids" in self.views:
            padded["word_ids"] = pad([row["src_word_ids"] for row in rows] + [row["tgt_word_ids"] for row in rows], -1)
        if "tlm" in self.views:
            pair_ids = [row["tlm_input_ids"] for row in rows]
            padded["tlm_input_ids"] = pad(pair_ids, self.pad_token_id)
            padded["tlm_attention_mask"] = pad([[1] * len(row) for row in pair_ids], 0)
            padded["tlm_special_tokens_mask"] = pad([row["tlm_special_tokens_mask"] for row in rows], 1)
        return padded


def _pad(sequences: list[list[int]], value: int, left: bool) -> torch.Tensor:
    """Lists of ints stacked into one `(rows, longest)` long tensor, padded with `value` on one side."""
    longest = max(len(sequence) for sequence in sequences)
    if left:
        rows = [[value] * (longest - len(sequence)) + sequence for sequence in sequences]
    else:
        rows = [sequence + [value] * (longest - len(sequence)) for sequence in sequences]
    return torch.tensor(rows, dtype=torch.long)


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
    mask_token_id: int,
    vocab_size: int,
    probability: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT-style corruption: of the selected tokens, 80% `<mask>`, 10% a random token, 10% kept.

    Each row with at least one candidate gets at least one selected token, so short
    sentences still contribute to the loss.

    Args:
        input_ids (`torch.Tensor` of shape `(rows, seq)`): token ids.
        candidates (`torch.Tensor` of shape `(rows, seq)`, bool): tokens that may be selected.
        mask_token_id (`int`): the id written over 80% of the selected tokens.
        vocab_size (`int`): random replacements are drawn from `[0, vocab_size)` (`len(tokenizer)`).
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
    corrupted[selected & (action < 0.8)] = mask_token_id
    randomize = selected & (action >= 0.8) & (action < 0.9)
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator)
    corrupted[randomize] = random_ids[randomize]
    return corrupted, labels
