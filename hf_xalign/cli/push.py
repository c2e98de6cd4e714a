"""`xalign push RUN_DIR --repo-id ID`: a finished run's model, with its card, to the Hub."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._compat import SubParsersAction

TOKEN_HELP = "Hub token (default: HF_TOKEN or the login cache); never written anywhere"


def model_folder(run_dir: str, cell: str | None) -> str:
    """The model folder to publish: `run_dir` itself, or a cell of the experiment in `run_dir`.

    In an experiment folder (with `results.jsonl`) the cell is `cell`, by default the first one that
    is not the `baseline`.
    """
    from ..experiment.report import read_results
    from ..files import RESULTS_JSONL

    if not os.path.isfile(os.path.join(run_dir, RESULTS_JSONL)):
        if cell is not None:
            raise ValueError(f"{run_dir} is not an experiment folder (no {RESULTS_JSONL}): --cell does not apply.")
        return run_dir
    results = read_results(run_dir)
    names = [result.name for result in results]
    chosen = cell or next((name for name in names if name != "baseline"), None)
    if chosen not in names:
        raise ValueError(f"{run_dir} has no cell {chosen!r}; its cells: {', '.join(names)}.")
    return os.path.join(run_dir, chosen)


def push(args: argparse.Namespace) -> int:
    """Push a finished run's model, with its card, to the Hub."""
    from ..hub import push_aligned

    folder = model_folder(args.run_dir, args.cell)
    url = push_aligned(
        folder, args.repo_id, token=args.token, private=args.private, include_loss_heads=args.include_loss_heads
    )
    print(f"pushed {folder} to {url}")
    return 0


def add_push_command(subparsers: SubParsersAction) -> argparse.ArgumentParser:
    """Add `push RUN_DIR --repo-id ID [...]` to `subparsers`; its handler is `args.run`."""
    parser = subparsers.add_parser("push", help="push a finished run's model and card to the Hub")
    parser.add_argument("run_dir", help="a recipe's output_dir (an experiment) or a saved model folder")
    parser.add_argument("--repo-id", required=True, help="the Hub repository, e.g. user/xlmr-pos-aligned")
    parser.add_argument("--cell", help="which cell of an experiment (default: the first that is not baseline)")
    parser.add_argument("--private", action="store_true", help="create the repository private")
    parser.add_argument("--include-loss-heads", action="store_true", help="also push the loss-owned heads")
    parser.add_argument("--token", help=TOKEN_HELP)
    parser.set_defaults(run=push)
    return parser
