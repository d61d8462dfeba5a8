"""The storage interface: list, read, write, and write-if-unchanged (compare-and-swap).

Keys are ``/``-separated paths under the store's root (``example/3/saved_model.pb``). A read
returns the bytes and a token: the S3 ETag, the GCS generation, or a local file's content
hash. ``write_if`` writes only if the key still has that token (or, with None, does not exist
yet), which is how edits from several replicas never lose one another without a lock server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

REMOTE_SCHEMES = ("s3://", "gs://", "gcs://")


class StoreError(Exception):
    """A key is missing or the store refused an operation; the message says which."""


class NotFound(StoreError):
    """No object under that key."""


class StoreUnavailable(StoreError):
    """The store could not be reached (network, credentials, endpoint down)."""


@dataclass(frozen=True, slots=True)
class Blob:
    data: bytes
    token: str  # what ``write_if`` compares: ETag, generation or content hash


class ObjectStore(Protocol):
    """Where a model repository lives. Every method may raise StoreUnavailable."""

    url: str  # the root, as the user gave it

    def list(self, prefix: str = "") -> dict[str, int]:
        """Every key under ``prefix`` (recursively) and its size in bytes."""
        ...

    def read(self, key: str) -> Blob:
        """The object's bytes and token; NotFound if there is none."""
        ...

    def write(self, key: str, data: bytes) -> None:
        """Create or replace the object; a reader sees the old bytes or the new, never half."""
        ...

    def write_if(self, key: str, data: bytes, token: str | None) -> bool:
        """Write only if the object still has ``token`` (None: only if it does not exist);
        False, writing nothing, if another writer changed it first."""
        ...


class EditConflict(StoreError):
    """Other writers kept changing the object: the edit gave up after its attempts."""


def update(
    store: ObjectStore, key: str, change: Callable[[bytes | None], bytes], *, attempts: int = 20
) -> bytes:
    """Read-modify-write ``key`` without a lock: ``change`` gets the current bytes (None when
    there are none) and returns the new ones, written only if nobody wrote in between; on a
    conflict it runs again on what the other writer left. Returns the bytes written."""
    for _ in range(attempts):
        try:
            blob: Blob | None = store.read(key)
        except NotFound:
            blob = None
        new = change(None if blob is None else blob.data)
        if store.write_if(key, new, None if blob is None else blob.token):
            return new
    raise EditConflict(f"{store.url}/{key} kept changing; {attempts} attempts failed")


def is_remote(location: str | Path) -> bool:
    """Whether ``location`` names an object store rather than a local folder."""
    return str(location).startswith(REMOTE_SCHEMES)


def open_store(location: str | Path) -> ObjectStore:
    """The store at ``location``: a local folder, or ``s3://bucket/prefix`` /
    ``gs://bucket/prefix`` through fsspec (the ``fleet`` extra)."""
    if is_remote(location):
        try:
            from app.plane.store.remote import FsspecStore
        except ImportError as exc:
            raise StoreError(
                f"{location}: object storage needs the fleet extra "
                f"(pip install 'textcls[fleet]'): {exc}"
            ) from exc
        return FsspecStore(str(location))
    from app.plane.store.local import LocalStore

    return LocalStore(Path(location))
