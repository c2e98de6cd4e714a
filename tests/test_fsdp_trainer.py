"""The trainer under FSDP2 (2 gloo processes, torchrun, CPU) equals the same training on 1 process.

The model is sharded at load time by transformers (`from_pretrained(distributed_config=...)`, see
tests/fsdp_trainer_worker.py) and trained by `AlignmentTrainer.train` for 3 steps; the oracle is the same
run on one process in the test's own process, with the unsharded model and twice the accumulation
(the same rows and pairs per optimizer step). What runs on 2 processes: FSDP2's reduce-scatter of
every backward of a measured step, the gradient split and its sums on the local shards (all-reduced,
no gradient gathered), PCGrad applied to the local shards, and, with `conflict_every=2`, the unmeasured
step whose non-final backwards accumulate unsharded gradients (`set_requires_gradient_sync(False)`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch
import transformers
from conftest import make_model
from distributed_worker import build_tokenizer
from fsdp_trainer_worker import RUNS, STEPS, runs
from packaging.version import Version
from test_trainer import make_args, make_trainer

WORKER = os.path.join(os.path.dirname(__file__), "fsdp_trainer_worker.py")
TOLERANCE = 1e-5
# The 2-process runs shard at load time with DistributedConfig(fsdp_plan=...), new in transformers 5.23; setup.cfg
# allows older (test-min runs 5.16), where these runs are skipped and the 1-process tests still run.
FSDP_PLAN_TRANSFORMERS = Version("5.23")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> str:
    """The tiny tagger both launches load (the 2-process one sharding it as it loads)."""
    folder = str(tmp_path_factory.mktemp("model"))
    make_model(build_tokenizer()).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory, model_dir) -> dict:
    if Version(transformers.__version__) < FSDP_PLAN_TRANSFORMERS:
        pytest.skip(
            f"load-time FSDP2 sharding needs transformers {FSDP_PLAN_TRANSFORMERS}; this is {transformers.__version__}"
        )
    out_dir = tmp_path_factory.mktemp("fsdp2")
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    command = [torchrun, "--nproc_per_node", "2", "--standalone", WORKER, str(out_dir), model_dir]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert result.returncode == 0, result.stderr[-4000:]
    saved = torch.load(out_dir / "rank0.pt", weights_only=False)
    assert saved["world_size"] == 2
    return saved["runs"]


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, model_dir) -> dict:
    return runs(str(tmp_path_factory.mktemp("one_process")), model_dir)


@pytest.mark.parametrize(
    ("combination", "conflict_every"), [r[:2] for r in RUNS], ids=[f"{c}-every{e}" for c, e, _ in RUNS]
)
def test_fsdp2_training_equals_one_process(two_processes, one_process, combination, conflict_every):
    got, expected = two_processes[(combination, conflict_every)], one_process[(combination, conflict_every)]
    assert got["sharded"] and not expected["sharded"]  # the trainer took its FSDP2 path, the oracle did not
    assert len(got["logs"]) == len(expected["logs"]) == STEPS
    for step, (got_step, expected_step) in enumerate(zip(got["logs"], expected["logs"])):
        assert set(got_step) == set(expected_step), step
        cosines = [key for key in expected_step if key.endswith("cosine")]
        if step % conflict_every == 0:
            assert {"conflict/cosine", "conflict/layer.0/cosine", "conflict/layer.2/cosine"} <= set(cosines)
        for key in cosines:
            assert got_step[key] == pytest.approx(expected_step[key], abs=TOLERANCE, rel=0), (step, key)
    for name, value in expected["parameters"].items():
        torch.testing.assert_close(got["parameters"][name], value, atol=TOLERANCE, rtol=0, msg=name)


def test_pcgrad_changed_the_training_it_is_compared_on(one_process):
    """PCGrad rewrites the gradient whenever `T·A < 0`: with λ < 0 it does at every step, and the parameters
    it reaches are far (beyond the tolerance) from those of the plain sum at the same λ."""
    pcgrad, plain = one_process[("pcgrad", 1)], one_process[("sum", 2)]  # both with λ < 0
    assert all(log["conflict/cosine"] < 0 for log in pcgrad["logs"])
    differences = [
        (pcgrad["parameters"][name] - value).abs().max().item() for name, value in plain["parameters"].items()
    ]
    assert max(differences) > 100 * TOLERANCE


def test_the_measurement_follows_parameters_replaced_after_construction(
    tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator
):
    """accelerate's FSDP2 replaces every parameter inside `Accelerator.prepare`, after the trainer was built:
    the gradient split must measure the new parameters. Oracle: a trainer built on them from the start."""
    data = (tokenizer, task_dataset, parallel_dataset, task_collator)

    def replace_parameters(model: torch.nn.Module) -> None:
        for module in model.modules():
            for name, param in list(module.named_parameters(recurse=False)):
                setattr(module, name, torch.nn.Parameter(param.detach().clone()))

    replaced_later = make_trainer(*data, make_args(tmp_path / "later", max_steps=1), model=make_model(tokenizer))
    replace_parameters(replaced_later.model)
    replaced_later.train()
    model = make_model(tokenizer)
    replace_parameters(model)
    replaced_first = make_trainer(*data, make_args(tmp_path / "first", max_steps=1), model=model)
    replaced_first.train()

    params = list(replaced_later.model.parameters())
    assert all(a is b for a, b in zip(replaced_later.gradient_splitter.params, params))
    got, expected = (t.conflict_callback.measurements[0].to_record() for t in (replaced_later, replaced_first))
    assert got["cosine"] == pytest.approx(expected["cosine"], rel=1e-9)
    assert set(got["per_group"]) == set(expected["per_group"])
    for group, values in expected["per_group"].items():
        for key in ("task_norm", "align_norm"):
            assert got["per_group"][group][key] == pytest.approx(values[key], rel=1e-9), (group, key)
