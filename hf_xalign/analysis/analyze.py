"""Cross-lingual alignment of an encoder, layer by layer, on parallel text: the tidy table and `xalign analyze`.

For each batch of translation pairs, ONE no-grad forward of the encoder over the source and
target rows together (the batch [`~hf_xalign.data.ParallelCollator`] builds for the alignment
losses) returns all hidden states; each chosen layer is pooled by [`~hf_xalign.pooling.ParallelEncoding`],
the very code the losses read, and the measures of [`hf_xalign.analysis.measures`] are taken per
language pair and layer over all its pairs.

The table is tidy, one value per row, with the columns of [`COLUMNS`]:

| column | type | meaning |
|---|---|---|
| `model` | `str` | the model's name as given (`model_name`, or the path for [`analyze_model`]) |
| `pair` | `str` | language pair `"{src_lang}-{tgt_lang}"` |
| `layer` | `int` | layer number, `0` (embedding output) to `L` (last block), as [`hf_xalign.layers`] states |
| `measure` | `str` | one of [`~hf_xalign.analysis.measures.MEASURES`] |
| `value` | `float` | the measure's value |
| `n` | `int` | number of translation pairs it is computed over |

Example:

```python
>>> from hf_xalign.analysis import analyze_model, write_table
>>> rows = analyze_model("runs/pos/aligned", "recipes/data/django/parallel", layers=[0, 6, -1])
>>> write_table(rows, "analysis.csv")
```
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import datasets
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..adapters import encoder_of
from ..data.collator import ParallelCollator
from ..data.parallel import ParallelSource, load_parallel
from ..hub import load_aligned
from ..layers import resolve_layer
from ..pooling import POOLINGS, ParallelEncoding, Pooling
from .measures import measure_all

if TYPE_CHECKING:
    pass

__all__ = [
    "COLUMNS",
    "analyze",
    "analyze_model",
    "check_table_path",
    "expand_pair_sources",
    "group_by_language_pair",
    "length_sorted_batches",
    "pair_lengths",
    "read_table",
    "resolve_layers",
    "summarize",
    "write_table",
]

COLUMNS: tuple[str, ...] = ("model", "pair", "layer", "measure", "value", "n")
_COLUMN_TYPES = {"model": str, "pair": str, "layer": int, "measure": str, "value": float, "n": int}
TABLE_SUFFIXES: tuple[str, ...] = (".csv", ".json")
PAIR_FILE_SUFFIXES: tuple[str, ...] = (".tsv", ".jsonl")


def resolve_layers(layers: Sequence[int] | None, num_layers: int) -> list[int]:
    """The non-negative numbers of `layers` (all, `0..num_layers`, when `None`), in order, each once.

    Raises:
        `ValueError`: from [`~hf_xalign.layers.resolve_layer`] for a layer the model does not have (the
            message gives the valid range), or when `layers` is empty.
    """
    if layers is None:
        return list(range(num_layers + 1))
    if len(layers) == 0:
        raise ValueError("no layers to analyze; pass None for all of them")
    return list(dict.fromkeys(resolve_layer(layer, num_layers) for layer in layers))


def group_by_language_pair(pairs: datasets.Dataset) -> dict[str, list[dict[str, str]]]:
    """The pairs as `{"src", "tgt"}` rows grouped by `"{src_lang}-{tgt_lang}"`.

    Groups come in order of first appearance, rows in input order. Missing language columns count as `""`.
    """
    empty = [""] * len(pairs)
    src_langs = pairs["src_lang"] if "src_lang" in pairs.column_names else empty
    tgt_langs = pairs["tgt_lang"] if "tgt_lang" in pairs.column_names else empty
    groups: dict[str, list[dict[str, str]]] = {}
    for src, tgt, src_lang, tgt_lang in zip(pairs["src"], pairs["tgt"], src_langs, tgt_langs):
        groups.setdefault(f"{src_lang}-{tgt_lang}", []).append({"src": src, "tgt": tgt})
    return groups


def _check_group_sizes(groups: dict[str, list[dict[str, str]]]) -> None:
    if not groups:
        raise ValueError("no translation pairs to analyze")
    for pair, rows in groups.items():
        if len(rows) < 2:
            raise ValueError(
                f"language pair {pair!r} has {len(rows)} translation pair; the measures need at least 2 "
                "(retrieval among 1 candidate, and the cosine of non-translations, mean nothing)"
            )


def pair_lengths(tokenizer: PreTrainedTokenizerBase, rows: list[dict[str, str]], max_length: int) -> list[int]:
    """Tokens of the longer side of each pair, as [`~hf_xalign.data.ParallelCollator`] tokenizes (and truncates) it."""
    words = [row["src"].split() for row in rows] + [row["tgt"].split() for row in rows]
    ids = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length)["input_ids"]
    return [max(len(src), len(tgt)) for src, tgt in zip(ids[: len(rows)], ids[len(rows) :])]


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices `0..len(lengths)-1` in batches of `batch_size`, shortest first, so that each batch pads little.

    Source and target rows of a batch are padded together, so a pair's length is its longer side's
    ([`pair_lengths`]). Ties keep the input order.
    """
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


