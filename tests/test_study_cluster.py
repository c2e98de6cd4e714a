"""The `cluster:` section of a study: each Slurm job's resources, checked against hand-written expectations.

No cluster and no training here: a study config is read from a dict, its cells listed by `expand_grid`, and
the resources of each job compared with what a person reading the section would write in an sbatch script.
"""

from __future__ import annotations

from typing import Any

from hf_xalign.experiment.study.cluster import (
    JobResources,
    alignment_resources,
    cell_resources,
    max_jobs_at_once,
)
from hf_xalign.experiment.study.spec import StudyConfig, expand_grid, study_config_from_dict


def study(cluster: dict[str, Any] | None = None, nproc_per_cell: int = 1) -> StudyConfig:
    """A base-and-aligned study of two encoders and two tasks (the files are never read here)."""
    values: dict[str, Any] = {
        "output_dir": "study",
        "encoders": {"xlmr-base": "xlm-roberta-base", "xlmr-large": "xlm-roberta-large"},
        "tasks": {"pos": {"task": "pos", "config": "pos.yaml"}, "xnli": {"task": "classification", "config": "x.yaml"}},
        "pairs": {"en-de": ["en-de.tsv"]},
        "objectives": {"contrastive": "contrastive"},
        "align": {"max_steps": 10},
        "nproc_per_cell": nproc_per_cell,
    }
    if cluster is not None:
        values["cluster"] = cluster
    return study_config_from_dict(values, "study.yaml")


def the_cell(config: StudyConfig, task: str = "pos", encoder: str = "xlmr-base"):
    return next(c for c in expand_grid(config) if c.task == task and c.encoder == encoder)


def test_a_study_without_cluster_section_gets_one_gpu_per_cell_for_an_hour():
    config = study()
    assert config.cluster == {}
    assert cell_resources(config, the_cell(config)) == JobResources(
        nodes=1, tasks_per_node=1, gpus_per_node=1, cpus_per_task=1, time_min=60
    )
    assert max_jobs_at_once(config) is None


def test_equal_resources_are_one_hashable_value():
    config = study({"partition": "gpu", "time": 90}, nproc_per_cell=2)
    resources = {cell_resources(config, cell) for cell in expand_grid(config)}
    assert resources == {JobResources(tasks_per_node=2, gpus_per_node=2, time_min=90, partition="gpu")}
    assert alignment_resources(config, "xlmr-base") == JobResources(gpus_per_node=1, time_min=90, partition="gpu")
