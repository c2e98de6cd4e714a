"""The local Hub (hf_xalign/local_hub/, the `hub_server` fixture) speaks the protocol of the installed huggingface_hub.

Each client call runs in a subprocess with `hub_server.client_env(home)`: the client reads HF_ENDPOINT and
HF_HUB_OFFLINE at import, and the test suite itself runs offline. Nothing is mocked: real client, real HTTP.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from hub_server import INVALID_CREDENTIALS, USER
from safetensors.torch import save_file

REPO_ID = f"{USER}/tiny-xalign"


def run_client(hub_server, home: Path, script: str, *args: str, token: str | None = "server's") -> dict:
    """Run `script` (argv: `args`) against the server; it prints one JSON object, returned here.

    `token`: the server's by default, another value in its place, or None for no token at all.
    """
    env = hub_server.client_env(home)
    if token is None:
        del env["HF_TOKEN"]
    elif token != "server's":
        env["HF_TOKEN"] = token
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


UPLOAD = """
    import json, sys
    from huggingface_hub import HfApi
    api = HfApi()
    api.create_repo(sys.argv[1], exist_ok=True)
    commit = api.upload_folder(repo_id=sys.argv[1], folder_path=sys.argv[2])
    print(json.dumps({"oid": commit.oid}))
"""

# A client error, caught and reported rather than left to a traceback, so the test can read it.
UPLOAD_REPORTING_ERRORS = """
    import json, sys
    from huggingface_hub import HfApi
    try:
        HfApi().upload_folder(repo_id=sys.argv[1], folder_path=sys.argv[2])
        print(json.dumps({"error": None}))
    except Exception as error:
        print(json.dumps({"error": type(error).__name__, "message": str(error)}))
"""


@pytest.fixture
def model_folder(tmp_path) -> Path:
    """A small JSON config and a `model.safetensors` of 256 KiB: the upload takes the LFS path for the latter."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "xlm-roberta", "hidden_size": 32}))
    save_file({"weight": torch.randn(256, 256)}, str(folder / "model.safetensors"))
    return folder


def test_whoami_names_the_user(hub_server, tmp_path):
    script = """
        import json
        from huggingface_hub import HfApi
        print(json.dumps(HfApi().whoami()))
    """
    assert run_client(hub_server, tmp_path / "home", script)["name"] == USER


def test_create_repo_exist_ok_and_private(hub_server, tmp_path):
    script = """
        import json, sys
        from huggingface_hub import HfApi
        from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
        api, repo_id = HfApi(), sys.argv[1]
        url = api.create_repo(repo_id, private=True)
        again = api.create_repo(repo_id, exist_ok=True)
        try:
            api.create_repo(repo_id)
            conflict = None
        except HfHubHTTPError as error:
            conflict = error.response.status_code
        try:
            api.model_info(repo_id, token=False)
            anonymous = "visible"
        except RepositoryNotFoundError as error:
            anonymous = error.response.status_code
        print(json.dumps({
            "url": url, "repo_id": url.repo_id, "again": again, "conflict": conflict,
            "private": api.model_info(repo_id).private, "anonymous": anonymous,
        }))
    """
    out = run_client(hub_server, tmp_path / "home", script, REPO_ID)
    assert out["url"] == out["again"] == f"{hub_server.endpoint}/{REPO_ID}"
    assert out["repo_id"] == REPO_ID
    assert out["conflict"] == 409
    assert out["private"] is True
    assert out["anonymous"] == 401  # the Hub hides a private repo from a request without token


def test_upload_folder_sends_the_safetensors_through_lfs(hub_server, tmp_path, model_folder):
    out = run_client(hub_server, tmp_path / "home", UPLOAD, REPO_ID, str(model_folder))

    assert re.fullmatch(r"[0-9a-f]{40}", out["oid"])
    weights = (model_folder / "model.safetensors").read_bytes()
    oid = hashlib.sha256(weights).hexdigest()
    lfs_requests = [
        f"POST /{REPO_ID}.git/info/lfs/objects/batch",
        f"PUT /{REPO_ID}.git/info/lfs/objects/{oid}",
        f"POST /{REPO_ID}.git/info/lfs/objects/verify",
    ]
    assert [r for r in hub_server.requests if ".git/info/lfs/" in r] == lfs_requests
    assert hub_server.requests[-1] == f"POST /api/models/{REPO_ID}/commit/main"

    repo_folder = hub_server.root / "models" / REPO_ID
    lfs_object = repo_folder / "lfs" / oid
    config = (model_folder / "config.json").read_bytes()
    config_blob = hashlib.sha1(b"blob %d\0" % len(config) + config).hexdigest()  # git's object id: any commit reads it
    assert hub_server.received_files() == [
        repo_folder / "blobs" / config_blob,
        repo_folder / "files" / "config.json",
        repo_folder / "files" / "model.safetensors",
        lfs_object,
    ]
    assert lfs_object.read_bytes() == weights
    for name in ("config.json", "model.safetensors"):
        assert (repo_folder / "files" / name).read_bytes() == (model_folder / name).read_bytes()


