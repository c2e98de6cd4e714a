"""`xalign hub-server`: the local Hub in the foreground, until Ctrl-C.

    xalign hub-server [--port N] [--root DIR]
    python -m hf_xalign.local_hub [--port N] [--root DIR]

It prints the line to run in another shell (`export HF_ENDPOINT=http://127.0.0.1:PORT HF_TOKEN=... HF_HUB_DISABLE_XET=1`);
there `xalign push`, `xalign download`, `push_to_hub`, `load_dataset` and `hub:` sources use the local Hub. Ctrl-C (or
SIGTERM) stops it: exit 0, one line. A port in use or a root that is not an empty folder: one line, exit 2.
"""

from __future__ import annotations

import argparse
import errno
import shlex
import signal
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ..experiment.exits import EXIT_USER_ERROR

if TYPE_CHECKING:
    from .._compat import SubParsersAction

DEFAULT_PORT = 8787


def add_hub_server_command(subparsers: SubParsersAction) -> argparse.ArgumentParser:
    """Add `hub-server` to `xalign`'s subcommands; returns its parser."""
    parser = subparsers.add_parser(
        "hub-server",
        help="serve a local Hub on 127.0.0.1 (push, download, hub: sources without an account), until Ctrl-C",
        description="A Hub-compatible server on 127.0.0.1 for models and datasets. It prints the environment line "
        "that points huggingface_hub, datasets and xalign at it. Repositories live in memory: a restart starts empty.",
    )
    add_hub_server_arguments(parser)
    parser.set_defaults(run=run_hub_server)
    return parser


def add_hub_server_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port",
        type=port_number,
        default=DEFAULT_PORT,
        help=f"the port on 127.0.0.1 (default {DEFAULT_PORT}; 0: any free one)",
    )
    parser.add_argument(
        "--root",
        help="an empty or new folder that receives the pushed files (default: a temporary folder, removed at exit)",
    )


def port_number(text: str) -> int:
    """`--port`'s value: a TCP port, 0 to 65535."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0 to 65535; 0 takes a free one)")
    return int(text)


def run_hub_server(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM; the exit status (0 stopped, 2 a port in use or a root in use)."""
    from ..local_hub.server import HubServer

    with tempfile.TemporaryDirectory(prefix="xalign-hub-") as scratch:
        root = Path(args.root) if args.root else Path(scratch)
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            print(
                f"xalign hub-server: error: --root {root}: not an empty folder (the server keeps its repositories in "
                "memory and starts empty); give a new or empty folder",
                file=sys.stderr,
            )
            return EXIT_USER_ERROR
        root.mkdir(parents=True, exist_ok=True)
        try:
            server = HubServer(root, port=args.port)
        except OSError as error:  # in use, or below 1024 without the right to bind it
            reason = "in use" if error.errno == errno.EADDRINUSE else error.strerror
            print(
                f"xalign hub-server: error: --port {args.port}: {reason}; pick another (--port 0 takes a free one)",
                file=sys.stderr,
            )
            return EXIT_USER_ERROR
        # SIGTERM stops it as Ctrl-C does: the serving loop ends, the port and the temporary folder are released.
        # SIGINT too, set again: a shell starts a background job with SIGINT ignored, and Python keeps it so.
        for stop_signal in (signal.SIGINT, signal.SIGTERM):
            signal.signal(stop_signal, signal.default_int_handler)
        try:
            environment = " ".join(f"{key}={shlex.quote(value)}" for key, value in server.user_env().items())
            print(f"local Hub at {server.endpoint}, user {server.user}, files in {root}", flush=True)
            print(f"export {environment}", flush=True)
            print("Ctrl-C stops it.", flush=True)
            server.serve_forever()
        except KeyboardInterrupt:
            pass
    print("local Hub stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m hf_xalign.local_hub`: the same as `xalign hub-server`."""
    parser = argparse.ArgumentParser(prog="python -m hf_xalign.local_hub", description=__doc__.splitlines()[0])
    add_hub_server_arguments(parser)
    return run_hub_server(parser.parse_args(argv))
