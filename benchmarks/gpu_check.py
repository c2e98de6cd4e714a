"""hf-xalign on one GPU, in one command: install, the device tests, the demo, two step-time ratios and memory.

    python3 benchmarks/gpu_check.py             # on the GPU machine, with its own Python and CUDA torch (< 8 min)
    python3 benchmarks/gpu_check.py --dry-run   # on any CPU: every step on tiny shapes (1-2 min), nothing installed

Steps, each a subprocess of the Python this runs with, offline (nothing is downloaded):

1. install: the wheels in `--wheels` (`make gpu-wheels` downloads them here; they travel with the checkout), then
   the project (`pip install --no-deps -e .`), both `--no-index`; then what is imported and whether CUDA is seen.
2. tests: the tests marked `cuda` (tests/conftest.py) on the GPU: pass, fail and skip counts.
3. demo: `recipes/pos.py recipes/configs/pos_demo.yaml` into a temporary folder: its wall time and its table. Its
   model, `.cache/e5-small-demo` (`make demo` builds it), is over the carry limit: `make gpu-carry` cuts it into
   pieces that travel over several calls, joined here (docs/benchmarks.md, "The GPU check").
4. conflict_overhead.py and alignment_step.py at xlm-roberta-base size (12 layers, hidden 768, 250002 embeddings;
   task 32 x 128 tokens), bf16 autocast: time(b)/time(a) (the measurement at every step) with the peak memory of a
   step with and without it, and (e)/(f) (the alignment forward's early exit at layer 6 of 12).

`--dry-run` runs the same steps on the CPU: pip's own `--dry-run` for the install (the project only, unless
`--wheels` is named), the marked tests under XALIGN_TEST_DEVICE=cpu, the demo for 2 steps (on a tiny XLM-R built
here when `.cache/e5-small-demo` is absent; the first 50 sentences of each evaluation treebank; the analysis on 10
pairs per language pair at layer 1), the benchmarks at `--shape tiny` for one round. It prints one table; the exit status is 1 when any step failed, and the last line names those steps.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
E5_DIR = REPO / ".cache" / "e5-small-demo"
WHEELS = REPO / ".cache" / "gpu-wheels"
# `make gpu-carry`: the demo model's small files, and its weights cut into pieces that fit the carry limit
CARRIED_E5 = REPO / ".cache" / "gpu-carry" / "e5-small-demo"
CARRIED_E5_PIECES = REPO / ".cache" / "gpu-carry" / "e5-small-demo.pieces"
DRY_RUN_SENTENCES = 50  # per evaluation treebank in the dry run's demo
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


@dataclass
class Step:
    """One check: a command (or several, run in order), its time limit, and how to read its output."""

    name: str
    commands: list[list[str]]
    timeout: float  # seconds, a guard against a hang
    read: Callable[[str], list[tuple[str, str]]]  # the output -> (row, value) pairs; raises ValueError if absent
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    step: str
    ok: bool
    seconds: float
    rows: list[tuple[str, str]]


def last_match(pattern: str, text: str, what: str) -> re.Match:
    matches = list(re.finditer(pattern, text, re.MULTILINE))
    if not matches:
        raise ValueError(f"no {what} in the output")
    return matches[-1]


def read_install(output: str) -> list[tuple[str, str]]:
    return [("versions", last_match(r"^versions: (.*)$", output, "versions line").group(1))]


def read_tests(output: str) -> list[tuple[str, str]]:
    summary = last_match(r"^=*\s*(\d+ \w+.*) in [\d.]+s", output, "pytest summary").group(1)
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected)", summary)}
    if not counts.get("passed") or counts.get("skipped"):  # a skip here means the GPU was not seen
        raise ValueError(f"the marked tests must all run: {summary}")
    shown = ", ".join(f"{counts.get(word, 0)} {word}" for word in ("passed", "failed", "skipped"))
    return [("tests marked cuda", shown)]


def read_demo(output: str) -> list[tuple[str, str]]:
    """The demo's table (its title, then its rows: the first run of lines that start with `|`) and its time line."""
    start = last_match(r"^.*accuracy per language, trained on .*$", output, "demo table").start()
    title, *rest = output[start:].splitlines()
    table = []
    for line in rest:
        if line.startswith("|"):
            table.append(line)
        elif table:
            break
    timing = last_match(r"^time: (.*)$", output, "demo time line").group(1)
    return [("demo", title), *[("demo table", line) for line in table], ("demo time", timing)]


