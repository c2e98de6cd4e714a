"""`xalign analyze MODEL --pairs FILE_OR_DIR`: per-layer alignment measures of an encoder on parallel text
([`~hf_xalign.analysis.analyze.analyze_model`]), written as a tidy table."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ..files import ANALYSIS_NAME

if TYPE_CHECKING:
    from .._compat import SubParsersAction


def run_analyze(args: argparse.Namespace) -> int:
    """`xalign analyze`: analyze, write the table, print where and a per-pair summary."""
    from ..analysis.analyze import analyze_model, check_table_path, summarize, write_table
    from ..analysis.measures import MEASURES
    from ..pooling import POOLINGS

    output = Path(args.output)
    check_table_path(output)  # before the model loads and runs
    if args.pooling not in POOLINGS:
        raise ValueError(f"--pooling {args.pooling!r}: choose one of {', '.join(POOLINGS)}")
    rows = analyze_model(
        args.model,
        args.pairs,
        layers=args.layers,
        pooling=args.pooling,
        batch_size=args.batch_size,
        max_length=args.max_length,
    )
    write_table(rows, output)
    pairs = len({row["pair"] for row in rows})
    layers = len({row["layer"] for row in rows})
    print(f"wrote {output}: {len(rows)} rows ({pairs} language pairs x {layers} layers x {len(MEASURES)} measures)")
    print(summarize(rows))
    return 0


def add_analyze_command(subparsers: SubParsersAction) -> argparse.ArgumentParser:
    """Add `analyze MODEL --pairs FILE_OR_DIR [...]` to `subparsers`; its handler is `args.run`."""
    parser = subparsers.add_parser(
        "analyze",
        help="per-layer cross-lingual alignment measures of an encoder on parallel text",
        description="Pair cosine, cosine gap, L2, linear CKA and retrieval P@1 per language pair and layer "
        "(layer 0 = embedding output, L = last block), written as a tidy table.",
    )
    parser.add_argument("model", help="a model folder with safetensors weights, or a Hub id")
    parser.add_argument(
        "--pairs",
        nargs="+",
        required=True,
        metavar="FILE_OR_DIR",
        help="parallel .tsv/.jsonl files, or folders (every *.tsv and *.jsonl in them, sorted)",
    )
    parser.add_argument(
        "--layers", nargs="+", type=int, metavar="K", help="layers, 0 = embedding output, -1 = last (default: all)"
    )
    # The names of hf_xalign.pooling.POOLINGS, checked in run_analyze: importing them here would import torch.
    parser.add_argument("--pooling", default="mean", help="sentence pooling: mean or cls (default: mean)")
    parser.add_argument("--batch-size", type=int, default=32, help="translation pairs per forward (default: 32)")
    parser.add_argument("--max-length", type=int, default=128, help="tokens per sentence (default: 128)")
    parser.add_argument("--output", default=ANALYSIS_NAME, help=f"the table, .csv or .json (default: {ANALYSIS_NAME})")
    parser.set_defaults(run=run_analyze)
    return parser
