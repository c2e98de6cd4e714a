"""A Hub-compatible HTTP server for tests: the installed `huggingface_hub` client (and `datasets` through it) talks to
it over real HTTP.

The `hub_server` fixture (tests/conftest.py) starts it on 127.0.0.1 with a free port. What it receives is kept in a
temporary folder, so a test can list and read every byte:

    <root>/<models|datasets>/<namespace>/<name>/files/<path>   the files of `main`'s head commit, LFS files included
    <root>/<models|datasets>/<namespace>/<name>/lfs/<sha256>   every LFS object uploaded
    <root>/<models|datasets>/<namespace>/<name>/blobs/<oid>    every regular file's content, by git blob id, so that
                                                               any commit, branch or tag can be read

`huggingface_hub` reads HF_ENDPOINT and HF_HUB_OFFLINE when it is imported (`datasets` copies HF_ENDPOINT into
`datasets.config` at import too), and the test suite runs offline, so the client runs in a subprocess with the
environment from `HubServer.client_env(home)`.

Endpoints, for model and dataset repos with `namespace/name` ids; {type} is `models` or `datasets`, and a dataset's
git and file URLs start with /datasets/ ({prefix} below):

    GET  /api/whoami-v2                              whoami
    POST /api/repos/create                           create_repo (type model or dataset): 409 if it exists
                                                     (exist_ok), visibility "private" or private: true
    POST /api/validate-yaml                          the README.md check before a commit: every card is valid
    GET  /api/{type}/{repo}[/revision/{rev}]         model_info, dataset_info, repo_info: sha, private, siblings
                                                     (?blobs=1: sizes, LFS)
    GET  /api/{type}/{repo}/tree/{rev}[/{path}]      list_repo_tree, list_repo_files, HfFileSystem.ls
                                                     (?recursive=true), in one page
    POST /api/{type}/{repo}/paths-info/{rev}         get_paths_info, HfFileSystem.info: the paths that exist
    GET  /api/{type}/{repo}/refs                     list_repo_refs: branches, tags, and converts
                                                     (refs/convert/parquet)
    POST /api/{type}/{repo}/branch/{branch}          create_branch (from `startingPoint`, else main's head); 409 if
                                                     it exists. `refs/convert/parquet` is accepted too, as an empty
                                                     branch of its own (on the Hub only the parquet-converter bot
                                                     writes that ref, with no history shared with main); here a test
                                                     builds it with the client, as the bot's export is laid out
    POST /api/{type}/{repo}/tag/{rev}                create_tag on the commit `rev` names; 409 if it exists
    POST /api/{type}/{repo}/preupload/{rev}          upload mode per file: "lfs" for the Hub's default .gitattributes
                                                     patterns (*.safetensors, *.parquet, ...) or 10 MiB and more
    POST /{prefix}{repo}.git/info/lfs/objects/batch  LFS batch, "basic" transfer: an upload and a verify action
    PUT  /{prefix}{repo}.git/info/lfs/objects/{oid}  the upload action's href, with a ticket in place of a signature
    POST /{prefix}{repo}.git/info/lfs/objects/verify the verify action
    POST /api/{type}/{repo}/commit/{rev}             NDJSON commit to a branch: header, file (base64), lfsFile,
                                                     deletedFile, deletedFolder; every commit gets a new 40-hex sha
    HEAD, GET /{prefix}{repo}/resolve/{rev}/{path}   hf_hub_download, snapshot_download, HfFileSystem: X-Repo-Commit,
                                                     ETag, X-Linked-Etag and X-Linked-Size for LFS files,
                                                     Content-Length; one `Range: bytes=a-b` answers 206

A revision is a branch, a tag or a commit's full sha (a branch or tag name with a slash comes URL-encoded, as the
client sends it: refs%2Fconvert%2Fparquet). Every commit stays readable.

Auth is `Authorization: Bearer <token>`. A wrong token is refused on every request, as the Hub does (401, "Invalid
credentials in Authorization header"); writes need the token; a private repo asked for without it answers 401
RepoNotFound, as the Hub hides private repos.

Deliberately not implemented: Xet storage (with `hf_xet` installed the client uploads through Xet whatever the server
says, so `client_env` sets HF_HUB_DISABLE_XET=1; the client's Xet token request would get a 404 here); spaces; pull
requests; deleting branches and tags; `parentCommit` checks; multipart LFS uploads; pagination; .gitignore;
organizations and permissions (the token may write to any namespace); the dataset viewer's API
(datasets-server.<host>: `datasets` asks it for a parquet export's infos and goes on without them). An unknown route
answers 404 naming itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fnmatch import fnmatch
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

USER = "xalign-tester"
TOKEN = "hf_xalignFakeTokenForTheTestHubServer"
REVISION = "main"
# The revision the Hub's parquet-converter bot writes: a parquet export of every config of a dataset.
CONVERT_REF = "refs/convert/parquet"
INVALID_CREDENTIALS = "Invalid credentials in Authorization header"

# The LFS patterns of the .gitattributes the Hub writes into a new model repo; the Hub also sends every file of 10 MiB
# or more to LFS.
LFS_PATTERNS = (
    "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib", "*.lfs.*", "*.mlmodel",
    "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb", "*.pickle", "*.pkl", "*.pt",
    "*.pth", "*.rar", "*.safetensors", "*.tar", "*.tar.*", "*.tflite", "*.tgz", "*.wasm", "*.xz", "*.zip", "*.zst",
    "*tfevents*",
)  # fmt: skip
LFS_MIN_SIZE = 10 * 1024 * 1024
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
SHA256 = re.compile(r"[0-9a-f]{64}")

# Variables that would point the client's cache or token elsewhere, or keep it offline: `client_env` drops them.
CLIENT_ENV_DROPPED = (
    "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HUGGINGFACE_CO_STAGING",
    "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_ASSETS_CACHE", "HUGGINGFACE_ASSETS_CACHE", "HF_XET_CACHE",
    "HF_DATASETS_CACHE", "TRANSFORMERS_CACHE", "HF_TOKEN_PATH", "HF_HUB_DISABLE_IMPLICIT_TOKEN",
)  # fmt: skip


class HubError(Exception):
    """An error answer: the message goes out as the JSON `error` (next to `fields`) and as X-Error-Message, where the
    client reads it; `code` becomes X-Error-Code, which the client turns into RepositoryNotFoundError, ..."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        fields: dict | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.headers, self.fields = headers or {}, fields or {}


