"""`python -m hf_xalign.local_hub [--port N] [--root DIR]`: the local Hub until Ctrl-C (see `command.py`)."""

import sys

from .command import main

sys.exit(main())
