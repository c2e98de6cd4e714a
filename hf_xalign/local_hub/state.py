"""What the local Hub keeps: repositories, their commits, branches and tags, and the answers it refuses with.

Every commit stays readable: a commit maps each path to a [`StoredFile`], whose content lies under the repo's folder,
by git blob id for a regular file and by sha256 for an LFS file (see [`~hf_xalign.local_hub.server`] for the layout).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fnmatch import fnmatch
from pathlib import Path

# The one account: any token but this one is refused. Not a secret: the server listens on 127.0.0.1 only.
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


class ErrorAnswer(Exception):
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

    def sibling(self, path: str, blobs: bool) -> dict:
        """The file as a `siblings` entry of repo info (`blobs`: with its size, blob id and LFS facts)."""
        sibling: dict = {"rfilename": path}
        if blobs:
            sibling.update(size=self.size, blobId=self.blob_id)
            if self.lfs_sha256:
                sibling["lfs"] = {"size": self.size, "sha256": self.lfs_sha256, "pointerSize": self.pointer_size}
        return sibling

    def tree_entry(self, path: str) -> dict:
        """The file as an entry of a tree listing or of paths-info."""
        entry: dict = {"type": "file", "oid": self.blob_id, "size": self.size, "path": path}
        if self.lfs_sha256:
            entry["lfs"] = {"oid": self.lfs_sha256, "size": self.size, "pointerSize": self.pointer_size}
        return entry


@dataclass
class Commit:
    sha: str
    files: dict[str, StoredFile]
    date: str = field(default_factory=now)

    def folder_entry(self, folder: str) -> dict:
        """A folder of this commit as an entry of a tree listing or of paths-info."""
        # Not a git tree hash: clients only carry a folder's oid along.
        oid = hashlib.sha1(f"{self.sha}:{folder}".encode()).hexdigest()
        return {"type": "directory", "oid": oid, "size": 0, "path": folder}


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
