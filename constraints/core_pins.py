"""Print the part of the lock the core install needs: what `make test-core` installs.

Usage: python constraints/core_pins.py setup.cfg constraints/lock.txt --with pytest > core.txt

The core is `install_requires` without any extra (no `[experiments]`: no scipy, matplotlib, evaluate, conllu).
Its closure is read from the lock's own `# via` annotations: a locked package belongs to it when setup.cfg's
`install_requires` names it, when constraints/lock.in adds it (`-r constraints/lock.in`: the CPU torch, the build
backend), when `--with` names it (the test runner), or when a package of the closure needs it. The blocks come out as the lock has them, pins and hashes, so
`pip install --require-hashes --no-deps` installs exactly the lock's versions, nothing resolved and nothing
fetched but the wheels; `pip check` afterwards proves the closure complete. The lock does not say which extra of a
package asked for a dependency, so one that only an extra's package asks for through a core package comes along:
aiohttp and its own dependencies (`via fsspec`, whose `[http]` only evaluate asks for). They are the lock's pins, and
the core imports none of them; the extra's own packages never come (tests/conftest.py --core checks).
A core requirement missing from the lock is refused (one line, exit 2). Standard library only, so it runs before
any environment exists.
"""

from __future__ import annotations

import argparse
import configparser
import re
import sys

# A lock block: `name==version \`, its `--hash=` lines, then `# via x` or `# via` and one `#   x` line per parent.
BLOCK = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==\S+ \\\n(?:    .*\n)*", re.M)
VIA = re.compile(r"^    # (?:via |  )(?P<parent>\S.*)$", re.M)
REQUIREMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")
LOCK_IN = "-r constraints/lock.in"


def canonical(name: str) -> str:
    """The package name as the lock and pip compare it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def core_requirements(setup_cfg: str) -> set[str]:
    """The canonical names in setup.cfg's `install_requires`."""
    config = configparser.ConfigParser()
    if not config.read(setup_cfg):
        raise ValueError(f"{setup_cfg}: no such file; give the path of the project's setup.cfg")
    lines = (line.split("#", 1)[0].strip() for line in config.get("options", "install_requires").splitlines())
    return {canonical(REQUIREMENT_NAME.match(line).group()) for line in lines if line}


def core_pins(setup_cfg: str, lock: str, tools: list[str]) -> str:
    """
    The lock's option lines and the blocks of the core's closure, in the lock's order.

    Args:
        setup_cfg (`str`): path of the project's setup.cfg.
        lock (`str`): path of the lock `make lock` wrote (with its `# via` annotations).
        tools (`list[str]`): further packages of the lock to install with the core (`pytest`).

    Returns:
        `str`: a requirements file for `pip install --require-hashes --no-deps`.

    Raises:
        `ValueError`: a file is missing, or a core requirement or a tool is not in the lock.
    """
    try:
        with open(lock, encoding="utf-8") as file:
            text = file.read()
    except FileNotFoundError:
        raise ValueError(f"{lock}: no such file; run `make lock`") from None
    blocks = {canonical(match.group("name")): match.group() for match in BLOCK.finditer(text)}
    parents = {name: {canonical(parent) for parent in VIA.findall(block)} for name, block in blocks.items()}
    roots = core_requirements(setup_cfg) | {canonical(tool) for tool in tools}
    missing = sorted(roots - blocks.keys())
    if missing:
        raise ValueError(f"{lock} lacks {', '.join(missing)} (install_requires or --with); run `make lock`")
    closure = roots | {name for name, via in parents.items() if canonical(LOCK_IN) in via}
    grown = True
    while grown:
        needed = {name for name, via in parents.items() if via & closure} - closure
        closure |= needed
        grown = bool(needed)
    options = [line + "\n" for line in text.splitlines() if line.startswith("--")]
    return "".join(options + [block for name, block in blocks.items() if name in closure])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("setup_cfg")
    parser.add_argument("lock")
    parser.add_argument("--with", dest="tools", action="append", default=[], help="a locked package to add")
    args = parser.parse_args()
    try:
        pins = core_pins(args.setup_cfg, args.lock, args.tools)
    except ValueError as error:
        parser.exit(2, f"core_pins.py: {error}\n")
    sys.stdout.write(pins)


if __name__ == "__main__":
    main()
