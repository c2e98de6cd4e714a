"""Print `name==lower` for every dependency that setup.cfg declares: what `make test-min` installs.

Usage: python constraints/lowest_pins.py setup.cfg --extra dev --replace "torch==2.13.0+cpu"

It reads `install_requires` and the named extras (an extra that names the project's own extras, as `dev` names
`hf-xalign[experiments]`, brings theirs), and pins each requirement at its `>=` bound, so the
lowest declared versions are tested as written (a resolver's "lowest" would quietly move a bound that
cannot be installed). `--replace` gives the pin of a package whose lower bound cannot be installed here
(torch: the only CPU build on this machine is 2.13.0+cpu). Transitive dependencies are left to the resolver.
A requirement without a `>=` bound is refused (one line, exit 2): every dependency must say what it needs. Standard library
only, so it runs before any environment exists.
"""

from __future__ import annotations

import argparse
import configparser
import re
import sys

# `name[extras]>=version` with optional further specifiers (`,<3`) and an environment marker (`; ...`).
REQUIREMENT = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[(?P<extras>[^\]]*)\])?\s*(?P<specifiers>[^;]*)")
LOWER_BOUND = re.compile(r">=\s*(?P<version>[^,\s]+)")


def requirement_lines(value: str) -> list[str]:
    """The requirements of one multi-line setup.cfg value, without blank lines and `# ...` comments."""
    lines = (line.split("#", 1)[0].strip() for line in value.splitlines())
    return [line for line in lines if line]


def lowest_pins(setup_cfg: str, extras: list[str], replacements: dict[str, str]) -> list[str]:
    """
    The `name==lower` pin of every requirement in `install_requires` and the given extras.

    Args:
        setup_cfg (`str`): path of the setup.cfg to read.
        extras (`list[str]`): names of `[options.extras_require]` entries to include.
        replacements (`dict[str, str]`): the pin to use instead, by lower-cased package name.

    Returns:
        `list[str]`: one pin per package, in the order first declared.

    Raises:
        `ValueError`: the file is missing, an extra does not exist, or a requirement has no `>=` bound.
    """
    config = configparser.ConfigParser()
    if not config.read(setup_cfg):
        raise ValueError(f"{setup_cfg}: no such file; give the path of the project's setup.cfg")
    project = config.get("metadata", "name", fallback="").lower()
    declared = requirement_lines(config.get("options", "install_requires"))
    extras = list(extras)
    for extra in extras:  # grows while an extra names the project's own extras
        if not config.has_option("options.extras_require", extra):
            raise ValueError(f"{setup_cfg}: no extra {extra!r} in [options.extras_require]")
        lines = requirement_lines(config.get("options.extras_require", extra))
        declared += lines
        for requirement in lines:
            match = REQUIREMENT.match(requirement)
            if match and match.group("name").lower() == project:
                extras += [name.strip() for name in match.group("extras").split(",") if name.strip() not in extras]
    pins: dict[str, str] = {}
    for requirement in declared:
        match = REQUIREMENT.match(requirement)
        name = match.group("name").lower() if match else requirement
        if name == project:
            continue
        if name in replacements:
            pins.setdefault(name, replacements[name])
            continue
        bound = LOWER_BOUND.search(match.group("specifiers")) if match else None
        if bound is None:
            raise ValueError(f"{setup_cfg}: {requirement!r} has no '>=' lower bound; give it one")
        pins.setdefault(name, f"{name}=={bound.group('version')}")
    return list(pins.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("setup_cfg")
    parser.add_argument("--extra", action="append", default=[], help="an extras_require entry to include")
    parser.add_argument("--replace", action="append", default=[], help="a pin used instead of the lower bound")
    args = parser.parse_args()
    replacements = {REQUIREMENT.match(pin).group("name").lower(): pin for pin in args.replace}
    try:
        pins = lowest_pins(args.setup_cfg, args.extra, replacements)
    except ValueError as error:
        parser.exit(2, f"lowest_pins.py: {error}\n")
    sys.stdout.write("".join(f"{pin}\n" for pin in pins))


if __name__ == "__main__":
    main()