def read_conflict_overhead(output: str) -> list[tuple[str, str]]:
    ratio = last_match(r"^time\(b\)/time\(a\) = ([\d.]+)", output, "time(b)/time(a)").group(1)
    memory = last_match(r"^peak memory per step: (.*)$", output, "peak memory line").group(1)
    return [
        ("time(b)/time(a), measurement at every step", ratio),
        ("peak memory, (a) unmeasured / (b) measured", memory),
    ]


def read_alignment_step(output: str) -> list[tuple[str, str]]:
    early = last_match(r"^\(e\)/\(f\) = ([\d.]+)", output, "(e)/(f)").group(1)
    task = last_match(r"^\(e\)/\(t\) = ([\d.]+)", output, "(e)/(t)").group(1)
    # The step times themselves: what docs/cluster.md's GPU-hours per cell are to be worked out from.
    task_ms = last_match(r"^\(t\) task only +([\d.]+) ", output, "(t)'s median").group(1)
    early_ms = last_match(r"^\(e\) aligned, layer \d+, early exit +([\d.]+) ", output, "(e)'s median").group(1)
    return [
        ("(e)/(f), early exit at layer 6 of 12", early),
        ("(e)/(t), aligned over task-only step", task),
        ("step time, task only / aligned (early exit)", f"{task_ms} ms / {early_ms} ms"),
    ]


def marked_test_files() -> list[str]:
    """The test files that hold `cuda`-marked tests."""
    return sorted(
        str(path.relative_to(REPO)) for path in (REPO / "tests").glob("test_*.py") if "mark.cuda" in path.read_text()
    )


def build_tiny_encoder(folder: Path) -> Path:
    """A tiny XLM-R tagger and its tokenizer, trained on the demo's treebanks: the dry run's stand-in for e5-small."""
    sys.path.insert(0, str(REPO))
    import torch
    from transformers import XLMRobertaForTokenClassification

    from hf_xalign.data.conllu import UPOS_TAGS, read_conllu
    from hf_xalign.tiny import tiny_xlmr_config, train_tokenizer

    texts = [
        " ".join(words)
        for path in sorted((REPO / "recipes" / "data" / "pos").glob("*/*.conllu"))
        for words in read_conllu(str(path))["words"]
    ]
    tokenizer = train_tokenizer(texts, vocab_size=2000)
    torch.manual_seed(0)
    model = XLMRobertaForTokenClassification(tiny_xlmr_config(tokenizer, num_labels=len(UPOS_TAGS)))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def demo_excerpts(folder: Path, sentences: int) -> list[str]:
    """`LANG=PATH` for the first `sentences` sentences of each of the demo's evaluation treebanks, written to `folder`."""
    import yaml

    config = yaml.safe_load((REPO / "recipes" / "configs" / "pos_demo.yaml").read_text(encoding="utf-8"))
    folder.mkdir(parents=True, exist_ok=True)
    pairs = []
    for entry in config["eval_treebanks"]:
        language, path = entry.split("=", 1)
        blocks = (REPO / path).read_text(encoding="utf-8").split("\n\n")  # CoNLL-U: a blank line ends a sentence
        excerpt = folder / f"{language}.conllu"
        excerpt.write_text("\n\n".join(blocks[:sentences]).strip() + "\n\n", encoding="utf-8")
        pairs.append(f"{language}={excerpt}")
    return pairs


def failing_command(message: str) -> list[str]:
    """A command that prints `message` and exits 1: a step that cannot run fails in its row, like any other."""
    return [sys.executable, "-c", f"raise SystemExit({message!r})"]


