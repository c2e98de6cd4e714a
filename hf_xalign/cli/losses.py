"""`xalign losses`: the registered alignment losses, one line each."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._compat import SubParsersAction


def _first_line(text: str | None) -> str:
    return text.strip().splitlines()[0] if text and text.strip() else ""


def list_losses(_: argparse.Namespace) -> int:
    """Print the registered alignment losses with their one-line descriptions."""
    from ..losses import LOSS_REGISTRY

    width = max(len(name) for name in LOSS_REGISTRY)
    for name, cls in sorted(LOSS_REGISTRY.items()):
        print(f"{name:<{width}}  {_first_line(cls.__doc__)}")
    return 0


def add_losses_command(subparsers: SubParsersAction) -> argparse.ArgumentParser:
    """Add `losses` to `subparsers`; its handler is `args.run`."""
    parser = subparsers.add_parser("losses", help="list the registered alignment losses")
    parser.set_defaults(run=list_losses)
    return parser
