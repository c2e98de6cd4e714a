"""The `cluster:` section of a study: what each Slurm job of the study asks for.

A local run ignores the section; `study.py --executor slurm` submits every cell, and every alignment stage
that cells share, as a job with these resources. Defaults sit at the top level, overrides per task, per
encoder and for the alignment stages:

```yaml
cluster:
  partition: gpu              # sbatch --partition
  account: my-project         # sbatch --account
  qos: normal                 # sbatch --qos
  time: "4:00:00"             # minutes (240), or as sbatch reads it: "H:MM:SS", "D-HH:MM:SS", "D-HH"
  mem_gb: 64                  # memory per node, in GB
  cpus_per_process: 8         # CPUs for each process (data loading, tokenization)
  gpus_per_node: 8            # GPUs one node of the partition holds
  gpus: true                  # false on a CPU partition: the processes run on CPU
  constraint: a100            # sbatch --constraint
  sbatch: ["--exclusive", "--mail-type=FAIL"]   # extra sbatch options
  setup: ["module load cuda/12.4", "source ~/venvs/xalign/bin/activate"]  # shell lines run before the job
  max_jobs: 32                # jobs of the study running at once
  tasks:
    xnli: {time: "8:00:00"}   # per task (a name under the study's `tasks:`)
  encoders:
    xlmr-large: {mem_gb: 128, time: "12:00:00"}   # per encoder (a name under `encoders:`): wins over the task
  alignment: {time: "2:00:00"}                     # the alignment stages (one process each)
```

A cell runs `nproc_per_cell` processes, one per GPU: with k <= `gpus_per_node` it gets one node, k tasks and
k GPUs; with more it spans k / `gpus_per_node` nodes of `gpus_per_node` tasks each (k must fill whole nodes).
Without `gpus_per_node` a cell gets one node with k GPUs. With `gpus: false` a cell is one node running its k
processes on CPU. Each key resolves encoder over task over the defaults; an alignment stage resolves encoder
over `alignment:` over the defaults.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..config import ConfigError, unknown_option_errors
from .spec import StudyCell, StudyConfig, expand_grid

# The keys a default, a task, an encoder or the alignment section may set.
RESOURCE_KEYS = (
    "partition",
    "account",
    "qos",
    "time",
    "mem_gb",
    "cpus_per_process",
    "gpus_per_node",
    "gpus",
    "constraint",
    "sbatch",
    "setup",
)
OVERRIDE_SECTIONS = ("tasks", "encoders", "alignment")
CLUSTER_KEYS = (*RESOURCE_KEYS, "max_jobs", *OVERRIDE_SECTIONS)

# sbatch's --time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S.
_TIME_PATTERN = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


@dataclass(frozen=True)
class JobResources:
    """What one Slurm job asks for. Frozen, so hashable: jobs of equal resources share one job array.

    Args:
        nodes (`int`, *optional*, defaults to `1`): nodes of the job.
        tasks_per_node (`int`, *optional*, defaults to `1`): processes per node (one per GPU, or the cell's
            processes on CPU).
        gpus_per_node (`int`, *optional*, defaults to `0`): GPUs per node; 0 on CPU.
        cpus_per_task (`int`, *optional*, defaults to `1`): CPUs per process.
        mem_gb (`float`, *optional*): memory per node in GB; `None` leaves the partition's default.
        time_min (`int`, *optional*, defaults to `60`): the time limit in minutes.
        partition (`str`, *optional*): sbatch `--partition`.
        account (`str`, *optional*): sbatch `--account`.
        qos (`str`, *optional*): sbatch `--qos`.
        constraint (`str`, *optional*): sbatch `--constraint`.
        sbatch (`tuple[str, ...]`, *optional*, defaults to `()`): extra sbatch options (`"--exclusive"`,
            `"--mail-type=FAIL"`).
        setup (`tuple[str, ...]`, *optional*, defaults to `()`): shell lines run before the job (`module load
            ...`, `source .../activate`).
    """

    nodes: int = 1
    tasks_per_node: int = 1
    gpus_per_node: int = 0
    cpus_per_task: int = 1
    mem_gb: float | None = None
    time_min: int = 60
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    sbatch: tuple[str, ...] = ()
    setup: tuple[str, ...] = ()

    def submitit_parameters(self) -> dict[str, Any]:
        """Keyword arguments for `submitit.SlurmExecutor.update_parameters` (Slurm's own names).

        `submitit.AutoExecutor` takes the same values with each key prefixed by `slurm_`. Unset options
        (no memory, no GPU, no partition) are left out, so the cluster's defaults apply.
        """
        parameters: dict[str, Any] = {
            "nodes": self.nodes,
            "ntasks_per_node": self.tasks_per_node,
            "cpus_per_task": self.cpus_per_task,
            "time": self.time_min,
        }
        optional = {
            "gpus_per_node": self.gpus_per_node or None,
            "mem": None if self.mem_gb is None else _sbatch_memory(self.mem_gb),
            "partition": self.partition,
            "account": self.account,
            "qos": self.qos,
            "constraint": self.constraint,
            "additional_parameters": dict(_sbatch_option(option) for option in self.sbatch) or None,
            "setup": list(self.setup) or None,
        }
        parameters.update({key: value for key, value in optional.items() if value is not None})
        return parameters


def _sbatch_memory(mem_gb: float) -> str:
    """sbatch's `--mem` value: whole GB, else MB (as submitit writes it)."""
    return f"{int(mem_gb)}GB" if mem_gb == int(mem_gb) else f"{int(mem_gb * 1024)}MB"


def _sbatch_option(option: str) -> tuple[str, Any]:
    """`"--mail-type=FAIL"` -> `("mail-type", "FAIL")`; a flag without value (`"--exclusive"`) -> `(name, True)`."""
    name, has_value, value = option.removeprefix("--").partition("=")
    return name, value if has_value else True


def parse_time(value: int | str) -> int:
    """A time limit in minutes from a number of minutes or one of sbatch's `--time` formats.

    `"90"`, `"1:30:00"` and `"0-1:30"` are 90 minutes; seconds round up to the next minute.

    Raises:
        [`ConfigError`]: `value` is no time limit (one line with the formats sbatch reads).
    """
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _TIME_PATTERN.match(value) if isinstance(value, str) else None
    if match is None:
        raise ConfigError(
            f"time: {value!r} is no time limit (minutes, or 'H:MM:SS', 'D-HH:MM:SS', 'D-HH' as sbatch reads it)"
        )
    days, first, second, third = (int(part) if part else 0 for part in match.groups())
    if match.group(1):  # D-H, D-H:M, D-H:M:S
        seconds = ((days * 24 + first) * 60 + second) * 60 + third
    elif match.group(4):  # H:M:S
        seconds = (first * 60 + second) * 60 + third
    else:  # M, M:S
        seconds = first * 60 + second
    if seconds <= 0:
        raise ConfigError(f"time: {value!r} is no time limit (it is zero)")
    return math.ceil(seconds / 60)


def _merged(config: StudyConfig, *overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The defaults of `cluster:` with each override on top, in order."""
    values = {key: config.cluster[key] for key in RESOURCE_KEYS if key in config.cluster}
    for override in overrides:
        values.update(override)
    return values


def _override(config: StudyConfig, section: str, name: str) -> Mapping[str, Any]:
    return config.cluster.get(section, {}).get(name, {})


def _resources(values: Mapping[str, Any], nodes: int, tasks_per_node: int, gpus_per_node: int) -> JobResources:
    return JobResources(
        nodes=nodes,
        tasks_per_node=tasks_per_node,
        gpus_per_node=gpus_per_node,
        cpus_per_task=values.get("cpus_per_process", 1),
        mem_gb=values.get("mem_gb"),
        time_min=parse_time(values.get("time", 60)),
        partition=values.get("partition"),
        account=values.get("account"),
        qos=values.get("qos"),
        constraint=values.get("constraint"),
        sbatch=tuple(values.get("sbatch", ())),
        setup=tuple(values.get("setup", ())),
    )


def _layout(values: Mapping[str, Any], processes: int) -> tuple[int, int, int]:
    """`(nodes, tasks_per_node, gpus_per_node)` of a job of `processes` processes."""
    if not values.get("gpus", True):
        return 1, processes, 0
    node_gpus = values.get("gpus_per_node")
    if node_gpus is None or processes <= node_gpus:
        return 1, processes, processes
    return math.ceil(processes / node_gpus), node_gpus, node_gpus


def cell_resources(config: StudyConfig, cell: StudyCell) -> JobResources:
    """The resources of `cell`'s job: the defaults of `cluster:`, its task's override, its encoder's override.

    The job runs `config.nproc_per_cell` processes (layout in this module's docstring).
    """
    values = _merged(config, _override(config, "tasks", cell.task), _override(config, "encoders", cell.encoder))
    return _resources(values, *_layout(values, config.nproc_per_cell))


def alignment_resources(config: StudyConfig, encoder: str) -> JobResources:
    """The resources of the job that aligns `encoder` (one process): the defaults, `alignment:`, the encoder's."""
    values = _merged(config, config.cluster.get("alignment", {}), _override(config, "encoders", encoder))
    return _resources(values, *_layout(values, 1))


def max_jobs_at_once(config: StudyConfig) -> int | None:
    """The most jobs of the study running at once (`max_jobs`; submitit's array parallelism); `None`: no cap."""
    return config.cluster.get("max_jobs")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _resource_errors(values: Mapping[str, Any], where: str) -> list[str]:
    """The problems of one level of the section (the defaults, a task's, an encoder's, `alignment:`)."""
    errors = []
    for key in ("partition", "account", "qos", "constraint"):
        if key in values and not isinstance(values[key], str):
            errors.append(f"{where}.{key}: expected a name, got {values[key]!r}")
    if "time" in values:
        try:
            parse_time(values["time"])
        except ConfigError as error:
            errors.append(f"{where}.{error}")
    mem_gb = values.get("mem_gb")
    if "mem_gb" in values and (isinstance(mem_gb, bool) or not isinstance(mem_gb, (int, float)) or mem_gb <= 0):
        errors.append(f"{where}.mem_gb: expected GB of memory per node > 0, got {mem_gb!r}")
    if "cpus_per_process" in values and not _positive_int(values["cpus_per_process"]):
        errors.append(f"{where}.cpus_per_process: expected a number of CPUs >= 1, got {values['cpus_per_process']!r}")
    node_gpus = values.get("gpus_per_node")
    if "gpus_per_node" in values and (isinstance(node_gpus, bool) or not isinstance(node_gpus, int) or node_gpus < 0):
        errors.append(f"{where}.gpus_per_node: expected the GPUs of one node (>= 0), got {node_gpus!r}")
    if "gpus" in values and not isinstance(values["gpus"], bool):
        errors.append(f"{where}.gpus: expected true (one GPU per process) or false (CPU), got {values['gpus']!r}")
    for key in ("sbatch", "setup"):
        if key in values and not _strings(values[key]):
            errors.append(f"{where}.{key}: expected a list of strings, got {values[key]!r}")
    if _strings(values.get("sbatch", [])):
        errors += [
            f"{where}.sbatch: {option!r} is no sbatch option (expected '--name' or '--name=value')"
            for option in values.get("sbatch", [])
            if not option.startswith("--")
        ]
    return errors


def _layout_errors(config: StudyConfig, overrides: tuple[tuple[str, str | None], ...], processes: int) -> list[str]:
    """A job of `processes` processes that cannot be laid out on the nodes its resolved options describe.

    The error names the level that set `gpus_per_node` (`cluster`, `cluster.tasks.pos`, ...), so a bad
    default is said once, not once per cell.
    """
    levels = [("cluster", config.cluster)]
    for section, name in overrides:
        values = config.cluster.get(section, {}) if name is None else _override(config, section, name)
        levels.append((f"cluster.{section}" if name is None else f"cluster.{section}.{name}", values))
    values = _merged(config, *(level for _, level in levels[1:]))
    if not values.get("gpus", True) or "gpus_per_node" not in values:
        return []
    where = [name for name, level in levels if "gpus_per_node" in level][-1]
    node_gpus = values["gpus_per_node"]
    if node_gpus == 0:
        return [f"{where}.gpus_per_node: 0 while gpus is true: set gpus: false for a CPU partition"]
    if processes > node_gpus and processes % node_gpus:
        return [
            f"{where}.gpus_per_node: nproc_per_cell {processes} does not fill whole nodes of {node_gpus} GPUs: "
            f"make nproc_per_cell a multiple of {node_gpus}, or at most {node_gpus}"
        ]
    return []


def cluster_errors(config: StudyConfig) -> list[str]:
    """Every problem of `config.cluster`, each one line naming the key (`cluster.encoders.xlmr-large.time`)."""
    cluster = config.cluster
    errors = unknown_option_errors(cluster, CLUSTER_KEYS, "cluster")
    errors += _resource_errors(cluster, "cluster")
    if "max_jobs" in cluster and not _positive_int(cluster["max_jobs"]):
        errors.append(f"cluster.max_jobs: expected a number of jobs >= 1, got {cluster['max_jobs']!r}")
    levels = {"cluster.alignment": cluster.get("alignment", {})}
    for section, names in (("tasks", config.tasks), ("encoders", config.encoders)):
        overrides = cluster.get(section, {})
        if not isinstance(overrides, dict):
            errors.append(f"cluster.{section}: expected a mapping of {section[:-1]} name -> options, got {overrides!r}")
            continue
        errors += [
            f"cluster.{section}: {name!r} is no {section[:-1]} of the study (known: {', '.join(names)})"
            for name in overrides
            if name not in names
        ]
        levels.update({f"cluster.{section}.{name}": values for name, values in overrides.items() if name in names})
    for where, values in levels.items():
        if not isinstance(values, dict):
            errors.append(f"{where}: expected a mapping of options, got {values!r}")
            continue
        errors += unknown_option_errors(values, RESOURCE_KEYS, where)
        errors += _resource_errors(values, where)
    if errors:  # the layouts read resolved values: only when every level is well formed
        return errors
    for task in config.tasks:
        for encoder in config.encoders:
            errors += _layout_errors(config, (("tasks", task), ("encoders", encoder)), config.nproc_per_cell)
    aligned_encoders = dict.fromkeys(cell.encoder for cell in expand_grid(config) if cell.aligned_id)
    for encoder in aligned_encoders:
        errors += _layout_errors(config, (("alignment", None), ("encoders", encoder)), 1)
    return list(dict.fromkeys(errors))
