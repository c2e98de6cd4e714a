"""`benchmarks/gpu_check.py --dry-run`: every step of the GPU check runs on the CPU and fills its row of the table,
and a failing step makes the script exit 1 with a last line that names it. The oracle is the subprocess's exit code
and its printed table."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "gpu_check.py"


def gpu_check(tmp_path: Path, *options: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, str(SCRIPT), "--dry-run", "--logs", str(tmp_path / "logs"), *options]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def row(output: str, what: str) -> str:
    """The value of the table row named `what`."""
    (value,) = re.findall(rf"^\|[^|]*\|[^|]*\|[^|]*\| {re.escape(what)} \| (.*) \|$", output, re.MULTILINE)
    return value


def test_dry_run_runs_every_step_on_the_cpu_and_prints_its_row(tmp_path):
    result = gpu_check(tmp_path)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    for step in ("install", "tests", "demo", "conflict_overhead", "alignment_step"):
        assert re.search(rf"^\| {step} \| ok \| \d+ \|", out, re.MULTILINE), step
    assert "hf_xalign" in row(out, "versions") and str(REPO) in row(out, "versions")  # this checkout, not another
    passed, failed, skipped = map(
        int, re.fullmatch(r"(\d+) passed, (\d+) failed, (\d+) skipped", row(out, "tests marked cuda")).groups()
    )
    assert passed > 0 and failed == skipped == 0  # XALIGN_TEST_DEVICE=cpu: the marked tests ran, none skipped
    assert re.search(r"^\|.*\| demo table \| ¦ en \(source\) ¦ 0\.\d+", out, re.MULTILINE)
    assert row(out, "demo time").startswith("setup")
    assert float(row(out, "time(b)/time(a), measurement at every step")) > 0
    assert re.match(r"\(a\) [\d.]+ MiB, \(b\) [\d.]+ MiB", row(out, "peak memory, (a) unmeasured / (b) measured"))
    assert float(row(out, "(e)/(f), early exit at layer 6 of 12")) > 0
    assert re.fullmatch(r"[\d.]+ ms / [\d.]+ ms", row(out, "step time, task only / aligned (early exit)"))
    assert out.splitlines()[-1].startswith("gpu_check (dry run on the CPU): 5 steps in")
    assert (tmp_path / "logs" / "demo.log").is_file()


def test_a_missing_wheel_folder_fails_the_install_and_the_script_exits_1(tmp_path):
    empty = tmp_path / "gpu-wheels"
    empty.mkdir()

    result = gpu_check(tmp_path, "--wheels", str(empty))

    assert result.returncode == 1
    assert f"no wheels in {empty}" in row(result.stdout, "error")
    assert "| install | FAILED |" in result.stdout
    assert "| tests |" not in result.stdout  # nothing runs on a half-installed project
    assert result.stdout.splitlines()[-1].startswith("gpu_check FAILED: install")


def test_the_demo_model_cut_for_the_carry_limit_is_joined_back_byte_for_byte(tmp_path):
    sys.path.insert(0, str(REPO / "benchmarks"))
    from gpu_check import join_carried_model

    model = bytes(range(256)) * 1000
    carried, pieces = tmp_path / "e5-small-demo", tmp_path / "e5-small-demo.pieces"
    carried.mkdir()
    pieces.mkdir()
    for i, start in enumerate(range(0, len(model), 100_000)):  # as `split -b` names them: part-aa, part-ab, ...
        (pieces / f"model.safetensors.part-a{'abc'[i]}").write_bytes(model[start : start + 100_000])
    (carried / "model.safetensors.sha256").write_text(hashlib.sha256(model).hexdigest() + "\n")
    (carried / "config.json").write_text("{}")

    join_carried_model(carried, pieces, tmp_path / "e5")

    assert (tmp_path / "e5" / "model.safetensors").read_bytes() == model
    assert sorted(path.name for path in (tmp_path / "e5").iterdir()) == ["config.json", "model.safetensors"]
    (pieces / "model.safetensors.part-ab").unlink()  # a piece left behind
    with pytest.raises(ValueError, match="carry all"):
        join_carried_model(carried, pieces, tmp_path / "e5-again")
    assert not (tmp_path / "e5-again").exists()


def test_without_a_gpu_the_marked_tests_are_skipped_with_their_reason():
    env = {key: value for key, value in os.environ.items() if key != "XALIGN_TEST_DEVICE"}
    env.update(PYTHONPATH=str(REPO), CUDA_VISIBLE_DEVICES="")  # no GPU, even on a machine that has one
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "tests/test_device.py"]

    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)

    assert result.returncode == 0, result.stdout[-3000:]
    assert re.search(r"^\d+ skipped in", result.stdout, re.MULTILINE), result.stdout[-3000:]  # none ran, none failed
    assert "no CUDA device (benchmarks/gpu_check.py runs it on a GPU" in result.stdout
