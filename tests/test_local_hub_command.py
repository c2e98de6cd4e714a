"""`xalign hub-server`: the local Hub as a user starts it, in its own process, used by the real clients through the
environment line it prints, and stopped with Ctrl-C."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hf_xalign.local_hub.server import CLIENT_ENV_DROPPED

ROOT = Path(__file__).resolve().parents[1]
PAIRS = [{"src": "the cat", "tgt": "lo gatu"}, {"src": "a dog", "tgt": "un perru"}]

# Push with `datasets`, read back through the project's `hub:` path and with `hf_hub_download`.
CLIENT = """
    import json, sys
    import datasets
    from huggingface_hub import HfApi, hf_hub_download
    from hf_xalign.data.parallel import load_parallel

    rows = json.loads(sys.argv[1])
    repo = HfApi().whoami()["name"] + "/pairs"
    datasets.Dataset.from_list(rows).push_to_hub(repo)
    loaded = load_parallel([f"hub:{repo}:train"])
    card = open(hf_hub_download(repo, "README.md", repo_type="dataset"), encoding="utf-8").read()
    print(json.dumps({"repo": repo, "pairs": [[r["src"], r["tgt"]] for r in loaded], "card": card}))
"""


def python_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def start_server(tmp_path: Path, *args: str) -> tuple[subprocess.Popen, Path]:
    out = tmp_path / "server.out"
    command = [sys.executable, "-m", "hf_xalign.cli", "hub-server", *args]
    with open(out, "w") as stdout:
        process = subprocess.Popen(command, env=python_env(), stdout=stdout, stderr=subprocess.PIPE, text=True)
    return process, out


def printed_environment(process: subprocess.Popen, out: Path) -> dict[str, str]:
    """The variables of the `export ...` line the server prints once it listens (a generous bound: it imports
    hf_xalign first, on a busy machine)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        for line in out.read_text().splitlines():
            if line.startswith("export "):
                return dict(item.split("=", 1) for item in shlex.split(line)[1:])
        time.sleep(0.2)
    process.kill()
    pytest.fail(f"no export line from hub-server: {out.read_text()} {process.communicate()[1]}")


def test_hub_server_serves_push_and_hub_loading_then_stops_on_ctrl_c(tmp_path):
    root = tmp_path / "hub"
    process, out = start_server(tmp_path, "--port", "0", "--root", str(root))
    try:
        printed = printed_environment(process, out)
        assert set(printed) == {"HF_ENDPOINT", "HF_TOKEN", "HF_HUB_DISABLE_XET"}
        assert printed["HF_ENDPOINT"].startswith("http://127.0.0.1:")
        # A user's shell: their environment (here, less the suite's offline switches), the printed line, a cache.
        env = {key: value for key, value in python_env().items() if key not in CLIENT_ENV_DROPPED}
        env.update(printed, HF_HOME=str(tmp_path / "home"), HF_HUB_DISABLE_PROGRESS_BARS="1")
        client = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(CLIENT), json.dumps(PAIRS)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert client.returncode == 0, client.stderr[-3000:]
        result = json.loads(client.stdout.splitlines()[-1])
    finally:
        process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        _, stderr = process.communicate(timeout=60)

    assert result["pairs"] == [[row["src"], row["tgt"]] for row in PAIRS]
    # The files the client pushed are in --root, as sent: the card that came back is the one on disk.
    repo_files = root / "datasets" / result["repo"] / "files"
    assert (repo_files / "README.md").read_text(encoding="utf-8") == result["card"]
    assert [path.suffix for path in (repo_files / "data").iterdir()] == [".parquet"]
    assert process.returncode == 0 and "Traceback" not in stderr, stderr
    assert out.read_text().splitlines()[-1] == "local Hub stopped"


def test_a_port_in_use_a_bad_port_or_a_used_root_is_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process, _ = start_server(tmp_path, "--port", str(port))
        _, stderr = process.communicate(timeout=180)
    assert process.returncode == 2
    assert stderr.splitlines() == [
        f"xalign hub-server: error: --port {port}: in use; pick another (--port 0 takes a free one)"
    ]

    used = tmp_path / "used"
    used.mkdir()
    (used / "something").write_text("")
    process, _ = start_server(tmp_path, "--port", "0", "--root", str(used))
    _, stderr = process.communicate(timeout=180)
    assert process.returncode == 2
    assert len(stderr.splitlines()) == 1 and f"--root {used}: not an empty folder" in stderr

    process, _ = start_server(tmp_path, "--port", "70000")
    _, stderr = process.communicate(timeout=180)
    assert process.returncode == 2
    assert len(stderr.splitlines()) == 1 and "--port: '70000' is not a port (0 to 65535" in stderr
