"""`python -m hf_xalign.cli`: the `xalign` command."""

import sys

from . import main

sys.exit(main())
