"""The local Hub the tests use (the `hub_server` and `hub_datasets` fixtures in conftest.py) lives in the package,
hf_xalign/local_hub/, where `xalign hub-server` starts it for users too; the tests import it from here."""

from hf_xalign.local_hub import CONVERT_REF, INVALID_CREDENTIALS, TOKEN, USER, HubServer

__all__ = ["CONVERT_REF", "INVALID_CREDENTIALS", "TOKEN", "USER", "HubServer"]