def git_blob_oid(data: bytes) -> str:
    """The git object id of a blob: what the Hub reports as a file's `oid`/`blobId` and its ETag."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The pointer file git stores in place of an LFS file."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def is_lfs(path: str, size: int) -> bool:
    return size >= LFS_MIN_SIZE or any(fnmatch(path.rsplit("/", 1)[-1], pattern) for pattern in LFS_PATTERNS)


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def new_sha() -> str:
    return secrets.token_hex(20)


@dataclass
class StoredFile:
    size: int
    blob_id: str
    lfs_sha256: str | None = None

    @property
    def pointer_size(self) -> int:
        return len(lfs_pointer(self.lfs_sha256 or "", self.size))


@dataclass
class Commit:
    sha: str
    files: dict[str, StoredFile]
    date: str = field(default_factory=now)


@dataclass
class Repo:
    repo_type: str  # "model" or "dataset"
    repo_id: str
    folder: Path
    private: bool
    created_at: str = field(default_factory=now)
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)  # name -> commit sha
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        initial = Commit(new_sha(), {})  # the Hub makes an initial commit
        self.commits[initial.sha] = initial
        self.branches[REVISION] = initial.sha

    @property
    def head(self) -> Commit:
        """`main`'s head commit."""
        return self.commits[self.branches[REVISION]]

    @property
    def sha(self) -> str:
        return self.head.sha

    @property
    def files(self) -> dict[str, StoredFile]:
        return self.head.files

    @property
    def files_dir(self) -> Path:
        return self.folder / "files"

    @property
    def lfs_dir(self) -> Path:
        return self.folder / "lfs"

    @property
    def blobs_dir(self) -> Path:
        return self.folder / "blobs"

    def content_path(self, stored: StoredFile) -> Path:
        return self.lfs_dir / stored.lfs_sha256 if stored.lfs_sha256 else self.blobs_dir / stored.blob_id

    def commit_of(self, rev: str) -> Commit | None:
        """The commit a branch, a tag or a full sha names."""
        sha = self.branches.get(rev) or self.tags.get(rev) or rev
        return self.commits.get(sha)


