"""Throughput of the POS data path: CoNLL-U reading + tokenizing + label alignment, in sentences/s.

    .venv/bin/python benchmarks/conllu_throughput.py [--min-run-time 5]

Goal (issue 5): >= 5,000 sentences/s on a 2-core machine with a fast tokenizer. Reads the
shipped treebanks (recipes/data/pos, ~4,400 sentences) with the tokenizer of the demo's
encoder when it is built (.cache/e5-small-demo, XLM-R's SentencePiece), else a tokenizer
trained here. Prints each stage's rate and the whole path's; the baseline in the same run is
reading alone, so the ratio shows what tokenizing and alignment add. Each stage is timed with
`torch.utils.benchmark` (`blocked_autorange`): medians, and the interquartile range as the spread.
"""

from __future__ import annotations

import argparse

import _environment  # noqa: F401  (first: it switches the Hugging Face libraries offline)
import datasets
import torch
from _environment import REPO
from _timing import measure
from torch.utils.benchmark import Measurement
from transformers import AutoTokenizer

from hf_xalign.data.conllu import read_conllu, tokenize_and_align_labels
from hf_xalign.tiny import train_tokenizer

TREEBANKS = sorted((REPO / "recipes" / "data" / "pos").glob("*/*.conllu"))
DEMO_MODEL = REPO / ".cache" / "e5-small-demo"


def rate(sentences: int, measurement: Measurement) -> str:
    """Sentences per second at the median time, and the time's interquartile range relative to the median."""
    return f"{sentences / measurement.median:10,.0f} sentences/s  (IQR {measurement.iqr / measurement.median:.1%} of the time)"


def main(min_run_time: float) -> None:
    datasets.disable_progress_bars()
    datasets.disable_caching()  # every call does the work, none is read back from a cache file
    if DEMO_MODEL.is_dir():
        tokenizer, name = AutoTokenizer.from_pretrained(DEMO_MODEL), "e5-small-demo (XLM-R SentencePiece)"
    else:
        texts = [" ".join(words) for words in read_conllu(TREEBANKS)["words"]]
        tokenizer, name = train_tokenizer(texts, vocab_size=8000), "Unigram trained here (8k)"
    sentences = len(read_conllu(TREEBANKS))

    read = measure(lambda: read_conllu(TREEBANKS), min_run_time)
    treebank = read_conllu(TREEBANKS)
    tokenize = measure(lambda: tokenize_and_align_labels(treebank, tokenizer), min_run_time)
    whole = measure(lambda: tokenize_and_align_labels(read_conllu(TREEBANKS), tokenizer), min_run_time)

    print(f"torch {torch.__version__}, datasets {datasets.__version__}, tokenizer: {name} (fast={tokenizer.is_fast})")
    print(
        f"{len(TREEBANKS)} files, {sentences} sentences; calls per stage: "
        f"{len(read.times)} / {len(tokenize.times)} / {len(whole.times)} (at least {min_run_time:g} s each)"
    )
    print(f"read CoNLL-U:            {rate(sentences, read)}")
    print(f"tokenize + align labels: {rate(sentences, tokenize)}")
    print(f"whole path:              {rate(sentences, whole)}  (goal >= 5,000)")
    # The stages are timed one after the other, not paired round by round: the range pairs the slow end
    # (median + IQR/2) of one with the fast end (median - IQR/2) of the other.
    low = (whole.median - whole.iqr / 2) / (read.median + read.iqr / 2)
    high = (whole.median + whole.iqr / 2) / (read.median - read.iqr / 2)
    print(
        f"whole path / reading alone: {whole.median / read.median:.2f}x the time  (median +- IQR/2: {low:.2f}-{high:.2f})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--min-run-time", type=float, default=5.0, help="seconds of timing per stage, at least (default 5)"
    )
    main(parser.parse_args().min_run_time)
