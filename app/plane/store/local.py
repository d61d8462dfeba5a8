"""A local folder as an ObjectStore: atomic replace by rename, compare-and-swap under flock."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from pathlib import Path

from app.plane.store.objects import Blob, NotFound

LOCK_SUFFIX = ".lock"


class LocalStore:
    """Keys are paths under ``root``. ``write_if`` holds an exclusive ``flock`` on a lock file
    beside the key while it compares and writes, which holds on one machine's file system
    (NFS-style shared volumes do not honour it reliably: use an object store there)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)

    def _path(self, key: str) -> Path:
        return self.root / key

    def list(self, prefix: str = "") -> dict[str, int]:
        base = self._path(prefix) if prefix else self.root
        if base.is_file():
            return {prefix: base.stat().st_size}
        out: dict[str, int] = {}
        for path in base.rglob("*"):
            if path.is_file() and not path.name.endswith(LOCK_SUFFIX):
                out[path.relative_to(self.root).as_posix()] = path.stat().st_size
        return out

    def read(self, key: str) -> Blob:
        try:
            data = self._path(key).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"{self.url}/{key} does not exist") from None
        return Blob(data, hashlib.sha256(data).hexdigest())

    def write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def write_if(self, key: str, data: bytes, token: str | None) -> bool:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_name(path.name + LOCK_SUFFIX), "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                try:
                    current: str | None = self.read(key).token
                except NotFound:
                    current = None
                if current != token:
                    return False
                self.write(key, data)
                return True
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
