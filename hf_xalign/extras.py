"""The core and the experiments extra: what `pip install hf-xalign` gives, and what `[experiments]` adds.

The core (the Hugging Face stack alone): the trainer and its arguments, the alignment losses, gradient measurement
and combining, parallel text (readers, collator, stream, `hub:` sources), per-layer analysis (`xalign analyze`) and
the Hub helpers (push, download, `load_aligned`, the card). The experiments extra adds what the harness imports:
the recipes' tasks and metrics (`conllu`, `evaluate`), their configs (`pyyaml`), and the analysis report's
statistics and plots (`scipy`, `matplotlib`, `numpy`). pyyaml and numpy come with the Hugging Face stack anyway; the
extra declares them because the harness imports them.

A harness module imports an extra's package inside `try` and raises [`missing_extra`]'s error in its place, so a
user who lacks the extra reads which package is missing and the line that installs it, not a bare
`ModuleNotFoundError`; a recipe or a command wraps its harness imports in [`exit_without_extra`] and says it in one
line.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

INSTALL_EXPERIMENTS = 'pip install "hf-xalign[experiments]"'
# The packages only the extra installs: the core, and the core tests (tests/conftest.py --core), import none of them.
EXPERIMENTS_MODULES = ("conllu", "evaluate", "matplotlib", "scipy", "submitit")


class MissingExtraError(ImportError):
    """A harness module was imported without the experiments extra; the message names the package and the way out."""


def missing_extra(error: ModuleNotFoundError, needed_by: str) -> MissingExtraError:
    """
    The error to raise in place of `error`, the failed import of an extra's package.

    Args:
        error (`ModuleNotFoundError`): what the import raised; its `name` is the missing package.
        needed_by (`str`): what needs the package, as the user knows it (`"the analysis report's plots"`).

    Returns:
        [`MissingExtraError`]: `raise missing_extra(error, ...) from None`.
    """
    return MissingExtraError(
        f"{needed_by} needs {error.name}, which the experiments extra installs: {INSTALL_EXPERIMENTS}",
        name=error.name,
    )


@contextmanager
def exit_without_extra() -> Iterator[None]:
    """Around a recipe's or a command's harness imports: without the extra, one line and exit status 2 (a user
    error, as hf_xalign/experiment/exits.py ends one), not a traceback."""
    try:
        yield
    except MissingExtraError as error:
        print(f"{os.path.basename(sys.argv[0])}: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
