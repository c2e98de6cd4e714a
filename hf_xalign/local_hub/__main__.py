"""`python -m hf_xalign.local_hub [--port N] [--root DIR]`: the local Hub until Ctrl-C (`xalign hub-server`)."""

import sys

from ..cli.hub_server import main

sys.exit(main())
