"""The study: the paper's grid of cells, read from one YAML file.

A study crosses encoders, alignment variants, tasks and seeds. Each cell fine-tunes one model on one
task and scores it on every language; a variant is either the unaligned `base` or an encoder aligned
on one language pair with one objective, as a stage before fine-tuning (`sequential`) or together
with it (`joint`). [`read_study_config`] reads the YAML, [`expand_grid`] lists the cells (a pure
function: the runner and the report agree through it). The folder layout:

```
STUDY_DIR/
  study.yaml                                   # the config as read: rerunning it resumes the study
  aligned/<encoder>__<objective>__<pair>/      # aligned encoders, shared by the tasks (sequential)
  cells/<cell_id>/ ... finished.json          # one run folder per cell; its study_cell marker is written last
  report/                                      # the combined report
```
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from ...files import CELLS_FOLDER, STUDY_CELL_KIND, is_finished
from ..config import ConfigError, read_config_file, unknown_option_errors

BASE_VARIANT = "base"
MODES = ("sequential", "joint")


@dataclass(kw_only=True)
class StudyTask:
    """One task of the study: a recipe config (`recipes/configs/pos_demo.yaml`) run as task `task`.

    `overrides` replace values of the config file (fewer steps, `analysis: true`); the study sets
    the model, the output folder, the seed and the alignment settings of each cell itself.
    """

    task: str
    config: str
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class StudyConfig:
    """A study read from YAML: what is crossed with what.

    Args:
        output_dir (`str`): the study folder (layout in this module's docstring).
        encoders (`dict[str, str]`): name → local folder or Hub id of each base encoder.
        tasks (`dict[str, StudyTask]`): name → the task kind (`pos`, `classification`), its recipe config
            and overrides.
        pairs (`dict[str, list[str]]`): language pair (`en-fr`) → its parallel files (as `parallel_data`).
        objectives (`dict[str, str | dict]`): name → an objective preset of
            `hf_xalign.experiment.align.OBJECTIVES`, or a dict of `AlignmentTrainingArguments` overrides.
        modes (`list[str]`): `sequential` (align once, then fine-tune the aligned encoder) and/or `joint`
            (align while fine-tuning).
        seeds (`list[int]`): every cell runs once per seed; the report shows mean ± std.
        align (`dict`): `AlignmentTrainingArguments` overrides for the alignment stage (`max_steps`, ...).
        nproc_per_cell (`int`, *optional*, defaults to `1`): processes per cell. With 1 the study's own
            process runs each cell; with more, each cell is its own `torchrun --nproc_per_node N` launch
            (`hf_xalign.experiment.cell_main`), so a rank that fails ends its cell, not the study. Part of
            the study: the processes multiply the per-device batch sizes.
        cluster (`dict`, *optional*): the resources of each job when the study runs on Slurm
            (`--executor slurm`); a local run ignores it. Its keys: `hf_xalign.experiment.study.cluster`.
    """

    output_dir: str
    encoders: dict[str, str]
    tasks: dict[str, StudyTask]
    pairs: dict[str, list[str]] = field(default_factory=dict)
    objectives: dict[str, str | dict[str, Any]] = field(default_factory=dict)
    modes: list[str] = field(default_factory=lambda: ["sequential"])
    seeds: list[int] = field(default_factory=lambda: [42])
    align: dict[str, Any] = field(default_factory=dict)
    nproc_per_cell: int = 1
    cluster: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class StudyCell:
    """One cell of the grid: `task` fine-tuned from `encoder` (aligned as `variant` says) with `seed`.

    `objective`, `pair` and `mode` are `None` for the base variant; `base_cell_id` names the base cell
    of the same task, encoder and seed (the reference of every Δ).
    """

    cell_id: str
    task: str
    encoder: str
    variant: str
    objective: str | None
    pair: str | None
    mode: str | None
    seed: int
    base_cell_id: str

    @property
    def aligned_id(self) -> str | None:
        """The aligned encoder's folder name under `aligned/`, for a sequential cell."""
        return f"{self.encoder}__{self.objective}__{self.pair}" if self.mode == "sequential" else None

    def marker(self) -> dict[str, Any]:
        """What the cell's finished marker records of it (the runner adds its `seconds`)."""
        return dataclasses.asdict(self)


def cell_id(task: str, encoder: str, variant: str, seed: int) -> str:
    return f"{task}__{encoder}__{variant}__seed{seed}"


def _listed(value: Any, where: str, errors: list[str]) -> list:
    if not isinstance(value, list):
        errors.append(f"{where}: expected a list, got {value!r}")
        return []
    return value


def _mapping(value: Any, where: str, errors: list[str]) -> dict:
    if not isinstance(value, dict):
        errors.append(f"{where}: expected a mapping, got {value!r}")
        return {}
    return value


def study_config_from_dict(values: Mapping[str, Any], source: str) -> StudyConfig:
    """A [`StudyConfig`] from parsed YAML; every structural problem at once in one [`ConfigError`]."""
    errors = unknown_option_errors(values, [f.name for f in dataclasses.fields(StudyConfig)], source)
    for required in ("output_dir", "encoders", "tasks"):
        if required not in values:
            errors.append(f"{source}: missing {required!r}")
    tasks, raw_tasks = {}, _mapping(values.get("tasks", {}), f"{source}: tasks", errors)
    for name, entry in raw_tasks.items():
        entry = _mapping(entry, f"{source}: tasks.{name}", errors)
        task_fields = [f.name for f in dataclasses.fields(StudyTask)]
        errors += unknown_option_errors(entry, task_fields, f"{source}: tasks.{name}")
        errors += [f"{source}: tasks.{name}: missing {key!r}" for key in ("task", "config") if key not in entry]
        if not errors:
            tasks[name] = StudyTask(**entry)
    pairs = {
        pair: _listed(files, f"{source}: pairs.{pair}", errors)
        for pair, files in _mapping(values.get("pairs", {}), f"{source}: pairs", errors).items()
    }
    for pair in pairs:
        if len(pair.split("-")) != 2 or not all(pair.split("-")):
            errors.append(f"{source}: pairs: {pair!r} is not SRC-TGT (e.g. en-fr)")
    modes = _listed(values.get("modes", ["sequential"]), f"{source}: modes", errors)
    errors += [
        f"{source}: modes: unknown mode {mode!r} (known: {', '.join(MODES)})" for mode in modes if mode not in MODES
    ]
    seeds = _listed(values.get("seeds", [42]), f"{source}: seeds", errors)
    errors += [f"{source}: seeds: {seed!r} is not an integer" for seed in seeds if not isinstance(seed, int)]
    names = {
        "encoders": _mapping(values.get("encoders", {}), f"{source}: encoders", errors),
        "tasks": raw_tasks,
        "objectives": _mapping(values.get("objectives", {}), f"{source}: objectives", errors),
    }
    for kind, named in names.items():  # `__` separates the parts of a cell id
        errors += [f"{source}: {kind}: name {name!r} may not contain '__'" for name in named if "__" in str(name)]
    _mapping(values.get("align", {}), f"{source}: align", errors)
    _mapping(values.get("cluster", {}), f"{source}: cluster", errors)
    nproc_per_cell = values.get("nproc_per_cell", 1)
    if not isinstance(nproc_per_cell, int) or isinstance(nproc_per_cell, bool) or nproc_per_cell < 1:
        errors.append(f"{source}: nproc_per_cell: expected a number of processes >= 1, got {nproc_per_cell!r}")
    if errors:
        raise ConfigError("\n".join(errors))
    return StudyConfig(
        output_dir=str(values["output_dir"]),
        encoders={str(name): str(path) for name, path in names["encoders"].items()},
        tasks=tasks,
        pairs=pairs,
        objectives=dict(names["objectives"]),
        modes=list(modes),
        seeds=list(seeds),
        align=dict(values.get("align", {})),
        nproc_per_cell=nproc_per_cell,
        cluster=dict(values.get("cluster", {})),
    )


def read_study_config(path: str | os.PathLike, **overrides: Any) -> StudyConfig:
    """Read a study YAML (a shipped config or a study folder's `study.yaml`) into a [`StudyConfig`].

    Only the structure is checked here (a report may read a study made elsewhere); the runner checks
    files, tasks, losses and languages before any training (`hf_xalign.experiment.study.checks`).
    `overrides` replace top-level keys (`output_dir=...`).
    """
    values = read_config_file(path, what="study options")
    return study_config_from_dict({**values, **overrides}, os.fspath(path))


def write_study_config(config: StudyConfig, path: str | os.PathLike) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write("# The study as run by hf-xalign; rerun (or resume) it with\n")
        f.write(f"#   python recipes/study.py {os.fspath(path)}\n")
        yaml.safe_dump(config.to_dict(), f, sort_keys=False, allow_unicode=True)


def expand_grid(config: StudyConfig) -> list[StudyCell]:
    """Every cell of the study, in running order.

    Per encoder: the base variant, then each objective × pair × mode; within a variant each task and
    seed, so an aligned encoder is used by consecutive cells. `len = encoders × (1 + objectives ×
    pairs × modes) × tasks × seeds`.
    """
    cells = []
    for encoder in config.encoders:
        variants: list[tuple[str | None, str | None, str | None]] = [(None, None, None)]
        variants += [(o, p, m) for o in config.objectives for p in config.pairs for m in config.modes]
        for objective, pair, mode in variants:
            variant = BASE_VARIANT if objective is None else f"{objective}__{pair}__{mode}"
            for task in config.tasks:
                for seed in config.seeds:
                    cells.append(
                        StudyCell(
                            cell_id=cell_id(task, encoder, variant, seed),
                            task=task,
                            encoder=encoder,
                            variant=variant,
                            objective=objective,
                            pair=pair,
                            mode=mode,
                            seed=seed,
                            base_cell_id=cell_id(task, encoder, BASE_VARIANT, seed),
                        )
                    )
    return cells


def select_cells(cells: Sequence[StudyCell], patterns: Iterable[str]) -> list[StudyCell]:
    """The cells whose id matches one of the shell-style `patterns` (`pos__*__base__*`); all without any.

    A pattern that matches no cell is an error (a typo would otherwise run nothing, silently).
    """
    patterns = list(patterns)
    if not patterns:
        return list(cells)
    unmatched = [p for p in patterns if not any(fnmatch.fnmatchcase(c.cell_id, p) for c in cells)]
    if unmatched:
        raise ConfigError(f"--cells: no cell id matches {', '.join(map(repr, unmatched))} (see --list-cells)")
    return [c for c in cells if any(fnmatch.fnmatchcase(c.cell_id, p) for p in patterns)]


def cell_folder(study_dir: str, cell: StudyCell) -> str:
    return os.path.join(study_dir, CELLS_FOLDER, cell.cell_id)


def finished(study_dir: str, cell: StudyCell) -> bool:
    """Whether the cell's folder holds its finished marker (of kind `study_cell`)."""
    return is_finished(cell_folder(study_dir, cell), STUDY_CELL_KIND)
