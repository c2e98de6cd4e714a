"""`destroy_process_group_at_exit`: the group is destroyed at a clean exit, left alone after an uncaught error.

Each case is a fresh interpreter with a 1-process gloo group; an `atexit` handler registered before
ours runs after it (last in, first out) and reports whether the group was still there.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = """
import atexit
import torch.distributed as dist
atexit.register(lambda: print("group left at exit:", dist.is_initialized()))
dist.init_process_group("gloo", init_method="tcp://127.0.0.1:0", rank=0, world_size=1)
from hf_xalign.process_group import destroy_process_group_at_exit
destroy_process_group_at_exit()
destroy_process_group_at_exit()  # registered once
{ending}
"""


@pytest.mark.parametrize(
    ("ending", "left", "status"),
    [
        ("", False, 0),  # the script's end
        ("dist.destroy_process_group()", False, 0),  # destroyed by the script: nothing to do
        ("raise RuntimeError('a failed step')", True, 1),  # the group may hold a collective others never join
    ],
)
def test_the_group_is_destroyed_at_a_clean_exit_only(ending, left, status):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(ending=ending)],
        env={**os.environ, "PYTHONPATH": ROOT},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == status, result.stderr[-2000:]
    assert result.stdout.strip().splitlines() == [f"group left at exit: {left}"]
