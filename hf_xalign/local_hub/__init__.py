"""A local Hub: a Hub-compatible HTTP server on 127.0.0.1 for models and datasets, so that push, download and `hub:`
loading can be tried (and are tested) with the real clients, without an account or a network.

    xalign hub-server --port 8787 --root ./local-hub       # or: python -m hf_xalign.local_hub

[`~hf_xalign.local_hub.server`] says what it serves and what it leaves out; only the standard library is imported.
"""

from .server import HubServer
from .state import CONVERT_REF, INVALID_CREDENTIALS, TOKEN, USER

__all__ = ["CONVERT_REF", "INVALID_CREDENTIALS", "TOKEN", "USER", "HubServer"]
