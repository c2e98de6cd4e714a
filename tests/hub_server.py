"""A Hub-compatible HTTP server for tests: the installed `huggingface_hub` client talks to it over real HTTP.

The `hub_server` fixture (tests/conftest.py) starts it on 127.0.0.1 with a free port. What it receives is kept in a
temporary folder, so a test can list and read every byte:

    <root>/models/<namespace>/<name>/files/<path>    the files of the repo's head commit, LFS files included
    <root>/models/<namespace>/<name>/lfs/<sha256>    every LFS object uploaded

`huggingface_hub` reads HF_ENDPOINT and HF_HUB_OFFLINE when it is imported, and the test suite runs offline, so the
client runs in a subprocess with the environment from `HubServer.client_env(home)`.

Endpoints, model repos with `namespace/name` ids:

    GET  /api/whoami-v2                              whoami
    POST /api/repos/create                           create_repo: 409 if it exists (exist_ok), visibility "private" or private: true
    POST /api/validate-yaml                          the README.md check before a commit: every card is valid
    GET  /api/models/{repo}[/revision/{rev}]         model_info, repo_info: sha, private, siblings (?blobs=1: sizes, LFS)
    GET  /api/models/{repo}/tree/{rev}[/{path}]      list_repo_tree, list_repo_files (?recursive=true), in one page
    POST /api/models/{repo}/preupload/{rev}          upload mode per file: "lfs" for the Hub's default .gitattributes
                                                     patterns (*.safetensors, *.bin, ...) or 10 MiB and more
    POST /{repo}.git/info/lfs/objects/batch          LFS batch, "basic" transfer: an upload and a verify action
    PUT  /{repo}.git/info/lfs/objects/{oid}          the upload action's href, with a ticket in place of a signature
    POST /{repo}.git/info/lfs/objects/verify         the verify action
    POST /api/models/{repo}/commit/{rev}             NDJSON commit: header, file (base64), lfsFile, deletedFile,
                                                     deletedFolder; every commit gets a new 40-hex sha
    HEAD, GET /{repo}/resolve/{rev}/{path}           hf_hub_download, snapshot_download: X-Repo-Commit, ETag,
                                                     X-Linked-Etag and X-Linked-Size for LFS files, Content-Length

Auth is `Authorization: Bearer <token>`. A wrong token is refused on every request, as the Hub does (401, "Invalid
credentials in Authorization header"); writes need the token; a private repo asked for without it answers 401
RepoNotFound, as the Hub hides private repos.

Deliberately not implemented: Xet storage (with `hf_xet` installed the client uploads through Xet whatever the server
says, so `client_env` sets HF_HUB_DISABLE_XET=1; the client's Xet token request would get a 404 here); datasets and
spaces; branches, tags, pull requests and history (a revision is `main` or the head commit's sha); `parentCommit`
checks; multipart LFS uploads; Range requests; pagination; .gitignore; organizations and permissions (the token may
write to any namespace). An unknown route answers 404 naming itself.
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
class Repo:
    repo_id: str
    folder: Path
    private: bool
    sha: str = field(default_factory=new_sha)  # the Hub makes an initial commit
    created_at: str = field(default_factory=now)
    last_modified: str = field(default_factory=now)
    files: dict[str, StoredFile] = field(default_factory=dict)

    @property
    def files_dir(self) -> Path:
        return self.folder / "files"

    @property
    def lfs_dir(self) -> Path:
        return self.folder / "lfs"


class HubServer:
    """The server, its state and the fixture's API: `endpoint`, `token`, `user`, `root`, `requests` (every request
    as "METHOD /path", in order), `received_files()` and `client_env(home)`."""

    def __init__(self, root: Path, user: str = USER, token: str = TOKEN):
        self.root, self.user, self.token = Path(root), user, token
        self.repos: dict[str, Repo] = {}
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


_REPO = r"(?P<repo_id>[^/]+/[^/]+)"
_REV = r"(?P<rev>[^/]+)"
ROUTES = [
    ("GET", re.compile(r"/api/whoami-v2"), "whoami"),
    ("POST", re.compile(r"/api/repos/create"), "create_repo"),
    ("POST", re.compile(r"/api/validate-yaml"), "validate_yaml"),
    ("GET", re.compile(rf"/api/models/{_REPO}(?:/revision/{_REV})?"), "model_info"),
    ("GET", re.compile(rf"/api/models/{_REPO}/tree/{_REV}(?:/(?P<path>.+))?"), "tree"),
    ("POST", re.compile(rf"/api/models/{_REPO}/preupload/{_REV}"), "preupload"),
    ("POST", re.compile(rf"/api/models/{_REPO}/commit/{_REV}"), "commit"),
    ("POST", re.compile(rf"/{_REPO}\.git/info/lfs/objects/batch"), "lfs_batch"),
    ("POST", re.compile(rf"/{_REPO}\.git/info/lfs/objects/verify"), "lfs_verify"),
    ("PUT", re.compile(rf"/{_REPO}\.git/info/lfs/objects/(?P<oid>[0-9a-f]{{64}})"), "lfs_put"),
    ("HEAD", re.compile(rf"/{_REPO}/resolve/{_REV}/(?P<path>.+)"), "resolve"),
    ("GET", re.compile(rf"/{_REPO}/resolve/{_REV}/(?P<path>.+)"), "resolve"),
]


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

    def _flag(self, name: str) -> bool:
        return self.query.get(name, [""])[0].lower() in ("1", "true")

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

    def _repo(self, repo_id: str, rev: str | None = None) -> Repo:
        """The repo to read, at `main` or its head commit."""
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            raise HubError(404, "Repository not found", "RepoNotFound")
        if repo.private and not self.authenticated:
            raise HubError(401, "Repository not found", "RepoNotFound")
        if rev is not None and rev not in (REVISION, repo.sha):
            raise HubError(
                404, f"Invalid rev id: {rev} (hub_server serves `main` and its head commit)", "RevisionNotFound"
            )
        return repo

    def _writable_repo(self, repo_id: str, rev: str) -> Repo:
        self._require_token()
        repo = self._repo(repo_id)
        if rev != REVISION:
            raise HubError(404, f"Invalid rev id: {rev} (hub_server commits to `main` only)", "RevisionNotFound")
        return repo

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
        if payload.get("type", "model") != "model":
            raise HubError(400, f"hub_server keeps model repos only, not {payload['type']!r}")
        namespace, name = payload.get("organization") or self.hub.user, payload["name"]
        if not (NAME.fullmatch(namespace) and NAME.fullmatch(name)):
            raise HubError(400, f"Invalid repo id: {namespace}/{name}")
        repo_id = f"{namespace}/{name}"
        url = f"{self.hub.endpoint}/{repo_id}"
        if repo_id in self.hub.repos:
            # create_repo(exist_ok=True) takes the url from this answer.
            raise HubError(409, "You already created this model repo", fields={"url": url})
        # The Hub takes either field: huggingface_hub 2.4 sends `visibility`, 1.3 (test-min's) `private: true`.
        private = payload.get("visibility") == "private" or payload.get("private") is True
        repo = Repo(repo_id, self.hub.root / "models" / namespace / name, private=private)
        repo.files_dir.mkdir(parents=True)
        repo.lfs_dir.mkdir()
        self.hub.repos[repo_id] = repo
        self._send_json({"url": url, "name": repo_id, "id": secrets.token_hex(12)})

    def validate_yaml(self) -> None:
        self._body()
        self._send_json({"errors": [], "warnings": []})

    def model_info(self, repo_id: str, rev: str | None = None) -> None:
        repo = self._repo(repo_id, rev)
        blobs = self._flag("blobs")
        self._send_json(
            {
                "id": repo_id,
                "modelId": repo_id,
                "author": repo_id.split("/")[0],
                "sha": repo.sha,
                "private": repo.private,
                "gated": False,
                "disabled": False,
                "createdAt": repo.created_at,
                "lastModified": repo.last_modified,
                "tags": [],
                "downloads": 0,
                "likes": 0,
                "siblings": [self._sibling(path, stored, blobs) for path, stored in sorted(repo.files.items())],
            }
        )

    @staticmethod
    def _sibling(path: str, stored: StoredFile, blobs: bool) -> dict:
        sibling: dict = {"rfilename": path}
        if blobs:
            sibling.update(size=stored.size, blobId=stored.blob_id)
            if stored.lfs_sha256:
                sibling["lfs"] = {"size": stored.size, "sha256": stored.lfs_sha256, "pointerSize": stored.pointer_size}
        return sibling

    def tree(self, repo_id: str, rev: str, path: str = "") -> None:
        repo = self._repo(repo_id, rev)
        prefix = f"{path.strip('/')}/" if path.strip("/") else ""
        recursive = self._flag("recursive")
        entries: dict[str, dict] = {}
        for file_path, stored in sorted(repo.files.items()):
            if not file_path.startswith(prefix):
                continue
            parts = file_path[len(prefix) :].split("/")
            folders = [prefix + "/".join(parts[:depth]) for depth in range(1, len(parts))]
            for folder in folders if recursive else folders[:1]:
                # Not a git tree hash: clients only carry a folder's oid along.
                oid = hashlib.sha1(f"{repo.sha}:{folder}".encode()).hexdigest()
                entries.setdefault(folder, {"type": "directory", "oid": oid, "size": 0, "path": folder})
            if recursive or len(parts) == 1:
                entries[file_path] = self._tree_file(file_path, stored)
        if prefix and not entries:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
        self._send_json([entries[key] for key in sorted(entries)])

    @staticmethod
    def _tree_file(path: str, stored: StoredFile) -> dict:
        entry: dict = {"type": "file", "oid": stored.blob_id, "size": stored.size, "path": path}
        if stored.lfs_sha256:
            entry["lfs"] = {"oid": stored.lfs_sha256, "size": stored.size, "pointerSize": stored.pointer_size}
        return entry

    # --- uploads ---

    def preupload(self, repo_id: str, rev: str) -> None:
        payload = json.loads(self._body())
        repo = self._writable_repo(repo_id, rev)
        answers = []
        for file in payload["files"]:
            stored = repo.files.get(file["path"])
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

    def lfs_batch(self, repo_id: str) -> None:
        payload = json.loads(self._body())
        repo = self._writable_repo(repo_id, payload.get("ref", {}).get("name", REVISION))
        if payload.get("operation") != "upload":
            raise HubError(400, "hub_server's LFS batch takes uploads only: downloads go through /resolve")
        if "basic" not in payload.get("transfers", ["basic"]):
            raise HubError(400, f"hub_server offers the basic LFS transfer only, not {payload['transfers']}")
        objects = [self._lfs_object(repo, obj["oid"], obj["size"]) for obj in payload["objects"]]
        # The answer names "basic" whatever else the client offered: no Xet, no multipart.
        self._send_json({"transfer": "basic", "objects": objects}, content_type="application/vnd.git-lfs+json")

    def _lfs_object(self, repo: Repo, oid: str, size: int) -> dict:
        if not SHA256.fullmatch(oid):
            raise HubError(400, f"Invalid LFS oid: {oid!r}")
        entry = {"oid": oid, "size": size, "authenticated": True}
        stored = repo.lfs_dir / oid
        if stored.is_file() and stored.stat().st_size == size:
            return entry  # no actions: the client skips an object the server has
        # The client PUTs to the href without its token, as to a pre-signed storage URL: the ticket is the signature.
        ticket = secrets.token_urlsafe(16)
        self.hub.upload_tickets[(repo.repo_id, oid)] = ticket
        base = f"{self.hub.endpoint}/{repo.repo_id}.git/info/lfs/objects"
        entry["actions"] = {"upload": {"href": f"{base}/{oid}?ticket={ticket}"}, "verify": {"href": f"{base}/verify"}}
        return entry

    def lfs_put(self, repo_id: str, oid: str) -> None:
        ticket = self.query.get("ticket", [None])[0]
        if ticket is None or self.hub.upload_tickets.get((repo_id, oid)) != ticket:
            raise HubError(403, "Upload ticket missing or wrong: ask the LFS batch endpoint for an upload action")
        data = self._body()
        if hashlib.sha256(data).hexdigest() != oid:
            raise HubError(400, f"Uploaded content does not match its sha256 oid {oid}")
        (self.hub.repos[repo_id].lfs_dir / oid).write_bytes(data)
        del self.hub.upload_tickets[(repo_id, oid)]
        self._send()

    def lfs_verify(self, repo_id: str) -> None:
        payload = json.loads(self._body())
        repo = self._writable_repo(repo_id, REVISION)
        oid = payload["oid"]
        stored = repo.lfs_dir / oid
        if not (SHA256.fullmatch(oid) and stored.is_file() and stored.stat().st_size == payload["size"]):
            raise HubError(404, f"LFS object {oid} of size {payload['size']} was not uploaded")
        self._send_json({"success": True})

    def commit(self, repo_id: str, rev: str) -> None:
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        repo = self._writable_repo(repo_id, rev)
        if self._flag("create_pr"):
            raise HubError(400, "hub_server does not implement pull requests")
        if not lines or lines[0]["key"] != "header":
            raise HubError(400, "A commit starts with a header line")
        files = dict(repo.files)
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
            self._write(repo, path, content)
        repo.files, repo.sha, repo.last_modified = files, new_sha(), now()
        self._send_json(
            {
                "success": True,
                "commitOid": repo.sha,
                "commitUrl": f"{self.hub.endpoint}/{repo_id}/commit/{repo.sha}",
                "pullRequestUrl": None,
            }
        )

    @staticmethod
    def _write(repo: Repo, path: str, content: bytes | Path | None) -> None:
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

    def resolve(self, repo_id: str, rev: str, path: str) -> None:
        repo = self._repo(repo_id, rev)
        stored = repo.files.get(path)
        if stored is None:
            # X-Repo-Commit lets the client remember the file is missing at this commit.
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": repo.sha})
        headers = {"X-Repo-Commit": repo.sha, "ETag": f'"{stored.blob_id}"'}
        if stored.lfs_sha256:
            # The client keys its cache on the LFS sha256 rather than on the pointer's blob id.
            headers.update({"X-Linked-Etag": f'"{stored.lfs_sha256}"', "X-Linked-Size": str(stored.size)})
        body = b"" if self.command == "HEAD" else (repo.files_dir / path).read_bytes()
        self._send(body, headers=headers, content_type="application/octet-stream", length=stored.size)
