"""What a new user sees when something is wrong: one line on stderr and exit status 2 for each class of user
error, one line and 130 for Ctrl-C (with the last checkpoint complete, and the printed command resuming).

Every case runs the recipes and the `xalign` command as subprocesses, as a user does; the oracle is the exit
status, stderr, and the files on disk.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys

import huggingface_hub
import pytest
import yaml
from packaging.version import Version
from test_output_dir import files  # noqa: F401 (the fixture: a tiny encoder, data and recipe configs)

from hf_xalign.checkpoints import last_complete_checkpoint
from hf_xalign.experiment import read_marker

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POS, ALIGN = os.path.join(ROOT, "recipes", "pos.py"), os.path.join(ROOT, "recipes", "align.py")
TIMEOUT = 300  # seconds: generous, only proves that nothing hangs


def environment(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **extra}


def run(*command: str, cwd, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *command], cwd=cwd, env=env or environment(), capture_output=True, text=True, timeout=TIMEOUT
    )


def assert_one_line(result: subprocess.CompletedProcess, status: int, *expected: str) -> str:
    error = result.stderr.strip()
    assert result.returncode == status, result.stderr[-3000:]
    assert len(error.splitlines()) == 1, error
    for text in expected:
        assert text in error, error
    return error


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--max_step", "3"], "unknown option '--max_step' (did you mean: max_steps"),  # an abbreviation
        (["--max_steps", "abc"], "argument --max_steps/--max-steps: invalid int value: 'abc'"),
        (["--max_stepz", "3"], "unknown option '--max_stepz' (did you mean: max_steps"),
        (["--alignment_loss", "contrastiv"], "Unknown alignment loss 'contrastiv'. Did you mean 'contrastive'?"),
    ],
    ids=["ambiguous-flag", "bad-value", "unknown-option", "bad-choice"],
)
def test_a_command_line_error_is_one_line(flags, expected, files, tmp_path):  # noqa: F811
    result = run(POS, files["pos"], "--output_dir", str(tmp_path / "out"), *flags, cwd=tmp_path)
    assert_one_line(result, 2, "pos.py: error: ", expected)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("script", "option", "content", "expected"),
    [
        (POS, "train_treebank", "1\tcat\t_\n\n", "broken.conllu:1: "),  # a word line with 3 of 10 columns
        (ALIGN, "parallel_data", "src\ttgt\na cat\tun chat\tde trop\n", "broken.tsv:2: "),  # a ragged row
    ],
    ids=["conllu", "tsv"],
)
def test_a_broken_data_file_is_one_line_naming_file_and_line(script, option, content, expected, files, tmp_path):  # noqa: F811
    broken = tmp_path / ("broken.conllu" if option == "train_treebank" else "broken.tsv")
    broken.write_text(content, encoding="utf-8")
    config = files["pos" if script == POS else "align"]
    result = run(script, config, f"--{option}", str(broken), "--output_dir", str(tmp_path / "out"), cwd=tmp_path)
    assert_one_line(result, 2, expected)


def test_a_malformed_hub_source_is_one_line_naming_the_grammar(files, tmp_path):  # noqa: F811
    result = run(
        POS, files["pos"], "--train_treebank", "hub:only_a_path", "--output_dir", str(tmp_path / "out"), cwd=tmp_path
    )
    assert_one_line(result, 2, "pos.py: error: ", "'hub:only_a_path'", "hub:PATH[@REVISION][:CONFIG]:SPLIT")


def test_a_missing_model_folder_is_named_with_the_folder_it_is_relative_to(tmp_path):
    # The README's demo command, run outside the repository root: the demo encoder's relative path misses.
    config = os.path.join(ROOT, "recipes", "configs", "pos_demo.yaml")
    result = run(POS, config, "--output_dir", str(tmp_path / "out"), cwd=tmp_path)
    assert_one_line(
        result,
        2,
        "model_name_or_path: model path .cache/e5-small-demo does not exist",
        f"(relative to the current folder {tmp_path})",
    )


@pytest.mark.skipif(
    Version(huggingface_hub.__version__) < Version("2.0"),
    # Seen: 1.5.0 (test-min) uploads through LFS when the server offers no Xet, so there is no error to name;
    # 2.4.0 (the lock) asks for a Xet write token whatever the server says.
    reason="huggingface_hub < 2 pushes without Xet to a server without it",
)
def test_a_push_to_a_server_without_xet_names_the_way_out(files, tmp_path, hub_server):  # noqa: F811
    env = hub_server.client_env(tmp_path / "home")
    del env["HF_HUB_DISABLE_XET"]  # as a user who did not read that line of the README
    env["PYTHONPATH"] = environment()["PYTHONPATH"]
    push = ["--push_to_hub", "true", "--hub_model_id", f"{hub_server.user}/no-xet"]
    result = run(ALIGN, files["align"], "--output_dir", str(tmp_path / "out"), *push, cwd=tmp_path, env=env)
    assert_one_line(result, 2, "Could not push to 'xalign-tester/no-xet'", "xet-write-token", "HF_HUB_DISABLE_XET=1")


def test_ctrl_c_prints_one_line_keeps_the_last_checkpoint_and_the_command_resumes(files, tmp_path):  # noqa: F811
    output_dir = tmp_path / "out"
    flags = ["--output_dir", str(output_dir), "--max_steps", "30", "--save_strategy", "steps", "--save_steps", "2"]
    process = subprocess.Popen(
        [sys.executable, ALIGN, files["align"], *flags],
        cwd=tmp_path,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A background shell starts children with SIGINT ignored; a user's terminal does not.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    for line in process.stdout:  # the console prints one line per logged step (logging_steps: 1)
        if re.search(r"\] step 5/30", line):
            break
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=TIMEOUT)
    interrupted = subprocess.CompletedProcess(process.args, process.returncode, "", stderr)
    line = assert_one_line(interrupted, 130, "align.py: interrupted at step ")
    step, checkpoint, command = re.fullmatch(
        r"align\.py: interrupted at step (\d+); resume from (\S+) with: (.*)", line
    ).groups()
    assert int(step) >= 5 and checkpoint == last_complete_checkpoint(str(output_dir))
    # Saved every 2 steps; interrupted while writing one, the one before is the last complete.
    assert int(step) - 3 <= int(checkpoint.rsplit("-", 1)[1]) <= int(step)
    assert read_marker(str(output_dir)) is None

    words = shlex.split(command)
    assert words[:2] == ["python", ALIGN]
    resumed = run(*words[1:], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    first_step = int(re.search(r"\] step (\d+)/30", resumed.stdout).group(1))
    assert first_step == int(checkpoint.rsplit("-", 1)[1]) + 1  # went on from the checkpoint, not from step 1
    assert read_marker(str(output_dir))["steps"] == 30


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["analyze", "MODEL", "--pairs", "PAIRS", "--batch", "3"], "unrecognized arguments: --batch 3"),
        (["analyze", "MODEL", "--pairs", "PAIRS", "--batch-size", "x"], "argument --batch-size: invalid int value"),
        (["analyze", "./no-such-model", "--pairs", "PAIRS"], "model path ./no-such-model does not exist"),
        (["analyze", "MODEL", "--pairs", "BROKEN"], "broken.tsv:2: "),
        (["anlyze"], "invalid choice: 'anlyze'"),
    ],
    ids=["ambiguous-flag", "bad-value", "missing-model", "broken-data-file", "unknown-command"],
)
def test_every_xalign_user_error_is_one_line(arguments, expected, files, tmp_path):  # noqa: F811
    broken = tmp_path / "broken.tsv"
    broken.write_text("src\ttgt\na cat\tun chat\tde trop\n", encoding="utf-8")
    config = yaml.safe_load(open(files["align"], encoding="utf-8"))
    values = {"MODEL": config["model_name_or_path"], "PAIRS": config["parallel_data"][0], "BROKEN": str(broken)}
    result = run("-m", "hf_xalign.cli", *(values.get(item, item) for item in arguments), cwd=tmp_path)
    assert_one_line(result, 2, "xalign", expected)


def test_a_path_is_told_from_a_hub_id(tmp_path, monkeypatch):
    from hf_xalign.hub import ModelPathError, check_model_path

    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs").mkdir()
    for hub_id in ("xlm-roberta-base", "FacebookAI/xlm-roberta-base"):  # left to from_pretrained
        check_model_path(hub_id)
    check_model_path(str(tmp_path / "outputs"))  # a folder that is there
    for path in ("./model", "../model", ".cache/e5-small-demo", "/no/such/model", "a/b/c", "outputs/aligned"):
        with pytest.raises(ModelPathError, match=f"model path {re.escape(path)} does not exist"):
            check_model_path(path)


def test_the_study_command_line_errors_are_one_line(tmp_path, capsys):
    sys.path.insert(0, os.path.join(ROOT, "recipes"))
    import study as study_recipe

    for flags, expected in (
        (["--list-cell"], "unrecognized arguments: --list-cell"),  # an abbreviation of --list-cells
        (["--cells"], "argument --cells: expected one argument"),
    ):
        with pytest.raises(SystemExit) as stop:
            study_recipe.main([os.path.join(ROOT, "recipes", "configs", "study_demo.yaml"), *flags])
        error = capsys.readouterr().err.strip()
        assert stop.value.code == 2 and len(error.splitlines()) == 1 and expected in error, error


STUDY = os.path.join(ROOT, "recipes", "study.py")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("max_steps: [3\n", ":2:1: not valid YAML ("),  # an unclosed list: the parser stops at the end, line 2
        ("- max_steps\n- 3\n", ": expected a mapping of "),  # a YAML list, not name: value lines
    ],
    ids=["invalid-yaml", "not-a-mapping"],
)
@pytest.mark.parametrize("command", [[POS], [POS, "--check-data"], [STUDY]], ids=["recipe", "check-data", "study"])
def test_a_malformed_config_file_is_one_line_naming_it(content, expected, command, tmp_path):
    config = tmp_path / "broken.yaml"
    config.write_text(content, encoding="utf-8")
    script, *flags = command
    result = run(script, str(config), *flags, cwd=tmp_path)
    assert_one_line(result, 2, f"{config}{expected}")


def test_a_one_sentence_test_set_is_scored_without_an_interval(files, tmp_path):  # noqa: F811
    """A bootstrap resamples examples: one sentence has no interval to give. The run finishes with the score and
    leaves the interval out, instead of failing after training."""
    with open(files["pos"], encoding="utf-8") as f:
        config = yaml.safe_load(f)
    source = config["eval_treebanks"][1].partition("=")[2]
    with open(source, encoding="utf-8") as f:
        first_sentence = f.read().split("\n\n")[0] + "\n\n"
    one = tmp_path / "one.conllu"
    one.write_text(first_sentence, encoding="utf-8")
    evals = [config["eval_treebanks"][0], f"xx={one}"]
    output = tmp_path / "out"
    result = run(
        POS, files["pos"], "--eval_treebanks", *evals, "--output_dir", str(output), "--compare", "true", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    cells = {cell["name"]: cell for cell in map(json.loads, (output / "results.jsonl").read_text().splitlines())}
    for cell in cells.values():
        assert cell["scores"]["xx"]["tokens"] == len(
            [line for line in first_sentence.splitlines() if line[:1].isdigit()]
        )
        assert set(cell["intervals"]) == {"en"}
    assert set(cells["aligned"]["delta_intervals"]) == {"en"}
