"""Quiet where the user asked for quiet: `log_level: error` hides transformers' load report under `accelerate launch`,
`disable_tqdm: true` hides every bar of `recipes/align.py`, and `xalign report --help` prints what it means."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys

import pytest
import torch
from _tiny_experiment import write_parallel_tsv
from transformers import XLMRobertaModel

from hf_xalign.tiny import tiny_xlmr_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POS_DATA = os.path.join(ROOT, "recipes", "data", "pos")
LOAD_REPORT = "LOAD REPORT"  # transformers' table of missing/unexpected keys, here the fresh tagging head's
BAR = "%|"  # every tqdm bar draws this


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory, tokenizer) -> str:
    """A 2-layer bare XLM-R encoder: loading it as a tagger reports the classifier's weights as missing."""
    folder = str(tmp_path_factory.mktemp("encoder"))
    torch.manual_seed(0)
    XLMRobertaModel(tiny_xlmr_config(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def environment() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": ROOT,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "COLUMNS": "120",  # the load report's width; any
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(tmp_path, recipe: str, config: str, *, accelerate: bool) -> subprocess.CompletedProcess:
    path = tmp_path / "config.yaml"
    path.write_text(config, encoding="utf-8")
    script = os.path.join(ROOT, "recipes", recipe)
    # 2 CPU processes: the main one follows log_level, the other log_level_replica (warning by default).
    launcher = [shutil.which("accelerate", path=os.path.dirname(sys.executable)), "launch", "--multi_gpu"]
    launcher += ["--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    launcher += ["--main_process_port", str(free_port())]
    command = [*launcher, script, str(path)] if accelerate else [sys.executable, script, str(path)]
    result = subprocess.run(command, cwd=tmp_path, env=environment(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def pos_config(encoder_dir: str, log_level: str | None) -> str:
    config = (
        f"model_name_or_path: {encoder_dir}\n"
        f"train_treebank: [{POS_DATA}/en_silver/dev.conllu]\nsource_language: en\n"
        f"eval_treebanks: [fr={POS_DATA}/fr_silver/test.conllu]\n"
        "alignment_mode: none\ncompare: false\nanalysis: false\noutput_dir: out\nmax_steps: 1\nper_device_train_batch_size: 4\n"
        "save_strategy: 'no'\nreport_to: none\nuse_cpu: true\ndisable_tqdm: true\n"
    )
    return config + (f"log_level: {log_level}\n" if log_level else "")


@pytest.mark.parametrize(("log_level", "shown"), [(None, True), ("error", False)], ids=["default", "error"])
def test_the_load_report_follows_log_level_under_accelerate_launch(log_level, shown, encoder_dir, tmp_path):
    result = launch(tmp_path, "pos.py", pos_config(encoder_dir, log_level), accelerate=True)
    assert (LOAD_REPORT in result.stdout + result.stderr) is shown


def test_align_recipe_with_disable_tqdm_draws_no_bar(encoder_dir, tmp_path):
    parallel = write_parallel_tsv(str(tmp_path / "en-xx.tsv"))
    config = (
        f"model_name_or_path: {encoder_dir}\nparallel_data: [{parallel}]\nlanguage_pairs: [en-xx]\n"
        "objective: mlm\noutput_dir: out\nmax_steps: 2\nlogging_steps: 1\nalignment_batch_size: 8\n"
        "use_cpu: true\nreport_to: none\ndisable_tqdm: true\n"
    )
    result = launch(tmp_path, "align.py", config, accelerate=False)
    assert "aligned " in result.stdout  # it ran to its summary
    assert BAR not in result.stderr and BAR not in result.stdout


def test_report_help_prints_percent_signs_as_written():
    result = subprocess.run(
        [sys.executable, "-m", "hf_xalign.cli", "report", "--help"],
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Scores with 95% intervals" in " ".join(result.stdout.split())
    assert "%%" not in result.stdout
