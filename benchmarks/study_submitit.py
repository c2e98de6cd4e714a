"""Per-cell overhead of submitit's local executor over `--executor local`, on a tiny study, on this machine.

    .venv/bin/python benchmarks/study_submitit.py                  # 1 base cell per run, 5 rounds
    .venv/bin/python benchmarks/study_submitit.py --seeds 3        # 3 base cells per run (submitit runs them at once)

Goal (issue 25): <= 2 s per cell. Each round runs the tiny study (a 2-layer XLM-R of width 32 built here, the
demo's POS task for 4 steps, no analysis) into fresh folders twice, in alternating order after one untimed
warm-up of each: once with the cells in the study's own process (`--executor local`), once as submitit jobs
(`SubmititExecutor(cluster="local")`: a process per cell, its pickled call and result, the study polling every
0.5 s). Both runs are a fresh `python` of this file, timed whole, so both pay the study's own start once. Prints
each round's seconds per cell over the local run, the median and the spread, and the load before and after.

Each round also times the floor of that overhead: a fresh interpreter importing what every job imports before its
cell starts (`submitit` and `hf_xalign.experiment.cell_main`: torch, transformers, datasets, the harness), which
no process of its own can skip; with one cell per run the summary prints the overhead beyond it as well.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import yaml
from _commands import alternating_rounds, load, print_summary

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "recipes", "configs", "study_demo.yaml")
PAIRS = os.path.join(ROOT, "recipes", "data", "django", "parallel", "en-tr.tsv")


def tiny_study(folder: str, seeds: int) -> str:
    """The demo's POS task on a tiny encoder built here, base cells only; returns the study's path."""
    import torch
    from transformers import XLMRobertaModel

    from hf_xalign.tiny import tiny_xlmr_config, train_tokenizer

    with open(PAIRS, encoding="utf-8") as f:
        texts = [text for line in f.read().splitlines()[1:] for text in line.split("\t")[2:]]
    tokenizer = train_tokenizer(texts)
    torch.manual_seed(0)
    encoder = os.path.join(folder, "tiny")
    XLMRobertaModel(tiny_xlmr_config(tokenizer)).save_pretrained(encoder)
    tokenizer.save_pretrained(encoder)
    with open(DEMO, encoding="utf-8") as f:
        demo = yaml.safe_load(f)
    pos = demo["tasks"]["pos"]
    pos["config"] = os.path.join(ROOT, pos["config"])
    pos["overrides"].update(
        max_steps=4, warmup_steps=0, analysis=False, disable_tqdm=True, report_to="none", alignment_layer=1
    )
    pos["overrides"]["eval_treebanks"] = [
        f"{language}={os.path.join(ROOT, path)}"
        for language, path in (item.split("=", 1) for item in pos["overrides"]["eval_treebanks"])
    ]
    values = {
        "output_dir": os.path.join(folder, "unused"),
        "encoders": {"tiny": encoder},
        "tasks": {"pos": pos},
        "pairs": {"en-tr": [PAIRS]},
        "seeds": list(range(42, 42 + seeds)),
    }
    path = os.path.join(folder, "study.yaml")
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(values, f)
    return path


def run_once(config_path: str, executor: str, output_dir: str) -> None:
    """One study run (in this fresh process): the cells in it, or as submitit's local jobs."""
    from hf_xalign.experiment.study.runner import run_study
    from hf_xalign.experiment.study.slurm import SubmititExecutor
    from hf_xalign.experiment.study.spec import read_study_config

    config = read_study_config(config_path, output_dir=output_dir)
    outcome = run_study(config, executor=SubmititExecutor(cluster="local") if executor == "submitit" else None)
    if outcome.failed:
        raise SystemExit(f"cells failed: {outcome.failed} (see their error.txt under {output_dir}/cells)")


def timed_command(command: list[str], what: str) -> float:
    """Seconds of `command`, a fresh process of this checkout, offline; its stderr's end if it fails."""
    environment = {**os.environ, "PYTHONPATH": ROOT, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True)
    if completed.returncode != 0:
        raise SystemExit(f"{what} failed:\n{completed.stderr[-3000:]}")
    return time.perf_counter() - started


def timed(config_path: str, executor: str, output_dir: str) -> float:
    return timed_command([sys.executable, __file__, "--run", executor, config_path, output_dir], f"{executor} run")


JOB_IMPORTS = "import submitit; from hf_xalign.experiment.cell_main import main"


def job_imports_seconds() -> float:
    """A fresh interpreter importing what a job imports before its cell starts, timed whole."""
    return timed_command([sys.executable, "-c", JOB_IMPORTS], "the job's imports")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="Rounds of (local, submitit), order alternating.")
    parser.add_argument("--seeds", type=int, default=1, help="Base cells per run (one per seed).")
    parser.add_argument("--run", nargs=3, metavar=("EXECUTOR", "CONFIG", "OUTPUT_DIR"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.run:
        run_once(arguments.run[1], arguments.run[0], arguments.run[2])
        return
    print(f"study_submitit: {arguments.seeds} base cell(s) per run, {arguments.rounds} rounds")
    print(f"load before: {load()}")
    overheads, beyond_imports = [], []
    with tempfile.TemporaryDirectory() as folder:
        config_path = tiny_study(folder, arguments.seeds)
        for executor in ("local", "submitit"):  # untimed: a cold file cache is no cost of either
            timed(config_path, executor, os.path.join(folder, f"warm-up-{executor}"))

        def seconds_of(executor: str, round_number: int) -> float:
            return timed(config_path, executor, os.path.join(folder, f"{round_number}-{executor}"))

        for round_number, seconds in alternating_rounds(("local", "submitit"), arguments.rounds, seconds_of):
            overheads.append((seconds["submitit"] - seconds["local"]) / arguments.seeds)
            imports = job_imports_seconds()
            beyond_imports.append(overheads[-1] - imports)
            print(
                f"round {round_number + 1}: local {seconds['local']:.1f} s, submitit {seconds['submitit']:.1f} s, "
                f"{overheads[-1]:+.2f} s per cell; a job's imports alone {imports:.2f} s",
                flush=True,
            )
    print_summary("submitit over local, seconds per cell", overheads, "+.2f")
    if arguments.seeds == 1:  # jobs run at once share the cores: one job's imports is no floor of theirs
        print_summary("the same beyond a job's imports", beyond_imports, "+.2f", with_load=False)


if __name__ == "__main__":
    main()
