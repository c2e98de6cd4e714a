"""`xalign inspect CHECKPOINT`: how a saved model was aligned (its `alignment_config.json`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..experiment.exits import EXIT_USER_ERROR

if TYPE_CHECKING:
    from .._compat import SubParsersAction


def inspect_checkpoint(args: argparse.Namespace) -> int:
    """Print how a saved model was aligned (its alignment_config.json)."""
    from ..files import ALIGNMENT_CONFIG_NAME

    path = Path(args.checkpoint) / ALIGNMENT_CONFIG_NAME
    if not path.is_file():
        print(f"xalign: {path} not found: not a checkpoint saved by AlignmentTrainer.", file=sys.stderr)
        return EXIT_USER_ERROR
    print(json.dumps(json.loads(path.read_text(encoding="utf-8")), indent=2))
    return 0


def add_inspect_command(subparsers: SubParsersAction) -> argparse.ArgumentParser:
    """Add `inspect CHECKPOINT` to `subparsers`; its handler is `args.run`."""
    parser = subparsers.add_parser("inspect", help="show how a saved model was aligned")
    parser.add_argument("checkpoint", help="a directory written by AlignmentTrainer (output_dir or checkpoint-N)")
    parser.set_defaults(run=inspect_checkpoint)
    return parser
