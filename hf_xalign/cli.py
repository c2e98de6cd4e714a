"""The `xalign` command: list losses, inspect a saved model, push a run to the Hub, download one,
measure alignment per layer, write the alignment-vs-transfer report, serve a local Hub."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .analysis.analyze import add_analyze_command
from .analysis.report.build import add_report_command, run_report
from .experiment.exits import EXIT_INTERRUPTED, EXIT_USER_ERROR, OneLineParser
from .experiment.report import read_results
from .experiment.study.inputs import is_study_dir
from .experiment.study.report import build_study_report
from .files import ALIGNMENT_CONFIG_NAME, RESULTS_JSONL
from .hub import HubError, download_aligned, push_aligned
from .local_hub.command import add_hub_server_command
from .losses import LOSS_REGISTRY


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if text and text.strip() else ""


def list_losses(_: argparse.Namespace) -> int:
    """Print the registered alignment losses with their one-line descriptions."""
    width = max(len(name) for name in LOSS_REGISTRY)
    for name, cls in sorted(LOSS_REGISTRY.items()):
        print(f"{name:<{width}}  {_first_line(cls.__doc__)}")
    return 0


def inspect_checkpoint(args: argparse.Namespace) -> int:
    """Print how a saved model was aligned (its alignment_config.json)."""
    path = Path(args.checkpoint) / ALIGNMENT_CONFIG_NAME
    if not path.is_file():
        print(f"xalign: {path} not found: not a checkpoint saved by AlignmentTrainer.", file=sys.stderr)
        return EXIT_USER_ERROR
    print(json.dumps(json.loads(path.read_text(encoding="utf-8")), indent=2))
    return 0


def model_folder(run_dir: str, cell: str | None) -> str:
    """The model folder to publish: `run_dir` itself, or a cell of the experiment in `run_dir`.

    In an experiment folder (with `results.jsonl`) the cell is `cell`, by default the first one that
    is not the `baseline`.
    """
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
    folder = model_folder(args.run_dir, args.cell)
    url = push_aligned(
        folder, args.repo_id, token=args.token, private=args.private, include_loss_heads=args.include_loss_heads
    )
    print(f"pushed {folder} to {url}")
    return 0


def download(args: argparse.Namespace) -> int:
    """Fetch an aligned model into the Hugging Face cache and print its folder."""
    print(download_aligned(args.repo_id, revision=args.revision, token=args.token, cache_dir=args.cache_dir))
    return 0


def report(args: argparse.Namespace) -> int:
    """`xalign report`: the study report for study folders (with study.yaml), the run report for run folders."""
    studies = [folder for folder in args.run_dirs if is_study_dir(folder)]
    if not studies:
        return run_report(args)
    if len(studies) != len(args.run_dirs):
        runs = ", ".join(folder for folder in args.run_dirs if folder not in studies)
        raise ValueError(f"give study folders (with study.yaml) or run folders, not both: no study.yaml in {runs}")
    print(build_study_report(args.run_dirs, args.output))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="xalign", description="hf-xalign: cross-lingual alignment tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("losses", help="list the registered alignment losses").set_defaults(run=list_losses)
    inspect = commands.add_parser("inspect", help="show how a saved model was aligned")
    inspect.add_argument("checkpoint", help="a directory written by AlignmentTrainer (output_dir or checkpoint-N)")
    inspect.set_defaults(run=inspect_checkpoint)
    token_help = "Hub token (default: HF_TOKEN or the login cache); never written anywhere"
    push_command = commands.add_parser("push", help="push a finished run's model and card to the Hub")
    push_command.add_argument("run_dir", help="a recipe's output_dir (an experiment) or a saved model folder")
    push_command.add_argument("--repo-id", required=True, help="the Hub repository, e.g. user/xlmr-pos-aligned")
    push_command.add_argument("--cell", help="which cell of an experiment (default: the first that is not baseline)")
    push_command.add_argument("--private", action="store_true", help="create the repository private")
    push_command.add_argument("--include-loss-heads", action="store_true", help="also push the loss-owned heads")
    push_command.add_argument("--token", help=token_help)
    push_command.set_defaults(run=push)
    download_command = commands.add_parser("download", help="fetch an aligned model into the cache, print where")
    download_command.add_argument("repo_id")
    download_command.add_argument("--revision", help="a branch, tag or commit (default: main)")
    download_command.add_argument("--cache-dir", help="instead of the Hugging Face cache")
    download_command.add_argument("--token", help=token_help)
    download_command.set_defaults(run=download)
    add_analyze_command(commands)
    add_report_command(commands).set_defaults(run=report)
    add_hub_server_command(commands)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (HubError, ValueError, FileNotFoundError) as error:  # the commands' own checks, data files, the Hub
        print(f"xalign: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"xalign {args.command}: interrupted; run the same command again to redo it", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
