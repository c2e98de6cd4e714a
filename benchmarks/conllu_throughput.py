"""Throughput of the POS data path: CoNLL-U reading + tokenizing + label alignment, in sentences/s.

    .venv/bin/python benchmarks/conllu_throughput.py [--repeats 5]

Goal (issue 5): >= 5,000 sentences/s on a 2-core machine with a fast tokenizer. Reads the
shipped treebanks (recipes/data/pos, ~4,400 sentences) with the tokenizer of the demo's
encoder when it is built (.cache/e5-small-demo, XLM-R's SentencePiece), else a tokenizer
trained here. Prints each stage's rate and the whole path's; the baseline in the same run is
reading alone, so the ratio shows what tokenizing and alignment add. Times are medians.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import datasets
import torch
from transformers import AutoTokenizer

from hf_xalign.data.conllu import read_conllu, tokenize_and_align_labels
from hf_xalign.tiny import train_tokenizer

REPO = Path(__file__).resolve().parent.parent
TREEBANKS = sorted((REPO / "recipes" / "data" / "pos").glob("*/*.conllu"))
DEMO_MODEL = REPO / ".cache" / "e5-small-demo"


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(repeats: int) -> None:
    datasets.disable_progress_bars()
    datasets.disable_caching()  # every repeat does the work, none is read back from a cache file
    if DEMO_MODEL.is_dir():
        tokenizer, name = AutoTokenizer.from_pretrained(DEMO_MODEL), "e5-small-demo (XLM-R SentencePiece)"
    else:
        texts = [" ".join(words) for words in read_conllu(TREEBANKS)["words"]]
        tokenizer, name = train_tokenizer(texts, vocab_size=8000), "Unigram trained here (8k)"
    sentences = len(read_conllu(TREEBANKS))

    read = median_seconds(lambda: read_conllu(TREEBANKS), repeats)
    treebank = read_conllu(TREEBANKS)
    tokenize = median_seconds(lambda: tokenize_and_align_labels(treebank, tokenizer), repeats)
    whole = median_seconds(lambda: tokenize_and_align_labels(read_conllu(TREEBANKS), tokenizer), repeats)

    print(f"torch {torch.__version__}, datasets {datasets.__version__}, tokenizer: {name} (fast={tokenizer.is_fast})")
    print(f"{len(TREEBANKS)} files, {sentences} sentences, median of {repeats} runs")
    print(f"read CoNLL-U:            {sentences / read:10,.0f} sentences/s")
    print(f"tokenize + align labels: {sentences / tokenize:10,.0f} sentences/s")
    print(f"whole path:              {sentences / whole:10,.0f} sentences/s  (goal >= 5,000)")
    print(f"whole path / reading alone: {whole / read:.2f}x the time")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    main(parser.parse_args().repeats)
