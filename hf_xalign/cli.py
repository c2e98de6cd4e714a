"""The `xalign` command."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .losses import LOSS_REGISTRY
from .trainer import ALIGNMENT_CONFIG_NAME


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
        return 2
    print(json.dumps(json.loads(path.read_text(encoding="utf-8")), indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="xalign", description="hf-xalign: cross-lingual alignment tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("losses", help="list the registered alignment losses").set_defaults(run=list_losses)
    inspect = commands.add_parser("inspect", help="show how a saved model was aligned")
    inspect.add_argument("checkpoint", help="a directory written by AlignmentTrainer (output_dir or checkpoint-N)")
    inspect.set_defaults(run=inspect_checkpoint)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