def join_carried_model(carried: Path, pieces: Path, target: Path) -> str:
    """Join the pieces of `model.safetensors` in `pieces` that `make gpu-carry` cut, with the files in `carried`,
    into `target`.

    Returns what was done, or raises ValueError when the joined file's SHA-256 is not the one recorded.
    """
    import hashlib
    import shutil

    parts = sorted(pieces.glob("model.safetensors.part-*"))
    joined = target.with_name(target.name + ".joining")
    shutil.rmtree(joined, ignore_errors=True)
    joined.mkdir(parents=True)
    digest = hashlib.sha256()
    with (joined / "model.safetensors").open("wb") as model:
        for part in parts:
            data = part.read_bytes()
            digest.update(data)
            model.write(data)
    expected = (carried / "model.safetensors.sha256").read_text().strip()
    if digest.hexdigest() != expected:
        shutil.rmtree(joined)
        raise ValueError(f"{len(parts)} pieces in {pieces} join to another file than make gpu-carry cut: carry all")
    for path in carried.iterdir():
        if path.name != "model.safetensors.sha256":
            shutil.copy(path, joined / path.name)
    joined.rename(target)
    return f"{target} joined from {len(parts)} pieces"


def install_commands(options: argparse.Namespace) -> list[list[str]]:
    """The wheels (if any are named), the project, and the check of what is imported."""
    pip = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-index", "--no-deps"]
    if options.dry_run:
        pip.append("--dry-run")
    commands = []
    if options.wheels is not None:
        wheels = sorted(options.wheels.glob("*.whl")) if options.wheels.is_dir() else []
        if not wheels:  # pip would install nothing and say so in words only
            commands.append(failing_command(f"no wheels in {options.wheels}: run `make gpu-wheels` and carry it"))
        commands.append([*pip, "--find-links", str(options.wheels), *map(str, wheels)])
    commands.append([*pip, "--no-build-isolation", "-e", str(REPO)])
    need_cuda = "" if options.dry_run else "assert torch.cuda.is_available(), 'torch sees no CUDA device'; "
    report = (
        "import torch, transformers, accelerate, datasets, hf_xalign; "
        f"{need_cuda}"
        "gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU'; "
        'print(f\'versions: hf_xalign {hf_xalign.__version__} ({hf_xalign.__file__.rsplit("/", 2)[0]}), '
        "torch {torch.__version__}, transformers {transformers.__version__}, accelerate {accelerate.__version__}, "
        "datasets {datasets.__version__}, {gpu}')"
    )
    commands.append([sys.executable, "-c", report])
    return commands


