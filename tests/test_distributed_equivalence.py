"""1 process = 2 processes, batch for batch (CPU, gloo), launched both ways a user would.

One process with gradient accumulation 2 and two processes with accumulation 1 see the same
task rows and alignment batches at every step (tests/equivalence_worker.py says why), so after
5 optimizer steps with a pointwise alignment loss the parameters and the logged cosines (those
of the step's averaged gradients) agree; and contrastive loss with `gather_across_devices=True`
on 2 processes x 8 pairs is the loss, and has the gradients, of one process with 16 pairs.
The oracle of each is the same run on one process, in the test's own process.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys

import pytest
import torch
from equivalence_worker import POINTWISE_LOSSES, contrastive_run, pointwise_runs

WORKER = os.path.join(os.path.dirname(__file__), "equivalence_worker.py")
TOLERANCE = 1e-5


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_command(launcher: str) -> list[str]:
    """`torchrun` or `accelerate launch`, 2 processes on this machine's CPU."""
    tool = shutil.which(launcher, path=os.path.dirname(sys.executable))
    if launcher == "torchrun":
        return [tool, "--nproc_per_node", "2", "--standalone"]
    options = ["--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no"]
    return [tool, "launch", *options, "--dynamo_backend", "no", "--main_process_port", str(_free_port())]


@pytest.fixture(scope="module", params=["torchrun", "accelerate"])
def two_processes(request, tmp_path_factory) -> dict:
    """Both scenarios on 2 processes; what rank 0 got (rank 1 steps with the same averaged gradients)."""
    out_dir = tmp_path_factory.mktemp(request.param)
    command = launch_command(request.param) + [WORKER, str(out_dir), "pointwise", "contrastive"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    ranks = [torch.load(out_dir / f"rank{rank}.pt", weights_only=False) for rank in range(2)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    for name, value in ranks[0]["pointwise"]["mse"]["parameters"].items():
        assert torch.equal(value, ranks[1]["pointwise"]["mse"]["parameters"][name]), name
    return ranks[0]


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> dict:
    out_dir = str(tmp_path_factory.mktemp("one_process"))
    return {"pointwise": pointwise_runs(out_dir), "contrastive": contrastive_run(out_dir)}


@pytest.mark.parametrize("loss", POINTWISE_LOSSES)
def test_pointwise_loss_on_two_processes_equals_one_process_with_accumulation_2(two_processes, one_process, loss):
    got, expected = two_processes["pointwise"][loss], one_process["pointwise"][loss]
    for name, value in expected["parameters"].items():
        torch.testing.assert_close(got["parameters"][name], value, atol=TOLERANCE, rtol=0, msg=name)
    assert len(got["logs"]) == len(expected["logs"]) == 5
    for got_step, expected_step in zip(got["logs"], expected["logs"]):
        cosines = [key for key in expected_step if key.endswith("cosine")]
        assert "conflict/cosine" in cosines and "conflict/layer.1/cosine" in cosines
        assert set(got_step) == set(expected_step)
        for key in cosines:
            assert got_step[key] == pytest.approx(expected_step[key], abs=TOLERANCE, rel=0), key


def test_gathered_contrastive_on_two_processes_of_8_pairs_equals_one_batch_of_16(two_processes, one_process):
    got, expected = two_processes["contrastive"], one_process["contrastive"]
    assert got["loss"] == pytest.approx(expected["loss"], abs=TOLERANCE, rel=0)
    assert set(got["grads"]) == set(expected["grads"])
    for name, grad in expected["grads"].items():
        torch.testing.assert_close(got["grads"][name], grad, atol=TOLERANCE, rtol=0, msg=name)