class HubServer:
    """The server, its state and the fixture's API: `endpoint`, `token`, `user`, `root`, `requests` (every request
    as "METHOD /path", in order), `received_files()` and `client_env(home)`."""

    def __init__(self, root: Path, user: str = USER, token: str = TOKEN):
        self.root, self.user, self.token = Path(root), user, token
        self.repos: dict[tuple[str, str], Repo] = {}  # (repo type, repo id) -> repo
        self.requests: list[str] = []
        self.upload_tickets: dict[tuple[str, str], str] = {}
        self.lock = threading.Lock()
        self._httpd = _HTTPServer(self)
        host, port = self._httpd.server_address[:2]
        self.endpoint = f"http://{host}:{port}"
        # A short poll interval: `shutdown` waits for the serving loop to look, at each fixture teardown.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="hub_server", daemon=True
        )

    def __enter__(self) -> HubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def received_files(self) -> list[Path]:
        return sorted(path for path in self.root.rglob("*") if path.is_file())

    def client_env(self, home: Path) -> dict[str, str]:
        """The environment for a subprocess whose `huggingface_hub` talks to this server, with `home` as HF_HOME."""
        home.mkdir(parents=True, exist_ok=True)
        env = {key: value for key, value in os.environ.items() if key not in CLIENT_ENV_DROPPED}
        no_proxy = ",".join(filter(None, [env.get("NO_PROXY") or env.get("no_proxy"), "127.0.0.1"]))
        env.update(
            HF_ENDPOINT=self.endpoint,
            HF_HOME=str(home),
            HF_TOKEN=self.token,
            HF_HUB_DISABLE_TELEMETRY="1",
            # With hf_xet installed the client uploads through Xet whatever this server answers.
            HF_HUB_DISABLE_XET="1",
            # Progress bars would fill stderr, where a test reads the client's error.
            HF_HUB_DISABLE_PROGRESS_BARS="1",
            # A proxy set for the package registries must not see requests to this server.
            NO_PROXY=no_proxy,
            no_proxy=no_proxy,
        )
        return env


class _HTTPServer(ThreadingHTTPServer):
    def __init__(self, hub: HubServer):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hub = hub


