"""The install's files agree with setup.cfg: the lock pins every declared dependency inside its range, with the
CPU torch and no CUDA packages; `make test-min`'s pins are the declared lower bounds.

The oracle is `packaging`'s reading of setup.cfg's requirements, a second parser beside
constraints/lowest_pins.py's regular expressions.
"""

from __future__ import annotations

import configparser
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOWEST_PINS = ROOT / "constraints" / "lowest_pins.py"
CPU_TORCH = "torch==2.13.0+cpu"
PROJECT = "hf-xalign"


def setup_cfg() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return config


def requirements(value: str) -> list[Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in value.splitlines())
    return [Requirement(line) for line in lines if line]


def declared_requirements() -> list[Requirement]:
    """install_requires and the dev extra, with the project's own extras it names, as packaging reads them."""
    config = setup_cfg()
    declared = requirements(config.get("options", "install_requires"))
    for requirement in requirements(config.get("options.extras_require", "dev")):
        if canonicalize_name(requirement.name) == PROJECT:
            for extra in sorted(requirement.extras):
                declared += requirements(config.get("options.extras_require", extra))
        else:
            declared.append(requirement)
    return declared


def locked_versions() -> dict[str, Version]:
    """Every `name==version` line of the lock, by canonical name."""
    text = (ROOT / "constraints" / "lock.txt").read_text()
    return {canonicalize_name(name): Version(version) for name, version in re.findall(r"^(\S+)==(\S+) \\$", text, re.M)}


def test_lock_pins_every_declared_dependency_inside_its_range():
    locked = locked_versions()
    outside = {
        str(requirement): str(locked.get(canonicalize_name(requirement.name), "missing"))
        for requirement in declared_requirements()
        if canonicalize_name(requirement.name) not in locked
        or not requirement.specifier.contains(locked[canonicalize_name(requirement.name)], prereleases=True)
    }
    assert outside == {}, "run `make lock`: setup.cfg asks for what constraints/lock.txt does not hold"


def test_lock_holds_the_cpu_torch_and_no_cuda_packages():
    locked = locked_versions()
    assert locked["torch"] == Version("2.13.0+cpu")
    assert [name for name in locked if name.startswith("nvidia-") or name == "triton"] == []


def test_every_locked_pin_carries_a_hash():
    """`pip install --require-hashes` refuses a lock with one pin unhashed; this names the pin."""
    blocks = re.findall(
        r"^(\S+==\S+) \\\n((?:    --hash=sha256:[0-9a-f]{64}(?: \\)?\n)*)",
        (ROOT / "constraints" / "lock.txt").read_text(),
        re.M,
    )
    assert len(blocks) == len(locked_versions())
    assert [pin for pin, hashes in blocks if not hashes] == []


def test_lowest_pins_are_the_declared_lower_bounds():
    completed = subprocess.run(
        [sys.executable, str(LOWEST_PINS), str(ROOT / "setup.cfg"), "--extra", "dev", "--replace", CPU_TORCH],
        capture_output=True,
        text=True,
        check=True,
    )
    pins = {
        canonicalize_name(requirement.name): requirement for requirement in map(Requirement, completed.stdout.split())
    }
    expected = {}
    for requirement in declared_requirements():
        (lower,) = [spec.version for spec in requirement.specifier if spec.operator == ">="]
        expected[canonicalize_name(requirement.name)] = Version(lower)
    expected["torch"] = Version("2.13.0+cpu")
    assert {name: Version(str(pin.specifier).removeprefix("==")) for name, pin in pins.items()} == expected
    assert {str(pin.specifier)[:2] for pin in pins.values()} == {"=="}


@pytest.mark.parametrize(
    ("install_requires", "named"),
    [("torch>=2.6\n    numpy", "'numpy' has no '>=' lower bound"), ("numpy<3", "'numpy<3' has no '>=' lower bound")],
)
def test_lowest_pins_refuses_a_dependency_without_a_lower_bound(tmp_path, install_requires, named):
    setup_cfg = tmp_path / "setup.cfg"
    setup_cfg.write_text(f"[options]\ninstall_requires =\n    {install_requires}\n")
    completed = subprocess.run([sys.executable, str(LOWEST_PINS), str(setup_cfg)], capture_output=True, text=True)
    assert (completed.returncode, completed.stdout) == (2, "")
    assert completed.stderr.count("\n") == 1 and named in completed.stderr


CORE_PINS = ROOT / "constraints" / "core_pins.py"
# A lock as `make lock` writes it: `a` is core and needs `b`; `c` comes from an extra and needs `b` and `d`; `e` comes
# from lock.in; `f` is a tool (pytest) and needs `g`.
TOY_LOCK = """\
--find-links /opt/wheels

a==1.0 \\
    --hash=sha256:aa
    # via toy (setup.cfg)
b==2.0 \\
    --hash=sha256:bb \\
    --hash=sha256:bc
    # via
    #   a
    #   c
c==3.0 \\
    --hash=sha256:cc
    # via toy (setup.cfg)
d==4.0 \\
    --hash=sha256:dd
    # via c
e==5.0 \\
    --hash=sha256:ee
    # via -r constraints/lock.in
f==6.0 \\
    --hash=sha256:ff
    # via toy (setup.cfg)
g==7.0 \\
    --hash=sha256:gg
    # via f
"""
TOY_SETUP_CFG = "[metadata]\nname = toy\n[options]\ninstall_requires =\n    A>=1  # core\n"


def core_pins(tmp_path: Path, *tools: str) -> subprocess.CompletedProcess:
    (tmp_path / "setup.cfg").write_text(TOY_SETUP_CFG)
    (tmp_path / "lock.txt").write_text(TOY_LOCK)
    command = [sys.executable, str(CORE_PINS), str(tmp_path / "setup.cfg"), str(tmp_path / "lock.txt")]
    return subprocess.run(command + [f"--with={tool}" for tool in tools], capture_output=True, text=True)


def test_core_pins_keep_the_lock_blocks_of_the_core_what_it_needs_lock_in_and_the_tools(tmp_path):
    completed = core_pins(tmp_path, "F")
    assert completed.returncode == 0, completed.stderr
    blocks = TOY_LOCK.split("\n\n")[1]
    kept = [block for block in re.split(r"\n(?=\S)", blocks) if block[0] in "abefg"]
    assert completed.stdout == "--find-links /opt/wheels\n" + "\n".join(kept)


def test_core_pins_refuses_a_tool_the_lock_lacks(tmp_path):
    completed = core_pins(tmp_path, "pytest")
    assert (completed.returncode, completed.stdout) == (2, "")
    assert completed.stderr.count("\n") == 1 and "lacks pytest" in completed.stderr and "make lock" in completed.stderr


def test_the_locked_core_has_no_package_of_the_experiments_extra():
    completed = subprocess.run(
        [sys.executable, str(CORE_PINS), str(ROOT / "setup.cfg"), str(ROOT / "constraints" / "lock.txt")],
        capture_output=True,
        text=True,
        check=True,
    )
    core = {canonicalize_name(name) for name in re.findall(r"^(\S+)==", completed.stdout, re.M)}
    assert {"torch", "transformers", "accelerate", "datasets", "huggingface-hub", "safetensors"} <= core
    assert core & {"conllu", "evaluate", "matplotlib", "scipy", "contourpy", "kiwisolver", "fonttools"} == set()
