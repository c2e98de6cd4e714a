"""A Hub-compatible HTTP server on 127.0.0.1: the installed `huggingface_hub` client (and `datasets` and
`transformers` through it) talks to it over real HTTP, with no account and no network.

The tests start it through the `hub_server` fixture (tests/conftest.py) on a free port; a user starts it with
`xalign hub-server [--port N] [--root DIR]` (or `python -m hf_xalign.local_hub`), which prints the environment to
give the client. What it receives is kept in its root folder, so a test can list and read every byte:

    <root>/<models|datasets>/<namespace>/<name>/files/<path>   the files of `main`'s head commit, LFS files included
    <root>/<models|datasets>/<namespace>/<name>/lfs/<sha256>   every LFS object uploaded
    <root>/<models|datasets>/<namespace>/<name>/blobs/<oid>    every regular file's content, by git blob id, so that
                                                               any commit, branch or tag can be read

The repositories, commits, branches and tags themselves live in memory: a server started again starts empty.
`huggingface_hub` reads HF_ENDPOINT and HF_HUB_OFFLINE when it is imported (`datasets` copies HF_ENDPOINT into
`datasets.config` at import too), so the client runs in a process started with the environment from
`HubServer.client_env(home)` (tests) or `HubServer.user_env()` (the command's line).

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

import os
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

from .handler import HubRequestHandler
from .state import TOKEN, USER, Repo

LOCALHOST = "127.0.0.1"

# Variables that would point the client's cache or token elsewhere, or keep it offline: `client_env` drops them.
CLIENT_ENV_DROPPED = (
    "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HUGGINGFACE_CO_STAGING",
    "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_ASSETS_CACHE", "HUGGINGFACE_ASSETS_CACHE", "HF_XET_CACHE",
    "HF_DATASETS_CACHE", "TRANSFORMERS_CACHE", "HF_TOKEN_PATH", "HF_HUB_DISABLE_IMPLICIT_TOKEN",
)  # fmt: skip


class HubServer:
    """The local Hub: its state, its HTTP server, and what a caller reads from it.

    Used as a context manager, it serves from a thread until the block ends (the tests' fixture); `serve_forever()`
    serves from the calling thread instead (the `xalign hub-server` command).

    Args:
        root (`Path`): the folder that receives every repository's files (see the module docstring).
        user (`str`, *optional*, defaults to `"xalign-tester"`): the account's name, `whoami`'s answer and the
            namespace of a repo created without one.
        token (`str`, *optional*): the one token accepted; another is refused on every request.
        port (`int`, *optional*, defaults to `0`): the port on 127.0.0.1; 0 takes a free one.

    Attributes: `endpoint` (`http://127.0.0.1:PORT`), `repos`, `requests` (every request as "METHOD /path", in
    order), `received_files()`, `client_env(home)` and `user_env()`.

    Raises:
        `OSError`: the port is taken (`errno.EADDRINUSE`).
    """

    def __init__(self, root: Path, user: str = USER, token: str = TOKEN, port: int = 0):
        self.root, self.user, self.token = Path(root), user, token
        self.repos: dict[tuple[str, str], Repo] = {}  # (repo type, repo id) -> repo
        self.requests: list[str] = []
        self.upload_tickets: dict[tuple[str, str, str], str] = {}
        self.lock = threading.Lock()
        self._httpd = _HTTPServer(self, port)
        host, port = self._httpd.server_address[:2]
        self.endpoint = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self.serve_forever, name="local_hub", daemon=True)

    def __enter__(self) -> HubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._httpd.shutdown()
        self._thread.join()

    def serve_forever(self) -> None:
        """Answer requests until `shutdown()` is called from another thread (or Ctrl-C in this one); the port is
        closed when it returns."""
        try:
            # A short poll interval: `shutdown` waits for the serving loop to look, at each fixture teardown.
            self._httpd.serve_forever(poll_interval=0.05)
        finally:
            self._httpd.server_close()

    def received_files(self) -> list[Path]:
        return sorted(path for path in self.root.rglob("*") if path.is_file())

    def user_env(self) -> dict[str, str]:
        """The variables a client needs to use this server, and nothing else of the caller's environment."""
        return {
            "HF_ENDPOINT": self.endpoint,
            "HF_TOKEN": self.token,
            # With hf_xet installed, huggingface_hub >= 2 asks for a Xet write token (a 404 here) before any
            # upload, whatever this server answers; set, it uploads through the LFS protocol this server speaks.
            "HF_HUB_DISABLE_XET": "1",
        }

    def client_env(self, home: Path) -> dict[str, str]:
        """The environment for a subprocess whose `huggingface_hub` talks to this server, with `home` as HF_HOME:
        the caller's, less what would keep it offline or point its cache elsewhere, plus `user_env()`."""
        home.mkdir(parents=True, exist_ok=True)
        env = {key: value for key, value in os.environ.items() if key not in CLIENT_ENV_DROPPED}
        no_proxy = ",".join(filter(None, [env.get("NO_PROXY") or env.get("no_proxy"), LOCALHOST]))
        env.update(
            self.user_env(),
            HF_HOME=str(home),
            HF_HUB_DISABLE_TELEMETRY="1",
            # Progress bars would fill stderr, where a test reads the client's error.
            HF_HUB_DISABLE_PROGRESS_BARS="1",
            # A proxy set for the package registries must not see requests to this server.
            NO_PROXY=no_proxy,
            no_proxy=no_proxy,
        )
        return env


class _HTTPServer(ThreadingHTTPServer):
    def __init__(self, hub: HubServer, port: int):
        super().__init__((LOCALHOST, port), HubRequestHandler)
        self.hub = hub
