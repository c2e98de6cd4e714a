"""The `cluster:` section of a study: each Slurm job's resources, checked against hand-written expectations.

No cluster and no training here: a study config is read from a dict, its cells listed by `expand_grid`, and
the resources of each job compared with what a person reading the section would write in an sbatch script.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import pytest

from hf_xalign.experiment.config import ConfigError
from hf_xalign.experiment.output_dir import OutputDirError
from hf_xalign.experiment.study.checks import study_errors
from hf_xalign.experiment.study.cluster import (
    JobResources,
    alignment_resources,
    cell_resources,
    cluster_errors,
    max_jobs_at_once,
    parse_time,
)
from hf_xalign.experiment.study.runner import prepare_study_dir
from hf_xalign.experiment.study.spec import (
    StudyConfig,
    expand_grid,
    read_study_config,
    study_config_from_dict,
    write_study_config,
)

# A partition of 8-GPU nodes, as a cluster's documentation would describe it.
GPU_PARTITION = {
    "partition": "gpu",
    "account": "xalign",
    "time": "4:00:00",
    "mem_gb": 64,
    "cpus_per_process": 8,
    "gpus_per_node": 8,
    "constraint": "a100",
    "sbatch": ["--exclusive", "--mail-type=FAIL"],
    "setup": ["module load cuda/12.4", "source ~/venvs/xalign/bin/activate"],
    "max_jobs": 32,
}
GPU_JOB = dict(
    cpus_per_task=8,
    mem_gb=64,
    time_min=240,
    partition="gpu",
    account="xalign",
    constraint="a100",
    sbatch=("--exclusive", "--mail-type=FAIL"),
    setup=("module load cuda/12.4", "source ~/venvs/xalign/bin/activate"),
)


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


def test_a_one_process_cell_is_one_node_one_task_one_gpu():
    config = study(GPU_PARTITION)
    assert cell_resources(config, the_cell(config)) == JobResources(
        nodes=1, tasks_per_node=1, gpus_per_node=1, **GPU_JOB
    )
    assert max_jobs_at_once(config) == 32


def test_a_two_process_cell_is_one_node_two_tasks_two_gpus():
    config = study(GPU_PARTITION, nproc_per_cell=2)
    assert cell_resources(config, the_cell(config)) == JobResources(
        nodes=1, tasks_per_node=2, gpus_per_node=2, **GPU_JOB
    )


def test_a_cell_of_more_processes_than_a_node_holds_spans_whole_nodes():
    config = study(GPU_PARTITION, nproc_per_cell=16)
    assert cell_resources(config, the_cell(config)) == JobResources(
        nodes=2, tasks_per_node=8, gpus_per_node=8, **GPU_JOB
    )
    # the alignment stage is one process, whatever the cells ask for
    assert alignment_resources(config, "xlmr-base") == JobResources(
        nodes=1, tasks_per_node=1, gpus_per_node=1, **GPU_JOB
    )


def test_a_cpu_cell_runs_its_processes_on_one_node_without_gpus():
    config = study({"partition": "cpu", "gpus": False, "cpus_per_process": 4, "mem_gb": 16}, nproc_per_cell=4)
    assert cell_resources(config, the_cell(config)) == JobResources(
        nodes=1, tasks_per_node=4, gpus_per_node=0, cpus_per_task=4, mem_gb=16, partition="cpu"
    )


def test_the_encoder_overrides_the_task_which_overrides_the_defaults():
    config = study(
        {
            "time": 60,
            "mem_gb": 32,
            "tasks": {"xnli": {"time": 120, "cpus_per_process": 2}},
            "encoders": {"xlmr-large": {"time": "1-00:00:00", "mem_gb": 128}},
            "alignment": {"time": 30, "cpus_per_process": 3},
        }
    )

    def limits(resources: JobResources) -> tuple[int, float | None, int]:
        return resources.time_min, resources.mem_gb, resources.cpus_per_task

    assert limits(cell_resources(config, the_cell(config, "pos", "xlmr-base"))) == (60, 32, 1)
    assert limits(cell_resources(config, the_cell(config, "xnli", "xlmr-base"))) == (120, 32, 2)
    assert limits(cell_resources(config, the_cell(config, "pos", "xlmr-large"))) == (1440, 128, 1)
    assert limits(cell_resources(config, the_cell(config, "xnli", "xlmr-large"))) == (1440, 128, 2)
    assert limits(alignment_resources(config, "xlmr-base")) == (30, 32, 3)
    assert limits(alignment_resources(config, "xlmr-large")) == (1440, 128, 3)


@pytest.mark.parametrize(
    ("value", "minutes"),
    [(90, 90), ("90", 90), ("1:30", 2), ("1:30:00", 90), ("0-1:30", 90), ("2-00", 2880), ("1-02:03:04", 1564)],
)
def test_time_limits_read_as_sbatch_reads_them(value, minutes):
    # D-HH:MM:SS 1-02:03:04 is 26 h 3 min 4 s: 1563 minutes and 4 s, rounded up
    assert parse_time(value) == minutes


@pytest.mark.parametrize(
    ("cluster", "nproc_per_cell", "error"),
    [
        ({"partion": "gpu"}, 1, "cluster: unknown option 'partion' (did you mean: partition?)"),
        ({"time": "4h"}, 1, "cluster.time: '4h' is no time limit"),
        ({"time": -5}, 1, "cluster.time: -5 is no time limit"),
        ({"mem_gb": -1}, 1, "cluster.mem_gb: expected GB of memory per node > 0, got -1"),
        ({"cpus_per_process": 0}, 1, "cluster.cpus_per_process: expected a number of CPUs >= 1, got 0"),
        ({"max_jobs": 0}, 1, "cluster.max_jobs: expected a number of jobs >= 1, got 0"),
        ({"gpus": "yes"}, 1, "cluster.gpus: expected true (one GPU per process) or false (CPU), got 'yes'"),
        ({"sbatch": "--exclusive"}, 1, "cluster.sbatch: expected a list of strings, got '--exclusive'"),
        ({"sbatch": ["exclusive"]}, 1, "cluster.sbatch: 'exclusive' is no sbatch option"),
        ({"tasks": {"ner": {"time": 5}}}, 1, "cluster.tasks: 'ner' is no task of the study (known: pos, xnli)"),
        ({"encoders": {"xlmr-large": {"time": "x"}}}, 1, "cluster.encoders.xlmr-large.time: 'x' is no time limit"),
        ({"encoders": {"xlmr-large": {"max_jobs": 3}}}, 1, "cluster.encoders.xlmr-large: unknown option 'max_jobs'"),
        ({"alignment": {"gpus_per_node": -1}}, 1, "cluster.alignment.gpus_per_node: expected the GPUs of one node"),
        ({"gpus_per_node": 0}, 16, "cluster.gpus_per_node: 0 while gpus is true: set gpus: false for a CPU partition"),
        ({"gpus_per_node": 8}, 12, "cluster.gpus_per_node: nproc_per_cell 12 does not fill whole nodes of 8 GPUs"),
        (
            {"tasks": {"xnli": {"gpus_per_node": 4}}},
            6,
            "cluster.tasks.xnli.gpus_per_node: nproc_per_cell 6 does not fill whole nodes of 4 GPUs",
        ),
    ],
)
def test_each_problem_of_the_section_is_one_line_naming_its_key(cluster, nproc_per_cell, error):
    errors = cluster_errors(study(cluster, nproc_per_cell))
    assert len(errors) == 1, errors
    assert errors[0].startswith(error), errors


def test_a_whole_section_and_a_missing_one_are_valid():
    assert cluster_errors(study(GPU_PARTITION, nproc_per_cell=16)) == []
    assert cluster_errors(study()) == []
    assert cluster_errors(study({"gpus": False, "gpus_per_node": 0}, nproc_per_cell=3)) == []


def test_check_study_lists_the_cluster_problems_with_the_others():
    errors = study_errors(study({"time": "soon"}))
    assert any(error.startswith("cluster.time: 'soon' is no time limit") for error in errors), errors
    with pytest.raises(ConfigError, match="study.yaml: cluster: expected a mapping"):
        study_config_from_dict({"output_dir": "o", "encoders": {}, "tasks": {}, "cluster": ["gpu"]}, "study.yaml")


def test_the_section_is_written_to_study_yaml_and_read_back(tmp_path):
    config = study(GPU_PARTITION)
    write_study_config(config, tmp_path / "study.yaml")
    assert read_study_config(tmp_path / "study.yaml").cluster == GPU_PARTITION


def sbatch_script(resources: JobResources, folder, monkeypatch) -> list[str]:
    """The sbatch script submitit writes for a job of `resources` (its private text builder: nothing is submitted).

    submitit's Slurm executor refuses to exist where no `srun` is on PATH: a stand-in that is never run.
    """
    submitit = pytest.importorskip("submitit")
    stand_ins = folder / "bin"
    stand_ins.mkdir()
    (stand_ins / "srun").write_text("#!/bin/sh\nexit 1\n")
    (stand_ins / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{stand_ins}{os.pathsep}{os.environ['PATH']}")
    executor = submitit.SlurmExecutor(folder=folder / "jobs")
    executor.update_parameters(**resources.submitit_parameters())
    return executor._make_submission_file_text("python -m hf_xalign.experiment.cell_main", "uid").splitlines()


def test_submitit_writes_the_sbatch_lines_of_a_two_node_cell(tmp_path, monkeypatch):
    config = study(GPU_PARTITION, nproc_per_cell=16)
    lines = sbatch_script(cell_resources(config, the_cell(config)), tmp_path, monkeypatch)
    expected = [
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=8",
        "#SBATCH --gpus-per-node=8",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --mem=64GB",
        "#SBATCH --time=240",
        "#SBATCH --partition=gpu",
        "#SBATCH --account=xalign",
        "#SBATCH --constraint=a100",
        "#SBATCH --exclusive",
        "#SBATCH --mail-type=FAIL",
    ]
    assert [line for line in expected if line not in lines] == []
    setup = lines.index("# setup")
    assert lines[setup + 1 : setup + 3] == ["module load cuda/12.4", "source ~/venvs/xalign/bin/activate"]


def test_submitit_writes_no_gpu_line_for_a_cpu_cell_and_fractional_memory_in_mb(tmp_path, monkeypatch):
    config = study({"gpus": False, "mem_gb": 7.5, "time": "0-02"}, nproc_per_cell=2)
    lines = sbatch_script(cell_resources(config, the_cell(config)), tmp_path, monkeypatch)
    assert {"#SBATCH --nodes=1", "#SBATCH --ntasks-per-node=2", "#SBATCH --mem=7680MB", "#SBATCH --time=120"} <= set(
        lines
    )
    assert [
        line for line in lines if line.startswith(("#SBATCH --gpus", "#SBATCH --gres", "#SBATCH --partition"))
    ] == []
    assert "# setup" not in lines


def test_the_paper_study_ships_a_valid_cluster_section_and_the_demo_none():
    configs = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "recipes", "configs")
    xlmr = read_study_config(os.path.join(configs, "study_xlmr.yaml"))
    assert cluster_errors(xlmr) == []
    # its XNLI cells (24,544 steps) get the task's longer limit, every cell one GPU
    limits = {
        (cell.task, cell_resources(xlmr, cell).time_min, cell_resources(xlmr, cell).gpus_per_node)
        for cell in expand_grid(xlmr)
    }
    assert limits == {("pos", 60, 1), ("sib", 60, 1), ("xnli", 600, 1)}
    assert alignment_resources(xlmr, "xlmr").time_min == 180
    assert read_study_config(os.path.join(configs, "study_demo.yaml")).cluster == {}


def test_new_cluster_resources_resume_the_study_where_new_settings_are_refused(tmp_path):
    """After a job ran out of time, the same study with a longer limit resumes; other seeds are another study."""
    values = {"time": 60, "mem_gb": 16}
    first = dataclasses.replace(study(values), output_dir=str(tmp_path / "study"))
    assert prepare_study_dir(first)
    longer = dataclasses.replace(first, cluster={**values, "time": "2:00:00", "mem_gb": 32})
    assert prepare_study_dir(longer)
    assert read_study_config(tmp_path / "study" / "study.yaml").cluster["time"] == "2:00:00"
    with pytest.raises(OutputDirError, match=r"seeds: \[42\] -> \[1\]"):
        prepare_study_dir(dataclasses.replace(longer, seeds=[1]))
