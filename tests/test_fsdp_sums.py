"""Under FSDP2 the gradient statistics come from each process's gradient shards: partial sums over
the local shards, all-reduced, equal the sums of the full averaged gradients (no gradient gathered)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from fsdp_worker import ToyTagger, rank_batch, task_and_alignment_losses  # noqa: E402

WORKER = os.path.join(os.path.dirname(__file__), "fsdp_worker.py")


def test_sharded_partial_sums_all_reduced_equal_the_full_averaged_gradients(tmp_path):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    command = [torchrun, "--nproc_per_node", "2", "--standalone", WORKER, str(tmp_path)]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert result.returncode == 0, result.stderr[-4000:]
    saved = torch.load(tmp_path / "rank0.pt", weights_only=False)
    # The shards really are shards: rank 0 holds half the rows (2 of the head's 3).
    assert saved["local_shapes"]["roberta.0.weight"] == (8, 8)
    assert saved["local_shapes"]["classifier.weight"] == (2, 16)

    # Oracle: the unsharded model (same seed), gradients averaged over the two ranks' batches by autograd.
    torch.manual_seed(0)
    model = ToyTagger().double()
    names = [name for name, _ in model.named_parameters()]
    params = [param for _, param in model.named_parameters()]
    task, align = [torch.zeros_like(p) for p in params], [torch.zeros_like(p) for p in params]
    for rank in range(2):
        task_loss, alignment_loss = task_and_alignment_losses(model, *rank_batch(rank))
        for total, loss in ((task, task_loss), (align, alignment_loss)):
            grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
            for t, g in zip(total, grads):
                if g is not None:
                    t.add_(g / 2)
    expected = {}
    for group, prefix in (("encoder", "roberta."), ("head", "classifier.")):
        pairs = [(t, a) for name, t, a in zip(names, task, align) if name.startswith(prefix)]
        expected[group] = [
            sum(float((t * a).sum()) for t, a in pairs),
            sum(float(t.square().sum()) for t, _ in pairs),
            sum(float(a.square().sum()) for _, a in pairs),
        ]
    got = saved["sums"].view(len(saved["groups"]), 3)
    for group, values in expected.items():
        torch.testing.assert_close(
            got[saved["groups"].index(group)], torch.tensor(values, dtype=torch.float64), rtol=1e-10, atol=1e-12
        )
    assert expected["head"][2] == 0.0 and expected["encoder"][0] != 0.0  # the oracle is not trivial
