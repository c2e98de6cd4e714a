"""Aligned checkpoints through a real Hub client: push, download, load, and the token kept out of everything.

The client runs in subprocesses against the test server (tests/hub_server.py; see the fixture in conftest.py), since
the suite runs offline and `huggingface_hub` reads its endpoint when imported.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from _tiny_experiment import run_tiny_experiment, save_tiny_model, write_parallel_tsv
from huggingface_hub import ModelCard

from hf_xalign import load_aligned
from hf_xalign.hub import publishable_files

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tokenizer):
    inputs = tmp_path_factory.mktemp("inputs")
    model_dir = save_tiny_model(str(inputs / "model"), tokenizer)
    parallel = write_parallel_tsv(str(inputs / "en-xx.tsv"))
    output_dir = tmp_path_factory.mktemp("run")
    run_tiny_experiment(output_dir, model_dir, parallel, alignment_lambda=0.5)
    return output_dir, model_dir, parallel


def run(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def xalign(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "hf_xalign.cli", *args], env, cwd)


def file_hashes(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def fixed_batch_logits(model, tokenizer) -> torch.Tensor:
    batch = tokenizer(["the big cat sees a dog", "lo granda gatu vidi un perru"], padding=True, return_tensors="pt")
    with torch.no_grad():
        return model.eval()(**batch).logits


def test_push_download_and_load_give_the_same_model_and_card(tmp_path, tiny_run, hub_server):
    run_dir = tiny_run[0]
    env = hub_server.client_env(tmp_path / "home")
    repo = f"{hub_server.user}/tiny-aligned"
    pushed = xalign("push", str(run_dir), "--repo-id", repo, env=env, cwd=tmp_path)
    assert pushed.returncode == 0, pushed.stderr
    downloaded = xalign("download", repo, env=hub_server.client_env(tmp_path / "empty-cache"), cwd=tmp_path)
    assert downloaded.returncode == 0, downloaded.stderr
    folder = Path(downloaded.stdout.strip().splitlines()[-1])
    assert str(folder).startswith(str(tmp_path / "empty-cache"))

    local = load_aligned(str(run_dir / "aligned"))
    remote = load_aligned(str(folder))
    assert torch.equal(
        fixed_batch_logits(remote.model, remote.tokenizer), fixed_batch_logits(local.model, local.tokenizer)
    )
    assert remote.alignment_config == local.alignment_config

    # What was published: the aligned cell (the default), without pickles, with a card made from its files.
    published = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert "model.safetensors" in published and "results.json" in published and "README.md" in published
    assert not any(name.endswith(".bin") for name in published)
    card = ModelCard.load(folder / "README.md")
    results = json.loads((folder / "results.json").read_text())
    assert results == json.loads((run_dir / "aligned" / "results.json").read_text())
    assert card.data.language == sorted(results["result"]["scores"])  # en, xx: scored and aligned on
    own = {r.dataset_config: r.metric_value for r in card.data.eval_results if r.metric_name == "accuracy"}
    assert own == {language: scores["accuracy"] for language, scores in results["result"]["scores"].items()}
    assert f'load_aligned("{repo}", task="token-classification")' in card.text


def test_the_token_reaches_no_file_and_no_log(tmp_path, tiny_run, hub_server):
    """A recipe run that pushes at its end, and a Trainer.push_to_hub, both given the token as an argument."""
    _, model_dir, parallel = tiny_run
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(TESTS)!r})
        from conftest import make_model, synthetic_sentences, tag_dataset, translate
        from _tiny_experiment import run_tiny_experiment, training_arguments
        from transformers import AutoTokenizer, DataCollatorForTokenClassification
        from hf_xalign import AlignmentTrainer
        from hf_xalign.data import load_parallel
        token = os.environ.pop("HF_TOKEN")  # only the arguments carry it
        run_tiny_experiment("experiment", {model_dir!r}, {parallel!r}, push_to_hub=True,
                            hub_model_id="{hub_server.user}/recipe-push", hub_token=token, report_to=["tensorboard"])
        tokenizer = AutoTokenizer.from_pretrained({model_dir!r})
        args = training_arguments("trainer", push_to_hub=True, hub_model_id="{hub_server.user}/trainer-push",
                                  hub_token=token, save_strategy="steps", save_steps=3)
        trainer = AlignmentTrainer(model=make_model(tokenizer), args=args, processing_class=tokenizer,
                                   train_dataset=tag_dataset(tokenizer, synthetic_sentences(32, seed=2)),
                                   alignment_dataset=load_parallel({parallel!r}),
                                   data_collator=DataCollatorForTokenClassification(tokenizer))
        trainer.train()
        print(trainer.push_to_hub())
        """
    )
    result = run([sys.executable, "-c", script], hub_server.client_env(tmp_path / "home"), tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    token = hub_server.token.encode()
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    received = hub_server.received_files()
    assert any(path.name == "training_args.bin" for path in written)  # pickled arguments were written ...
    assert any(path.name.startswith("events.out.tfevents") for path in written)  # ... and TensorBoard logs
    assert len(received) > 10
    for path in [*written, *received]:
        assert token not in path.read_bytes(), path  # ... and none holds the token
    assert hub_server.token not in result.stdout + result.stderr
    repos = {path.relative_to(hub_server.root).parts[2] for path in received}
    assert repos == {"recipe-push", "trainer-push"}
    pushed_card = hub_server.root / "models" / hub_server.user / "trainer-push" / "files" / "README.md"
    assert "hf-xalign" in ModelCard.load(pushed_card).data.tags  # the alignment card, not Trainer's generic one
    # The recipe publishes with hf_xalign.hub: no pickles. (The Trainer's own pushes during training, hub_strategy,
    # upload what Trainer uploads, training_args.bin included: without the token, as checked above.)
    recipe_files = {p.name for p in (hub_server.root / "models" / hub_server.user / "recipe-push" / "files").rglob("*")}
    assert "model.safetensors" in recipe_files and "results.json" in recipe_files
    assert not any(name.endswith((".bin", ".pt", ".pth")) for name in recipe_files)


def test_a_wrong_token_fails_clearly_and_leaves_the_run_untouched(tmp_path, tiny_run, hub_server):
    run_dir = tiny_run[0]
    before = file_hashes(run_dir)
    env = {**hub_server.client_env(tmp_path / "home"), "HF_TOKEN": "hf_notTheRightToken"}
    result = xalign("push", str(run_dir), "--repo-id", f"{hub_server.user}/refused", env=env, cwd=tmp_path)
    assert result.returncode == 2  # a user error: the token
    error = result.stderr.strip()
    assert error.startswith("xalign: error: Could not push to 'xalign-tester/refused': HTTP 401")
    assert "Check the token" in error and "Traceback" not in error and len(error.splitlines()) == 1
    assert "hf_notTheRightToken" not in result.stdout + result.stderr
    assert hub_server.received_files() == []
    assert file_hashes(run_dir) == before


def test_publishable_files_leave_out_pickles_checkpoints_and_loss_heads(tmp_path):
    for name in (
        "config.json", "model.safetensors", "tokenizer.json", "results.json", "README.md", "training_args.bin",
        "alignment_losses.safetensors", "checkpoint-4/model.safetensors", "_alignment_stage/checkpoint-2/x.json",
        "runs/events.out.tfevents.1",
    ):  # fmt: skip
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    assert publishable_files(str(tmp_path)) == ["config.json", "model.safetensors", "results.json", "tokenizer.json"]
    with_heads = publishable_files(str(tmp_path), include_loss_heads=True)
    assert with_heads == [
        "alignment_losses.safetensors",
        "config.json",
        "model.safetensors",
        "results.json",
        "tokenizer.json",
    ]


@pytest.mark.parametrize("hub_strategy", ["every_save", "checkpoint"])
def test_the_sequential_alignment_stage_is_never_pushed(tmp_path, tiny_run, hub_server, hub_strategy):
    """Trainer's pushes during training (hub_strategy) and the final push leave the stage's checkpoints out."""
    _, model_dir, parallel = tiny_run
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(TESTS)!r})
        from conftest import make_model, synthetic_sentences, tag_dataset
        from _tiny_experiment import training_arguments
        from transformers import AutoTokenizer, DataCollatorForTokenClassification
        from hf_xalign import AlignmentTrainer
        from transformers import TrainerCallback
        from hf_xalign.data import load_parallel

        class PushRecorder(TrainerCallback):  # Trainer announces every push, the stage's too if it pushed
            def on_push_begin(self, args, state, control, **kwargs):
                print("push from", args.output_dir, "at step", state.global_step)

        tokenizer = AutoTokenizer.from_pretrained({model_dir!r})
        args = training_arguments("run", alignment_mode="sequential", alignment_steps=2, max_steps=2,
                                  save_strategy="steps", save_steps=1, push_to_hub=True,
                                  hub_model_id="{hub_server.user}/sequential", hub_strategy={hub_strategy!r})
        trainer = AlignmentTrainer(model=make_model(tokenizer), args=args, processing_class=tokenizer,
                                   train_dataset=tag_dataset(tokenizer, synthetic_sentences(32, seed=2)),
                                   alignment_dataset=load_parallel({parallel!r}),
                                   data_collator=DataCollatorForTokenClassification(tokenizer),
                                   callbacks=[PushRecorder()])
        trainer.train()
        trainer.push_to_hub()
        """
    )
    result = run([sys.executable, "-c", script], hub_server.client_env(tmp_path / "home"), tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    stage = tmp_path / "run" / "_alignment_stage"
    assert (stage / "checkpoint-2" / "optimizer.pt").is_file()  # there was something to leak
    pushes = [line for line in result.stdout.splitlines() if line.startswith("push from")]
    assert pushes and pushes[-1] == "push from run at step 2"  # the final push, after the task stage
    assert not [line for line in pushes if "_alignment_stage" in line]  # the stage never pushed
    files = hub_server.root / "models" / hub_server.user / "sequential" / "files"
    pushed = [str(path.relative_to(files)) for path in files.rglob("*") if path.is_file()]
    assert "model.safetensors" in pushed and "README.md" in pushed
    assert not [path for path in pushed if "alignment_stage" in path]