@torch.no_grad()
def _pooled_layers(
    encoder: PreTrainedModel,
    collator: ParallelCollator,
    rows: list[dict[str, str]],
    layers: list[int],
    pooling: Pooling,
    batch_size: int,
) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """Sentence vectors of each layer over `rows`: `{layer: (source (n, dim), target (n, dim))}`.

    The rows come in the order of [`length_sorted_batches`], not the input's: every measure is the same
    for any order of the pairs (the same order on both sides).
    """
    sources: dict[int, list[torch.Tensor]] = {layer: [] for layer in layers}
    targets: dict[int, list[torch.Tensor]] = {layer: [] for layer in layers}
    lengths = pair_lengths(collator.tokenizer, rows, collator.max_length)
    for indices in length_sorted_batches(lengths, batch_size):
        batch = collator([rows[i] for i in indices])  # source rows, then target rows
        encoding = ParallelEncoding(encoder, {key: value.to(encoder.device) for key, value in batch.items()})
        for layer in layers:
            source, target = encoding.sentence_embeddings(layer, pooling)  # (pairs, dim) each
            sources[layer].append(source)
            targets[layer].append(target)
    return {layer: (torch.cat(sources[layer]), torch.cat(targets[layer])) for layer in layers}


def analyze(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    pairs: datasets.Dataset,
    *,
    layers: Sequence[int] | None = None,
    pooling: Pooling = "mean",
    batch_size: int = 32,
    max_length: int = 128,
    model_name: str = "model",
) -> list[dict[str, Any]]:
    """Alignment measures of `model` per language pair and layer, as tidy rows.

    Pairs are grouped by language pair; each group runs in batches of `batch_size` pairs of similar length
    in tokens ([`length_sorted_batches`], less padding), each batch ONE no-grad forward of the encoder
    (`model.base_model`) over its `2 * batch_size` source and target rows.
    The model is in eval mode meanwhile (no dropout) and goes back to its previous mode after.

    Args:
        model ([`PreTrainedModel`]): an encoder, or a task model whose `base_model` is one; either may be wrapped
            by PEFT (an adapter as [`~hf_xalign.load_aligned`] loads it).
        tokenizer ([`PreTrainedTokenizerBase`]): its fast tokenizer.
        pairs ([`datasets.Dataset`]): columns `src`, `tgt`, `src_lang`, `tgt_lang`, as
            [`~hf_xalign.data.load_parallel`] returns; at least 2 pairs per language pair.
        layers (`Sequence[int]`, *optional*): layer numbers as [`hf_xalign.layers`] states (negative ones
            count from the end); by default every layer, `0` (embedding output) to `L` (last block).
        pooling (`str`, *optional*, defaults to `"mean"`): `"mean"` over the non-special, non-padding
            tokens, or `"cls"` (first token), as the alignment losses pool.
        batch_size (`int`, *optional*, defaults to `32`): translation pairs per forward.
        max_length (`int`, *optional*, defaults to `128`): tokens per sentence (longer ones are truncated).
        model_name (`str`, *optional*, defaults to `"model"`): the `model` column of the rows.

    Returns:
        `list[dict]`: one row per (language pair, layer, measure), with the keys of [`COLUMNS`], ordered
        by language pair (first appearance), layer (as given) and measure ([`~hf_xalign.analysis.MEASURES`]).

    Raises:
        `ValueError`: before any forward, for a layer the model does not have (naming the valid range), an
            unknown pooling, a `batch_size` below 1, or a language pair with fewer than 2 translation pairs.
    """
    encoder = encoder_of(model)
    chosen = resolve_layers(layers, encoder.config.num_hidden_layers)
    if pooling not in POOLINGS:
        raise ValueError(f"Unknown pooling {pooling!r}; choose one of {POOLINGS}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    groups = group_by_language_pair(pairs)
    _check_group_sizes(groups)
    collator = ParallelCollator(tokenizer, max_length=max_length)
    was_training = model.training
    model.eval()
    try:
        table = []
        for pair, rows in groups.items():
            per_layer = _pooled_layers(encoder, collator, rows, chosen, pooling, batch_size)
            for layer in chosen:
                for measure, value in measure_all(*per_layer[layer]).items():
                    table.append(
                        {
                            "model": model_name,
                            "pair": pair,
                            "layer": layer,
                            "measure": measure,
                            "value": value,
                            "n": len(rows),
                        }
                    )
    finally:
        model.train(was_training)
    return table


def expand_pair_sources(sources: ParallelSource | list[ParallelSource]) -> list[ParallelSource]:
    """`sources` as a list, each folder replaced by its `*.tsv` and `*.jsonl` files, sorted by name.

    Raises:
        `ValueError`: a folder holds no such file.
    """
    expanded: list[ParallelSource] = []
    for source in sources if isinstance(sources, list) else [sources]:
        if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
            files = sorted(p for p in Path(source).iterdir() if p.suffix in PAIR_FILE_SUFFIXES and p.is_file())
            if not files:
                raise ValueError(f"{source} is a folder without pair files (expected *.tsv or *.jsonl in it)")
            expanded += [str(p) for p in files]
        else:
            expanded.append(source)
    return expanded


def analyze_model(
    model_name_or_path: str | os.PathLike, pairs_source: ParallelSource | list[ParallelSource], **options: Any
) -> list[dict[str, Any]]:
    """[`analyze`] a saved encoder on pairs read from files, folders or datasets.

    The pairs are read first, by [`~hf_xalign.data.load_parallel`] (folders: every `*.tsv` / `*.jsonl` in
    them, sorted), so that malformed input fails with its `"{path}:{line}: ..."` error before the model
    loads; the model loads with [`~hf_xalign.load_aligned`]`(..., task="encoder")`, from safetensors only.

    Args:
        model_name_or_path (`str` or `os.PathLike`): a model folder or a Hub id.
        pairs_source: a source [`~hf_xalign.data.load_parallel`] accepts, a folder, or a list of those.
        **options: keyword arguments of [`analyze`]; `model_name` defaults to `model_name_or_path`.
    """
    pairs = load_parallel(expand_pair_sources(pairs_source))
    model, tokenizer, _ = load_aligned(str(model_name_or_path), task="encoder")
    options.setdefault("model_name", str(model_name_or_path))
    return analyze(model, tokenizer, pairs, **options)


# --------------------------------------------------------------------------- the table on disk


def check_table_path(path: Path) -> None:
    """Refuse, before any work, a table path whose suffix [`write_table`] cannot write."""
    if path.suffix not in TABLE_SUFFIXES:
        raise ValueError(f"cannot write a table to {path}: expected a file name ending in .csv or .json")


def _table_text(rows: list[dict[str, Any]], suffix: str) -> str:
    for index, row in enumerate(rows):
        if set(row) != set(COLUMNS):
            raise ValueError(f"table row {index} has keys {sorted(row)}; expected {list(COLUMNS)}")
    if suffix == ".json":
        # JSON has no NaN (linear_cka of a constant set): it is written as null.
        clean = [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()} for row in rows]
        return "[\n" + ",\n".join(json.dumps(row, allow_nan=False) for row in clean) + "\n]\n"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_table(rows: list[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Write the rows of [`analyze`] to a `.csv` (header [`COLUMNS`]) or `.json` (a list of objects) file.

    Atomic: the text is written to a temporary file next to `path`, then renamed over it, so `path` is
    either the old file or the complete new one, never half-written. Missing folders are created.

    Returns:
        `Path`: the file written.

    Raises:
        `ValueError`: another suffix, or a row without exactly the keys of [`COLUMNS`] (nothing is written).
    """
    path = Path(path)
    check_table_path(path)
    text = _table_text(rows, path.suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as file:
            file.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return path


def read_table(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows a [`write_table`] file holds, with their types back (`layer`, `n` int; `value` float, NaN for null)."""
    path = Path(path)
    check_table_path(path)
    with open(path, encoding="utf-8", newline="") as file:
        raw = json.load(file) if path.suffix == ".json" else list(csv.DictReader(file))
    return [
        {name: float("nan") if row[name] is None else kind(row[name]) for name, kind in _COLUMN_TYPES.items()}
        for row in raw
    ]


# --------------------------------------------------------------------------- the command


def summarize(rows: list[dict[str, Any]]) -> str:
    """A short text table: per language pair, its best layer (highest mean of the two P@1) and its values there."""
    values: dict[tuple[str, int], dict[str, float]] = {}
    sizes: dict[str, int] = {}
    for row in rows:
        values.setdefault((row["pair"], row["layer"]), {})[row["measure"]] = row["value"]
        sizes[row["pair"]] = row["n"]
    shown = ("retrieval_src_to_tgt", "retrieval_tgt_to_src", "cosine_gap", "pair_cosine")
    headers = ("P@1 src->tgt", "P@1 tgt->src", "cosine_gap", "pair_cosine")
    width = max(len("pair"), *(len(pair) for pair in sizes))
    lines = [f"{'pair':<{width}} {'n':>6} {'best layer':>10} " + " ".join(f"{h:>12}" for h in headers)]
    for pair, n in sizes.items():
        layers = [layer for (p, layer) in values if p == pair]
        best = max(layers, key=lambda layer: (sum(values[pair, layer][m] for m in shown[:2]), -layer))
        numbers = " ".join(f"{values[pair, best][m]:>12.3f}" for m in shown)
        lines.append(f"{pair:<{width}} {n:>6} {best:>10} {numbers}")
    return "\n".join(lines)
