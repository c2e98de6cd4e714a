"""`xalign download REPO_ID`: an aligned model into the Hugging Face cache; prints its folder."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from .push import TOKEN_HELP

if TYPE_CHECKING:
    from .._compat import SubParsersAction


def download(args: argparse.Namespace) -> int:
    """Fetch an aligned model into the Hugging Face cache and print its folder."""
    from ..hub import download_aligned

    print(download_aligned(args.repo_id, revision=args.revision, token=args.token, cache_dir=args.cache_dir))
    return 0


def add_download_command(subparsers: SubParsersAction) -> argparse.ArgumentParser:
    """Add `download REPO_ID [--revision REV] [...]` to `subparsers`; its handler is `args.run`."""
    parser = subparsers.add_parser("download", help="fetch an aligned model into the cache, print where")
    parser.add_argument("repo_id")
    parser.add_argument("--revision", help="a branch, tag or commit (default: main)")
    parser.add_argument("--cache-dir", help="instead of the Hugging Face cache")
    parser.add_argument("--token", help=TOKEN_HELP)
    parser.set_defaults(run=download)
    return parser
