"""The Markdown pieces the run report and the study report write alike: a plot's file name and its image line."""

from __future__ import annotations

import re


def file_name(name: str) -> str:
    """`name` (a cell, a run, an encoder) with every run of characters unsafe in a file name replaced by `_`."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def image(caption: str, path: str) -> list[str]:
    """The report lines that show the plot at `path` (relative to report.md), then a blank line."""
    return [f"![{caption}]({path})", ""]