def plan(options: argparse.Namespace, scratch: Path) -> list[Step]:
    python, dry = sys.executable, options.dry_run
    device = ["--device", "cpu", "--shape", "tiny", "--quick", "--rounds", "1", "--steps", "1", "--threads", "1"]
    if not dry:
        device = ["--device", "cuda", "--shape", "base", "--rounds", "10", "--steps", "3", "--budget", "60"]
    device += ["--dtype", "bf16"]
    demo = [python, "recipes/pos.py", "recipes/configs/pos_demo.yaml", "--output_dir", str(scratch / "pos_demo")]
    if not dry and not E5_DIR.is_dir():
        if not CARRIED_E5.is_dir():
            demo = failing_command(f"no {E5_DIR.relative_to(REPO)} and no pieces of it: make gpu-carry, carry them")
        else:
            try:
                print(join_carried_model(CARRIED_E5, CARRIED_E5_PIECES, E5_DIR), file=sys.stderr)
            except ValueError as error:
                demo = failing_command(str(error))
    build_encoder = []  # the dry run's stand-in for the demo model, built by the demo step
    if dry:
        encoder = E5_DIR if E5_DIR.is_dir() else scratch / "tiny-encoder"
        if encoder != E5_DIR:  # in the step: a run that stops at the install builds nothing
            build = (
                "import pathlib, sys; sys.path.insert(0, 'benchmarks'); from gpu_check import build_tiny_encoder; "
                f"build_tiny_encoder(pathlib.Path({str(encoder)!r}))"
            )
            build_encoder.append([python, "-c", build])
        demo += [
            "--model_name_or_path",
            str(encoder),
            "--max_steps",
            "2",
            "--analysis_pairs",
            "10",
            "--analysis_layers",
            "1",
        ]
        demo += ["--eval_treebanks", *demo_excerpts(scratch / "treebanks", DRY_RUN_SENTENCES)]
        if encoder != E5_DIR:
            demo += ["--alignment_layer", "1"]  # the tiny encoder has 2 layers
    pytest = [python, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", *marked_test_files()]
    return [
        Step("install", install_commands(options), 300, read_install),
        Step("tests", [pytest], 240, read_tests, {"XALIGN_TEST_DEVICE": "cpu"} if dry else {}),
        Step("demo", [*build_encoder, demo], 300, read_demo),
        Step("conflict_overhead", [[python, "benchmarks/conflict_overhead.py", *device]], 240, read_conflict_overhead),
        Step("alignment_step", [[python, "benchmarks/alignment_step.py", *device]], 240, read_alignment_step),
    ]


def run(step: Step, log: Path) -> Outcome:
    """Run the step's commands in order (the first failure stops it) and read the rows from their output."""
    start = time.perf_counter()
    env = {**os.environ, **OFFLINE, **step.env}
    output, ok, rows = "", True, []
    with log.open("w") as record:
        for command in step.commands:
            print(f"[{step.name}] {' '.join(command)}", file=record, flush=True)
            try:
                result = subprocess.run(
                    command,
                    cwd=REPO,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    timeout=step.timeout,
                )
            except subprocess.TimeoutExpired as expired:
                output = expired.stdout or ""
                record.write(output if isinstance(output, str) else output.decode(errors="replace"))
                rows.append(("error", f"timed out after {step.timeout:.0f} s"))
                ok = False
                break
            record.write(result.stdout)
            output += result.stdout
            if result.returncode != 0:
                last_line = next((line for line in reversed(result.stdout.splitlines()) if line.strip()), "")
                rows.append(("error", f"exit {result.returncode}: {last_line[:150]}"))
                ok = False
                break
    if ok:
        try:
            rows = step.read(output)
        except ValueError as error:
            rows, ok = [("error", str(error))], False
    return Outcome(step.name, ok, time.perf_counter() - start, rows)


def print_table(outcomes: list[Outcome]) -> None:
    print("| step | status | wall s | what | value |")
    print("|---|---|---|---|---|")
    for outcome in outcomes:
        for i, (what, value) in enumerate(outcome.rows or [("", "")]):
            head = (
                (outcome.step, "ok" if outcome.ok else "FAILED", f"{outcome.seconds:.0f}") if i == 0 else ("", "", "")
            )
            print(f"| {' | '.join(head)} | {what} | {value.replace('|', '¦')} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dry-run", action="store_true", help="Every step on the CPU on tiny shapes; installs nothing."
    )
    parser.add_argument(
        "--wheels",
        type=Path,
        default=None,
        help=f"The wheel folder to install from (default {WHEELS.relative_to(REPO)}; none in a dry run).",
    )
    parser.add_argument(
        "--logs", type=Path, default=None, help="Folder for each step's full output (default: a new temporary one)."
    )
    options = parser.parse_args()
    if options.wheels is None and not options.dry_run:
        options.wheels = WHEELS
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="xalign-gpu-check-") as scratch:
        logs = options.logs or Path(tempfile.mkdtemp(prefix="xalign-gpu-check-logs-"))  # kept: the table points to it
        logs.mkdir(parents=True, exist_ok=True)
        outcomes = []
        for step in plan(options, Path(scratch)):
            outcome = run(step, logs / f"{step.name}.log")
            outcomes.append(outcome)
            print(
                f"{step.name}: {'ok' if outcome.ok else 'FAILED'} in {outcome.seconds:.0f} s",
                file=sys.stderr,
                flush=True,
            )
            if step.name == "install" and not outcome.ok:
                break  # the later steps would run another copy of the project, or none
        print_table(outcomes)
        failed = [outcome.step for outcome in outcomes if not outcome.ok]
        mode = "dry run on the CPU" if options.dry_run else "GPU"
        print(f"gpu_check ({mode}): {len(outcomes)} steps in {time.perf_counter() - wall:.0f} s; logs in {logs}")
        if failed:
            print(f"gpu_check FAILED: {', '.join(failed)} (see {logs})")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
