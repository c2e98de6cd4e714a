"""The end of a multi-process launch: the default process group is destroyed while Python is still alive.

A gloo process group runs each collective on a C++ worker thread, which keeps the collective's tensors
until it drops the finished work. Dropping a tensor that Python also referenced takes the GIL. When a
script ends right after a collective, the worker may get there after the interpreter has begun to shut
down: it is then told to exit (`pthread_exit`) in the middle of a C++ destructor, and the process aborts
with "terminate called without an active exception" (SIGABRT), after the run has finished and saved
everything; `torchrun` reports exit 1. `transformers` and `accelerate` create the group but leave its
destruction to the script (`Trainer.end()`, `Accelerator.end_training()`), which scripts rarely call.

[`destroy_process_group_at_exit`] destroys the default group in an `atexit` handler, which runs before
the interpreter shuts down, so the worker threads are stopped and joined while Python is alive.
"""

from __future__ import annotations

import atexit
import sys

import torch.distributed as dist

_registered = False


def destroy_process_group_at_exit() -> None:
    """At a normal interpreter exit, destroy `torch.distributed`'s default process group if one is left.

    Registered once per process (later calls do nothing). A script that destroyed the group itself
    (`trainer.end()`, `dist.destroy_process_group()`) is left as it is. A process that ends on an
    uncaught exception is left as it is too: its group may hold a collective that the other processes
    never join, and destroying the group would wait for that collective until the group's timeout
    (30 minutes by default) instead of letting the launcher see the failure and stop the others.
    """
    global _registered
    if not _registered and dist.is_available():
        atexit.register(_destroy_left_process_group)
        _registered = True


def _destroy_left_process_group() -> None:
    failed = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)  # set for an uncaught exception
    if failed is None and dist.is_initialized():
        dist.destroy_process_group()
