"""Throughput of the per-layer alignment analysis (`hf_xalign.analysis.analyze`), against a bare forward.

    .venv/bin/python benchmarks/analysis_throughput.py --threads 1            # ~12 min on one core
    .venv/bin/python benchmarks/analysis_throughput.py --quick --threads 1    # ~2 min smoke run

Goal (issue 11): `analyze` takes at most 1.10x the time of a bare no-grad forward of the SAME batches
with `output_hidden_states=True`: sorting by length, collating, pooling every layer and the measures add
at most 10%.

Model: the demo encoder (`.cache/e5-small-demo`: BERT, 12 layers, hidden 384, 12 heads, intermediate
1536, 15k-piece XLM-R SentencePiece vocabulary) when it is built, else a randomly initialised BERT of
the same shape with a 16k-piece tokenizer trained here (`_fixtures.build_tokenizer`). Data: the
Django pairs (`recipes/data/django/parallel/*.tsv`, English to seven languages, ~2.3k pairs), or
their first `--pairs-per-language` pairs of each language pair.

Variants, interleaved round by round (`_timing.interleave`); one step is one whole pass over the pairs:

(f) bare forward: `encoder(input_ids=..., attention_mask=..., output_hidden_states=True)` under
    `torch.no_grad()` over the batches `analyze` builds (per language pair, 32 pairs = 64 rows each,
    pairs of similar length together: `length_sorted_batches`), collated in advance   (the baseline)
(a) `analyze(encoder, tokenizer, pairs)`: sorting by length, collating, the same forwards, all 13 layers pooled (mean),
    the six measures per language pair and layer

Prints each variant's median pass time, its IQR, sentences/s, the ratio (a)/(f) with the paired
ratio over rounds and its min-max; then what (a) adds, each piece timed alone with
`torch.utils.benchmark` (sorting and collating, pooling every layer, the measures) as a share of (f), which on a
shared machine is steadier than the ratio of whole passes.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import _environment
import datasets
import torch
from _environment import REPO, done
from _fixtures import build_tokenizer, load_pairs
from _timing import Variant, interleave, measure, print_ratios, timed_steps
from transformers import BertConfig, BertModel, PreTrainedModel, PreTrainedTokenizerBase

from hf_xalign.analysis import analyze, measure_all
from hf_xalign.analysis.analyze import group_by_language_pair, length_sorted_batches, pair_lengths
from hf_xalign.data import ParallelCollator
from hf_xalign.hub import load_aligned
from hf_xalign.pooling import ParallelEncoding

TITLE = "analysis_throughput: analyze vs a bare forward of the same batches"
DEMO_MODEL = REPO / ".cache" / "e5-small-demo"
BATCH_SIZE = 32  # translation pairs per forward, analyze's default
MAX_LENGTH = 128  # analyze's default


def first_pairs_per_language(pairs: datasets.Dataset, count: int) -> datasets.Dataset:
    """The first `count` pairs of each language pair."""
    seen: Counter[tuple[str, str]] = Counter()
    keep = []
    for index, languages in enumerate(zip(pairs["src_lang"], pairs["tgt_lang"])):
        seen[languages] += 1
        if seen[languages] <= count:
            keep.append(index)
    return pairs.select(keep)


def load_encoder(pairs: datasets.Dataset) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, str]:
    """The demo encoder if built, else a random BERT of its shape; with its tokenizer and a description."""
    if DEMO_MODEL.is_dir():
        model, tokenizer, _ = load_aligned(str(DEMO_MODEL), task="encoder")
        return model, tokenizer, "e5-small-demo"
    tokenizer = build_tokenizer(pairs)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=384,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=1536,
        pad_token_id=tokenizer.pad_token_id,
    )
    return BertModel(config), tokenizer, "random BERT of e5-small's shape (no .cache/e5-small-demo)"


def main(options: argparse.Namespace) -> None:
    wall_start = time.perf_counter()
    _environment.configure(options.threads)
    print(f"== {TITLE} ==")
    _environment.print_machine()
    pairs = load_pairs()
    if options.pairs_per_language:
        pairs = first_pairs_per_language(pairs, options.pairs_per_language)
    encoder, tokenizer, name = load_encoder(pairs)
    encoder.eval()
    groups = group_by_language_pair(pairs)
    collator = ParallelCollator(tokenizer, max_length=MAX_LENGTH)

    def collate_all() -> list[dict[str, torch.Tensor]]:
        return [
            collator([rows[i] for i in indices])
            for rows in groups.values()
            for indices in length_sorted_batches(pair_lengths(tokenizer, rows, MAX_LENGTH), BATCH_SIZE)
        ]

    batches = collate_all()
    sentences = 2 * len(pairs)
    tokens = sum(int(batch["attention_mask"].sum()) for batch in batches)
    padded = sum(batch["input_ids"].numel() for batch in batches)
    parameters = sum(p.numel() for p in encoder.parameters())
    print(
        f"model: {name}, {encoder.config.num_hidden_layers} layers, hidden {encoder.config.hidden_size}, "
        f"{parameters / 1e6:.2f}M parameters"
    )
    print(
        f"data: {len(groups)} language pairs, {len(pairs)} pairs = {sentences} sentences in {len(batches)} forwards "
        f"of <= {2 * BATCH_SIZE} rows; {tokens} tokens ({padded} with padding)"
    )

    @torch.no_grad()
    def bare_forward() -> None:
        for batch in batches:
            encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True)

    def run_analyze() -> None:
        analyze(encoder, tokenizer, pairs, batch_size=BATCH_SIZE, max_length=MAX_LENGTH)

    forward = Variant("(f) bare forward", lambda n: timed_steps(bare_forward, n))
    analysis = Variant("(a) analyze", lambda n: timed_steps(run_analyze, n))
    print(f"timing: up to {options.rounds} rounds of 1 pass per variant (budget {options.budget:.0f} s)")
    interleave([forward, analysis], rounds=options.rounds, steps=1, warmup=1, budget_s=options.budget)

    print_ratios([forward, analysis], forward, goal={analysis.name: 1.10})
    for variant in (forward, analysis):
        print(f"{variant.name:<34} {sentences / variant.wall.median:9.0f} sentences/s")
    print_extra_work(encoder, batches, groups, collate_all, forward.wall.median, options.quick)
    done(wall_start)


def print_extra_work(encoder, batches, groups, collate_all, forward_seconds: float, quick: bool) -> None:
    """What (a) does beyond (f), each piece timed alone, as a share of (f)'s median pass.

    Pooling is timed on one batch of median length (its forward run once, the hidden states cached by
    `ParallelEncoding`) and counted once per batch; the measures on random vectors of each language
    pair's size, for every layer.
    """
    min_run_time = 0.2 if quick else 1.0
    layers = range(encoder.config.num_hidden_layers + 1)
    batch = sorted(batches, key=lambda b: b["input_ids"].shape[1])[len(batches) // 2]
    encoding = ParallelEncoding(encoder, batch)
    with torch.no_grad():
        encoding.sentence_embeddings(0, "mean")  # runs the forward once; the timed calls read its cached states
    dim = encoder.config.hidden_size
    vectors = [(torch.randn(len(rows), dim), torch.randn(len(rows), dim)) for rows in groups.values()]
    pieces = {
        "sorting by length + collating, all": (measure(collate_all, min_run_time), 1),
        f"pooling {len(layers)} layers, per batch": (
            measure(lambda: [encoding.sentence_embeddings(k, "mean") for k in layers], min_run_time),
            len(batches),
        ),
        "measures, all pairs and layers": (
            measure(lambda: [measure_all(s, t) for s, t in vectors for _ in layers], min_run_time),
            1,
        ),
    }
    print("extra work of (a), timed alone (median, IQR) x times per pass = share of (f):")
    total = 0.0
    for name, (measurement, times) in pieces.items():
        share = times * measurement.median / forward_seconds
        total += share
        print(
            f"  {name:<32} {1e3 * measurement.median:8.2f} ms (IQR {1e3 * measurement.iqr:6.2f}) x {times:>3} = {share:.2%}"
        )
    print(f"  expected (a)/(f) from the pieces: {1 + total:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 48 pairs per language, 3 rounds")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5, quick 3)")
    parser.add_argument("--budget", type=float, default=None, help="seconds of timing before rounds stop early")
    parser.add_argument(
        "--pairs-per-language", type=int, default=None, help="first N pairs of each language pair (default all)"
    )
    parser.add_argument("--threads", type=int, default=_environment.THREADS, help="torch intra-op threads (default 2)")
    options = parser.parse_args()
    options.rounds = options.rounds or (3 if options.quick else 5)
    options.budget = options.budget or (30.0 if options.quick else 240.0)
    if options.quick and options.pairs_per_language is None:
        options.pairs_per_language = 48
    main(options)