def test_download_returns_the_uploaded_bytes(hub_server, tmp_path, model_folder):
    commit = run_client(hub_server, tmp_path / "uploader", UPLOAD, REPO_ID, str(model_folder))["oid"]
    script = """
        import json, sys
        from huggingface_hub import HfApi, hf_hub_download, snapshot_download
        repo_id = sys.argv[1]
        info = HfApi().model_info(repo_id, files_metadata=True)
        print(json.dumps({
            "sha": info.sha,
            "siblings": {s.rfilename: [s.size, s.lfs.sha256 if s.lfs else None] for s in info.siblings},
            "snapshot": snapshot_download(repo_id),
            "config": hf_hub_download(repo_id, "config.json"),
        }))
    """
    home = tmp_path / "downloader"  # an empty cache
    out = run_client(hub_server, home, script, REPO_ID)

    weights = (model_folder / "model.safetensors").read_bytes()
    assert out["sha"] == commit
    assert out["siblings"] == {
        "config.json": [(model_folder / "config.json").stat().st_size, None],
        "model.safetensors": [len(weights), hashlib.sha256(weights).hexdigest()],
    }
    snapshot = Path(out["snapshot"])
    assert snapshot.is_relative_to(home) and snapshot.name == commit
    assert sorted(p.name for p in snapshot.iterdir()) == ["config.json", "model.safetensors"]
    for name in ("config.json", "model.safetensors"):
        assert (snapshot / name).read_bytes() == (model_folder / name).read_bytes()
    assert Path(out["config"]).read_bytes() == (model_folder / "config.json").read_bytes()


def test_every_commit_has_a_new_sha_and_deletions_apply(hub_server, tmp_path, model_folder):
    first = run_client(hub_server, tmp_path / "home", UPLOAD, REPO_ID, str(model_folder))["oid"]
    script = """
        import json, sys
        from huggingface_hub import HfApi
        api, repo_id = HfApi(), sys.argv[1]
        added = api.upload_file(repo_id=repo_id, path_or_fileobj=b"step 2", path_in_repo="notes/step.txt").oid
        deleted = api.delete_file("config.json", repo_id=repo_id).oid
        print(json.dumps({"added": added, "deleted": deleted, "files": api.list_repo_files(repo_id)}))
    """
    out = run_client(hub_server, tmp_path / "home", script, REPO_ID)

    assert len({first, out["added"], out["deleted"]}) == 3
    assert out["files"] == ["model.safetensors", "notes/step.txt"]
    files = hub_server.root / "models" / REPO_ID / "files"
    assert sorted(str(p.relative_to(files)) for p in files.rglob("*") if p.is_file()) == out["files"]
    assert (files / "notes" / "step.txt").read_bytes() == b"step 2"


@pytest.mark.parametrize(
    ("token", "message"),
    [("hf_notTheServersToken", INVALID_CREDENTIALS), (None, "A token is required")],
    ids=["wrong-token", "no-token"],
)
def test_upload_without_the_right_token_is_refused(hub_server, tmp_path, model_folder, token, message):
    script = """
        import json, sys
        from huggingface_hub import HfApi
        HfApi().create_repo(sys.argv[1])
        print(json.dumps({}))
    """
    run_client(hub_server, tmp_path / "owner", script, REPO_ID)

    out = run_client(
        hub_server, tmp_path / "intruder", UPLOAD_REPORTING_ERRORS, REPO_ID, str(model_folder), token=token
    )

    assert out["error"] == "HfHubHTTPError"
    assert out["message"].startswith("Client error '401 Unauthorized'")
    assert REPO_ID in out["message"] and message in out["message"]
    assert hub_server.received_files() == []


def test_branches_tags_and_old_commits_stay_readable_in_a_dataset_repo(hub_server, tmp_path):
    script = """
        import json, sys
        from huggingface_hub import HfApi, hf_hub_download
        api, repo_id = HfApi(), sys.argv[1]
        api.create_repo(repo_id, repo_type="dataset")
        def put(text, revision="main"):
            return api.upload_file(repo_id=repo_id, repo_type="dataset", path_or_fileobj=text.encode(),
                                   path_in_repo="data/notes.txt", revision=revision).oid
        first = put("release 1")
        api.create_branch(repo_id, repo_type="dataset", branch="1.0")
        api.create_tag(repo_id, repo_type="dataset", tag="v1")
        second = put("release 2")
        on_branch = put("release 1, fixed", revision="1.0")
        def read(revision):
            path = hf_hub_download(repo_id, "data/notes.txt", repo_type="dataset", revision=revision)
            return open(path).read()
        refs = api.list_repo_refs(repo_id, repo_type="dataset")
        print(json.dumps({
            "first": first, "second": second, "on_branch": on_branch,
            "main": read("main"), "branch": read("1.0"), "tag": read("v1"), "first_sha": read(first),
            "branches": sorted((b.name, b.target_commit) for b in refs.branches),
            "tags": [(t.name, t.target_commit) for t in refs.tags],
            "paths": [(p.path, type(p).__name__) for p in api.get_paths_info(
                repo_id, ["data", "data/notes.txt", "missing"], repo_type="dataset", revision="1.0")],
            "info_sha": api.dataset_info(repo_id, revision="v1").sha,
        }))
    """
    out = run_client(hub_server, tmp_path / "home", script, REPO_ID)

    assert (out["main"], out["branch"], out["tag"], out["first_sha"]) == (
        "release 2",
        "release 1, fixed",
        "release 1",
        "release 1",
    )
    assert out["branches"] == [["1.0", out["on_branch"]], ["main", out["second"]]]
    assert out["tags"] == [["v1", out["first"]]] and out["info_sha"] == out["first"]
    assert out["paths"] == [["data", "RepoFolder"], ["data/notes.txt", "RepoFile"]]  # a missing path is left out
    # `files/` is main's head, as the module docstring promises
    assert (hub_server.root / "datasets" / REPO_ID / "files" / "data" / "notes.txt").read_text() == "release 2"