_TYPE = r"(?P<type_path>models|datasets)"
_REPO = r"(?P<repo_id>[^/]+/[^/]+)"
_REV = r"(?P<rev>[^/]+)"
_GIT = r"(?:(?P<git_prefix>datasets)/)?" + _REPO  # a dataset's git and file URLs start with /datasets/
ROUTES = [
    ("GET", re.compile(r"/api/whoami-v2"), "whoami"),
    ("POST", re.compile(r"/api/repos/create"), "create_repo"),
    ("POST", re.compile(r"/api/validate-yaml"), "validate_yaml"),
    ("GET", re.compile(rf"/api/{_TYPE}/{_REPO}(?:/revision/{_REV})?"), "repo_info"),
    ("GET", re.compile(rf"/api/{_TYPE}/{_REPO}/tree/{_REV}(?:/(?P<path>.+))?"), "tree"),
    ("POST", re.compile(rf"/api/{_TYPE}/{_REPO}/paths-info/{_REV}"), "paths_info"),
    ("GET", re.compile(rf"/api/{_TYPE}/{_REPO}/refs"), "refs"),
    ("POST", re.compile(rf"/api/{_TYPE}/{_REPO}/branch/(?P<branch>[^/]+)"), "create_branch"),
    ("POST", re.compile(rf"/api/{_TYPE}/{_REPO}/tag/{_REV}"), "create_tag"),
    ("POST", re.compile(rf"/api/{_TYPE}/{_REPO}/preupload/{_REV}"), "preupload"),
    ("POST", re.compile(rf"/api/{_TYPE}/{_REPO}/commit/{_REV}"), "commit"),
    ("POST", re.compile(rf"/{_GIT}\.git/info/lfs/objects/batch"), "lfs_batch"),
    ("POST", re.compile(rf"/{_GIT}\.git/info/lfs/objects/verify"), "lfs_verify"),
    ("PUT", re.compile(rf"/{_GIT}\.git/info/lfs/objects/(?P<oid>[0-9a-f]{{64}})"), "lfs_put"),
    ("HEAD", re.compile(rf"/{_GIT}/resolve/{_REV}/(?P<path>.+)"), "resolve"),
    ("GET", re.compile(rf"/{_GIT}/resolve/{_REV}/(?P<path>.+)"), "resolve"),
]
_RANGE = re.compile(r"bytes=(?P<start>[0-9]+)-(?P<end>[0-9]*)")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client reuses its connections
    server: _HTTPServer

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_GET

    def log_message(self, format: str, *args) -> None:
        """Silent: the request log is `HubServer.requests`."""

    @property
    def hub(self) -> HubServer:
        return self.server.hub

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        self.query = parse_qs(url.query)
        self.hub.requests.append(f"{self.command} {url.path}")
        try:
            handler, params = self._route(url.path)
            # One request at a time touches the state (repos, files on disk): test traffic is small.
            with self.hub.lock:
                self.authenticated = self._check_token()
                handler(**params)
        except HubError as error:
            self._send_error(error)
        except (KeyError, TypeError, ValueError) as error:  # what a malformed JSON or NDJSON body raises
            self._send_error(HubError(400, f"Malformed request: {error!r}"))

    def _route(self, path: str):
        for method, pattern, name in ROUTES:
            match = pattern.fullmatch(path)
            if method == self.command and match:
                params = {key: unquote(value) for key, value in match.groupdict().items() if value is not None}
                type_path, git_prefix = params.pop("type_path", None), params.pop("git_prefix", None)
                if "repo_id" in params:
                    params["repo_type"] = "dataset" if "datasets" in (type_path, git_prefix) else "model"
                return getattr(self, name), params
        raise HubError(404, f"hub_server does not implement {self.command} {path}")

    # --- requests and answers ---

    def _check_token(self) -> bool:
        """Whether the request carries the token; a wrong token is refused outright."""
        header = self.headers.get("Authorization")
        if header is None:
            return False
        if header != f"Bearer {self.hub.token}":
            raise HubError(401, INVALID_CREDENTIALS)
        return True

    def _require_token(self) -> None:
        if not self.authenticated:
            raise HubError(401, "A token is required: send `Authorization: Bearer <token>`")

    def _flag(self, name: str, query: dict | None = None) -> bool:
        return (query or self.query).get(name, [""])[0].lower() in ("1", "true")

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            raise HubError(411, "hub_server needs a Content-Length: chunked request bodies are not supported")
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def _send(
        self,
        body: bytes = b"",
        status: int = 200,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
        length: int | None = None,
    ) -> None:
        """Answer; a HEAD gets the headers only, with `length` standing for the body it would have had."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, data, content_type: str = "application/json") -> None:
        self._send(json.dumps(data).encode(), content_type=content_type)

    def _send_error(self, error: HubError) -> None:
        # An error can leave part of the request body unread: close the connection rather than read it as a request.
        self.close_connection = True
        headers = {"X-Error-Message": error.message, "Connection": "close", **error.headers}
        if error.code:
            headers["X-Error-Code"] = error.code
        self._send(json.dumps({"error": error.message, **error.fields}).encode(), error.status, headers)

    def _repo(self, repo_type: str, repo_id: str) -> Repo:
        repo = self.hub.repos.get((repo_type, repo_id))
        if repo is None:
            raise HubError(404, "Repository not found", "RepoNotFound")
        if repo.private and not self.authenticated:
            raise HubError(401, "Repository not found", "RepoNotFound")
        return repo

    def _commit(self, repo: Repo, rev: str) -> Commit:
        """The commit `rev` (a branch, a tag or a full sha) names."""
        commit = repo.commit_of(rev)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return commit

    def _writable_branch(self, repo_type: str, repo_id: str, rev: str) -> tuple[Repo, str]:
        """The repo and the branch a write goes to; the client may name it `refs/heads/<branch>`."""
        self._require_token()
        repo = self._repo(repo_type, repo_id)
        branch = rev.removeprefix("refs/heads/")
        if branch not in repo.branches:
            raise HubError(404, f"Invalid rev id: {rev} (commits go to an existing branch)", "RevisionNotFound")
        return repo, branch

    @staticmethod
    def _repo_path(path: str) -> str:
        """A file path inside a repo; anything that could climb out of the repo's folder is refused."""
        if not isinstance(path, str) or path.startswith("/") or any(p in ("", ".", "..") for p in path.split("/")):
            raise HubError(400, f"Invalid path in repo: {path!r}")
        return path

    # --- account and repos ---

    def whoami(self) -> None:
        self._require_token()
        self._send_json(
            {
                "type": "user",
                "name": self.hub.user,
                "fullname": "hf-xalign test user",
                "orgs": [],
                "auth": {"type": "access_token", "accessToken": {"displayName": "hub_server", "role": "write"}},
            }
        )

    def create_repo(self) -> None:
        payload = json.loads(self._body())
        self._require_token()
        repo_type = payload.get("type", "model")
        if repo_type not in ("model", "dataset"):
            raise HubError(400, f"hub_server keeps model and dataset repos only, not {repo_type!r}")
        namespace, name = payload.get("organization") or self.hub.user, payload["name"]
        if not (NAME.fullmatch(namespace) and NAME.fullmatch(name)):
            raise HubError(400, f"Invalid repo id: {namespace}/{name}")
        repo_id = f"{namespace}/{name}"
        url = f"{self.hub.endpoint}/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}"
        if (repo_type, repo_id) in self.hub.repos:
            # create_repo(exist_ok=True) takes the url from this answer.
            raise HubError(409, f"You already created this {repo_type} repo", fields={"url": url})
        folder = self.hub.root / f"{repo_type}s" / namespace / name
        # The Hub takes either field: huggingface_hub 2.4 sends `visibility`, 1.x (test-min's) `private: true`.
        private = payload.get("visibility") == "private" or payload.get("private") is True
        repo = Repo(repo_type, repo_id, folder, private=private)
        for directory in (repo.files_dir, repo.lfs_dir, repo.blobs_dir):
            directory.mkdir(parents=True)
        self.hub.repos[(repo_type, repo_id)] = repo
        self._send_json({"url": url, "name": repo_id, "id": secrets.token_hex(12)})

    def validate_yaml(self) -> None:
        self._body()
        self._send_json({"errors": [], "warnings": []})

    def repo_info(self, repo_type: str, repo_id: str, rev: str = REVISION) -> None:
        repo = self._repo(repo_type, repo_id)
        commit = self._commit(repo, rev)
        blobs = self._flag("blobs")
        info = {
            "id": repo_id,
            "author": repo_id.split("/")[0],
            "sha": commit.sha,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "createdAt": repo.created_at,
            "lastModified": commit.date,
            "tags": [],
            "downloads": 0,
            "likes": 0,
            "siblings": [self._sibling(path, stored, blobs) for path, stored in sorted(commit.files.items())],
        }
        if repo_type == "model":
            info["modelId"] = repo_id
        self._send_json(info)

    @staticmethod
    def _sibling(path: str, stored: StoredFile, blobs: bool) -> dict:
        sibling: dict = {"rfilename": path}
        if blobs:
            sibling.update(size=stored.size, blobId=stored.blob_id)
            if stored.lfs_sha256:
                sibling["lfs"] = {"size": stored.size, "sha256": stored.lfs_sha256, "pointerSize": stored.pointer_size}
        return sibling

    def tree(self, repo_type: str, repo_id: str, rev: str, path: str = "") -> None:
        commit = self._commit(self._repo(repo_type, repo_id), rev)
        prefix = f"{path.strip('/')}/" if path.strip("/") else ""
        recursive = self._flag("recursive")
        entries: dict[str, dict] = {}
        for file_path, stored in sorted(commit.files.items()):
            if not file_path.startswith(prefix):
                continue
            parts = file_path[len(prefix) :].split("/")
            folders = [prefix + "/".join(parts[:depth]) for depth in range(1, len(parts))]
            for folder in folders if recursive else folders[:1]:
                entries.setdefault(folder, self._tree_folder(commit, folder))
            if recursive or len(parts) == 1:
                entries[file_path] = self._tree_file(file_path, stored)
        if prefix and not entries:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
        self._send_json([entries[key] for key in sorted(entries)])

    def paths_info(self, repo_type: str, repo_id: str, rev: str) -> None:
        form = parse_qs(self._body().decode())
        commit = self._commit(self._repo(repo_type, repo_id), rev)
        answers = []
        for path in form.get("paths", []):
            path = path.strip("/")
            if path in commit.files:
                answers.append(self._tree_file(path, commit.files[path]))
            elif any(file.startswith(f"{path}/") for file in commit.files):
                answers.append(self._tree_folder(commit, path))
            # A path that does not exist is left out, as the Hub does.
        self._send_json(answers)

    @staticmethod
    def _tree_folder(commit: Commit, folder: str) -> dict:
        # Not a git tree hash: clients only carry a folder's oid along.
        oid = hashlib.sha1(f"{commit.sha}:{folder}".encode()).hexdigest()
        return {"type": "directory", "oid": oid, "size": 0, "path": folder}

    @staticmethod
    def _tree_file(path: str, stored: StoredFile) -> dict:
        entry: dict = {"type": "file", "oid": stored.blob_id, "size": stored.size, "path": path}
        if stored.lfs_sha256:
            entry["lfs"] = {"oid": stored.lfs_sha256, "size": stored.size, "pointerSize": stored.pointer_size}
        return entry

    # --- branches and tags ---

    def refs(self, repo_type: str, repo_id: str) -> None:
        repo = self._repo(repo_type, repo_id)

        def ref(kind: str, name: str, sha: str) -> dict:
            return {
                "name": name,
                "ref": name if name.startswith("refs/") else f"refs/{kind}/{name}",
                "targetCommit": sha,
            }

        branches = [ref("heads", name, sha) for name, sha in repo.branches.items() if name != CONVERT_REF]
        converts = [ref("convert", name, sha) for name, sha in repo.branches.items() if name == CONVERT_REF]
        tags = [ref("tags", name, sha) for name, sha in repo.tags.items()]
        self._send_json({"branches": branches, "converts": converts, "tags": tags})

    def create_branch(self, repo_type: str, repo_id: str, branch: str) -> None:
        body = self._body()
        self._require_token()
        repo = self._repo(repo_type, repo_id)
        if branch.startswith("refs/") and branch != CONVERT_REF:
            raise HubError(400, f"Invalid branch name: {branch} (refs/ is reserved; hub_server takes {CONVERT_REF})")
        if branch in repo.branches or branch in repo.tags:
            raise HubError(409, f"Reference already exists: {branch}")
        if branch == CONVERT_REF:  # the converter's ref shares no history with main: it starts empty
            orphan = Commit(new_sha(), {})
            repo.commits[orphan.sha] = orphan
            repo.branches[branch] = orphan.sha
        else:
            starting_point = json.loads(body or b"{}").get("startingPoint") or REVISION
            repo.branches[branch] = self._commit(repo, starting_point).sha
        self._send_json({})

    def create_tag(self, repo_type: str, repo_id: str, rev: str) -> None:
        payload = json.loads(self._body())
        self._require_token()
        repo = self._repo(repo_type, repo_id)
        tag = payload["tag"]
        if tag in repo.tags or tag in repo.branches:
            raise HubError(409, f"Reference already exists: {tag}")
        repo.tags[tag] = self._commit(repo, rev).sha
        self._send_json({})

    # --- uploads ---

    def preupload(self, repo_type: str, repo_id: str, rev: str) -> None:
        payload = json.loads(self._body())
        repo, branch = self._writable_branch(repo_type, repo_id, rev)
        files = repo.commits[repo.branches[branch]].files
        answers = []
        for file in payload["files"]:
            stored = files.get(file["path"])
            answers.append(
                {
                    "path": file["path"],
                    "uploadMode": "lfs" if is_lfs(file["path"], file["size"]) else "regular",
                    "shouldIgnore": False,
                    # What the client compares with its own oid to skip unchanged files.
                    "oid": stored and (stored.lfs_sha256 or stored.blob_id),
                }
            )
        self._send_json({"files": answers})

    def lfs_batch(self, repo_type: str, repo_id: str) -> None:
        payload = json.loads(self._body())
        repo, _ = self._writable_branch(repo_type, repo_id, payload.get("ref", {}).get("name", REVISION))
        if payload.get("operation") != "upload":
            raise HubError(400, "hub_server's LFS batch takes uploads only: downloads go through /resolve")
        if "basic" not in payload.get("transfers", ["basic"]):
            raise HubError(400, f"hub_server offers the basic LFS transfer only, not {payload['transfers']}")
        objects = [self._lfs_object(repo, obj["oid"], obj["size"]) for obj in payload["objects"]]
        # The answer names "basic" whatever else the client offered: no Xet, no multipart.
        self._send_json({"transfer": "basic", "objects": objects}, content_type="application/vnd.git-lfs+json")

    def _git_url(self, repo: Repo) -> str:
        return f"{self.hub.endpoint}/{'datasets/' if repo.repo_type == 'dataset' else ''}{repo.repo_id}"

    def _lfs_object(self, repo: Repo, oid: str, size: int) -> dict:
        if not SHA256.fullmatch(oid):
            raise HubError(400, f"Invalid LFS oid: {oid!r}")
        entry = {"oid": oid, "size": size, "authenticated": True}
        stored = repo.lfs_dir / oid
        if stored.is_file() and stored.stat().st_size == size:
            return entry  # no actions: the client skips an object the server has
        # The client PUTs to the href without its token, as to a pre-signed storage URL: the ticket is the signature.
        ticket = secrets.token_urlsafe(16)
        self.hub.upload_tickets[(repo.repo_type, repo.repo_id, oid)] = ticket
        base = f"{self._git_url(repo)}.git/info/lfs/objects"
        entry["actions"] = {"upload": {"href": f"{base}/{oid}?ticket={ticket}"}, "verify": {"href": f"{base}/verify"}}
        return entry

    def lfs_put(self, repo_type: str, repo_id: str, oid: str) -> None:
        ticket = self.query.get("ticket", [None])[0]
        key = (repo_type, repo_id, oid)
        if ticket is None or self.hub.upload_tickets.get(key) != ticket:
            raise HubError(403, "Upload ticket missing or wrong: ask the LFS batch endpoint for an upload action")
        data = self._body()
        if hashlib.sha256(data).hexdigest() != oid:
            raise HubError(400, f"Uploaded content does not match its sha256 oid {oid}")
        (self.hub.repos[(repo_type, repo_id)].lfs_dir / oid).write_bytes(data)
        del self.hub.upload_tickets[key]
        self._send()

    def lfs_verify(self, repo_type: str, repo_id: str) -> None:
        payload = json.loads(self._body())
        self._require_token()
        repo = self._repo(repo_type, repo_id)
        oid = payload["oid"]
        stored = repo.lfs_dir / oid
        if not (SHA256.fullmatch(oid) and stored.is_file() and stored.stat().st_size == payload["size"]):
            raise HubError(404, f"LFS object {oid} of size {payload['size']} was not uploaded")
        self._send_json({"success": True})

    def commit(self, repo_type: str, repo_id: str, rev: str) -> None:
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        repo, branch = self._writable_branch(repo_type, repo_id, rev)
        if self._flag("create_pr"):
            raise HubError(400, "hub_server does not implement pull requests")
        if not lines or lines[0]["key"] != "header":
            raise HubError(400, "A commit starts with a header line")
        files = dict(repo.commits[repo.branches[branch]].files)
        changes: list[tuple[str, bytes | Path | None]] = []  # content, LFS object to copy, or None to delete
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            path = self._repo_path(value["path"].rstrip("/") if key == "deletedFolder" else value["path"])
            if key == "file":
                data = base64.b64decode(value["content"], validate=True)
                files[path] = StoredFile(len(data), git_blob_oid(data))
                changes.append((path, data))
            elif key == "lfsFile":
                obj = repo.lfs_dir / value["oid"]
                if not (SHA256.fullmatch(value["oid"]) and obj.is_file()):
                    raise HubError(400, f"The LFS object {value['oid']} of {path} was never uploaded")
                size = obj.stat().st_size
                files[path] = StoredFile(size, git_blob_oid(lfs_pointer(value["oid"], size)), value["oid"])
                changes.append((path, obj))
            elif key == "deletedFile":
                if files.pop(path, None) is None:
                    raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                changes.append((path, None))
            elif key == "deletedFolder":
                inside = [file for file in files if file.startswith(f"{path}/")]
                if not inside:
                    raise HubError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
                for file in inside:
                    del files[file]
                    changes.append((file, None))
            else:
                raise HubError(400, f"hub_server does not implement the commit operation {key!r}")
        # Every operation was valid: only now does the repo change.
        for path, content in changes:
            if isinstance(content, bytes):
                (repo.blobs_dir / git_blob_oid(content)).write_bytes(content)
            if branch == REVISION:
                self._write(repo, path, content)
        commit = Commit(new_sha(), files)
        repo.commits[commit.sha] = commit
        repo.branches[branch] = commit.sha
        self._send_json(
            {
                "success": True,
                "commitOid": commit.sha,
                "commitUrl": f"{self._git_url(repo)}/commit/{commit.sha}",
                "pullRequestUrl": None,
            }
        )

    @staticmethod
    def _write(repo: Repo, path: str, content: bytes | Path | None) -> None:
        """Keep `files/` the view of `main`'s head."""
        target = repo.files_dir / path
        if content is None:
            target.unlink()
            for folder in target.parents:  # drop the folders the deletion emptied
                if folder == repo.files_dir or any(folder.iterdir()):
                    break
                folder.rmdir()
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copyfile(content, target)
        else:
            target.write_bytes(content)

    # --- downloads ---

    def resolve(self, repo_type: str, repo_id: str, rev: str, path: str) -> None:
        repo = self._repo(repo_type, repo_id)
        commit = self._commit(repo, rev)
        stored = commit.files.get(path)
        if stored is None:
            # X-Repo-Commit lets the client remember the file is missing at this commit.
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": commit.sha})
        headers = {"X-Repo-Commit": commit.sha, "ETag": f'"{stored.blob_id}"'}
        if stored.lfs_sha256:
            # The client keys its cache on the LFS sha256 rather than on the pointer's blob id.
            headers.update({"X-Linked-Etag": f'"{stored.lfs_sha256}"', "X-Linked-Size": str(stored.size)})
        data = b"" if self.command == "HEAD" else repo.content_path(stored).read_bytes()
        byte_range = _RANGE.fullmatch(self.headers.get("Range", ""))
        if byte_range is None:
            self._send(data, headers=headers, content_type="application/octet-stream", length=stored.size)
            return
        start = int(byte_range["start"])
        end = min(int(byte_range["end"] or stored.size - 1), stored.size - 1)
        headers["Content-Range"] = f"bytes {start}-{end}/{stored.size}"
        body = data[start : end + 1]
        self._send(body, 206, headers, "application/octet-stream", length=max(end + 1 - start, 0))
