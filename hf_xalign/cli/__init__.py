"""The `xalign` command: list losses, inspect a saved model, push a run to the Hub, download one,
measure alignment per layer, write the alignment-vs-transfer report, serve a local Hub.

One module per command, each with an `add_<command>_command(subparsers)` that declares its arguments and sets
`run`, the function that does the work. A command's heavy imports (torch, transformers, datasets, matplotlib,
scipy) are inside that function, so `xalign --help`, `xalign <command> --help` and a mistyped flag answer at
once. A new command is a module here and one line in [`COMMANDS`].
"""

from __future__ import annotations

import sys

from ..experiment.exits import EXIT_INTERRUPTED, EXIT_USER_ERROR, OneLineParser
from .analyze import add_analyze_command
from .download import add_download_command
from .hub_server import add_hub_server_command
from .inspect import add_inspect_command
from .losses import add_losses_command
from .push import add_push_command
from .report import add_report_command

# In the order `xalign --help` lists them.
COMMANDS = (
    add_losses_command,
    add_inspect_command,
    add_push_command,
    add_download_command,
    add_analyze_command,
    add_report_command,
    add_hub_server_command,
)


def command_errors() -> tuple[type[Exception], ...]:
    """The errors a command reports in one line: its own checks, data files, the Hub. A function, for `except
    command_errors():`, evaluated only when an exception arrives: `HubError` lives beside torch. Without the
    experiments extra, a harness command (`report`) says which package is missing and the line that installs it."""
    from ..extras import MissingExtraError
    from ..hub import HubError

    return (HubError, ValueError, FileNotFoundError, MissingExtraError)


def main(argv: list[str] | None = None) -> int:
    """Run `xalign` with `argv` (default: the command line); the exit status."""
    parser = OneLineParser(prog="xalign", description="hf-xalign: cross-lingual alignment tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    for add_command in COMMANDS:
        add_command(commands)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"xalign {args.command}: interrupted; run the same command again to redo it", file=sys.stderr)
        return EXIT_INTERRUPTED
    except command_errors() as error:  # after Ctrl-C's clause: building the tuple imports torch
        print(f"xalign: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
