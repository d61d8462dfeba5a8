"""S3 and GCS as an ObjectStore, through fsspec (``s3fs``, ``gcsfs``: the ``fleet`` extra).

Credentials and endpoints come from where their SDKs look: ``AWS_*`` variables (with
``AWS_ENDPOINT_URL`` for S3-compatible stores such as MinIO), ``GOOGLE_APPLICATION_CREDENTIALS``
and the instance's own identity. Conditional writes use the store's preconditions: S3's
``If-Match`` (the ETag read) and ``If-None-Match: *``, GCS's ``ifGenerationMatch``.
"""

from __future__ import annotations

import os
from typing import Any

import aiohttp
import fsspec
from botocore.exceptions import BotoCoreError
from fsspec.asyn import sync

from app.plane.store.objects import Blob, NotFound, StoreUnavailable

# One attempt and short timeouts: an unreachable store is reported at once (and the poll
# retries it), instead of each call hanging through the SDK's retries.
CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 60.0
# What an unreachable store raises through fsspec: the SDK's connection errors and aiohttp's.
UNREACHABLE = (OSError, TimeoutError, aiohttp.ClientError, BotoCoreError)
PRECONDITION_CODES = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")


class FsspecStore:
    """``s3://bucket/prefix`` or ``gs://bucket/prefix``."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        scheme, _, rest = self.url.partition("://")
        self.scheme = "gs" if scheme in ("gs", "gcs") else scheme
        self.root = rest  # bucket/prefix, as fsspec names paths
        self.bucket = rest.split("/", 1)[0]
        self.fs: Any = self._filesystem()

    def _filesystem(self) -> Any:
        if self.scheme == "s3":
            return fsspec.filesystem(
                "s3",
                skip_instance_cache=True,
                endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3")
                or os.environ.get("AWS_ENDPOINT_URL"),
                config_kwargs={
                    "connect_timeout": CONNECT_TIMEOUT_S,
                    "read_timeout": READ_TIMEOUT_S,
                    "retries": {"max_attempts": 1},
                },
            )
        # version_aware: a read of "key#generation" reads that generation (the token read).
        return fsspec.filesystem("gcs", skip_instance_cache=True, version_aware=True)

    def _full(self, key: str) -> str:
        return f"{self.root}/{key}" if key else self.root

    def _object_key(self, key: str) -> str:
        return self._full(key).split("/", 1)[1]

    def list(self, prefix: str = "") -> dict[str, int]:
        base = self._full(prefix).rstrip("/")
        try:
            found = self.fs.find(base, detail=True)
        except FileNotFoundError:
            return {}
        except UNREACHABLE as exc:
            raise StoreUnavailable(f"cannot list {self.url}/{prefix}: {exc}") from exc
        start = len(self.root) + 1
        return {path[start:]: int(info.get("size") or 0) for path, info in found.items()}

    def read(self, key: str) -> Blob:
        try:
            if self.scheme == "s3":
                # Body and ETag of one response: the token is that of these very bytes.
                return sync(self.fs.loop, self._s3_get, self._object_key(key))  # type: ignore[no-any-return]
            info = self.fs.info(self._full(key))
            generation = str(info["generation"])
            return Blob(self.fs.cat_file(f"{self._full(key)}#{generation}"), generation)
        except FileNotFoundError:
            raise NotFound(f"{self.url}/{key} does not exist") from None
        except UNREACHABLE as exc:
            raise StoreUnavailable(f"cannot read {self.url}/{key}: {exc}") from exc

    async def _s3_get(self, key: str) -> Blob:
        reply = await self.fs._call_s3("get_object", Bucket=self.bucket, Key=key)
        async with reply["Body"] as body:
            return Blob(await body.read(), reply["ETag"])

    def write(self, key: str, data: bytes) -> None:
        try:
            self.fs.pipe_file(self._full(key), data)
        except UNREACHABLE as exc:
            raise StoreUnavailable(f"cannot write {self.url}/{key}: {exc}") from exc

    def write_if(self, key: str, data: bytes, token: str | None) -> bool:
        try:
            if self.scheme == "s3":
                condition = {"IfNoneMatch": "*"} if token is None else {"IfMatch": token}
                self.fs.call_s3(
                    "put_object",
                    Bucket=self.bucket,
                    Key=self._object_key(key),
                    Body=data,
                    **condition,
                )
            else:
                self.fs.call(
                    "POST",
                    f"{self.fs._location}/upload/storage/v1/b/{{}}/o",
                    self.bucket,
                    uploadType="media",
                    name=self._object_key(key),
                    ifGenerationMatch="0" if token is None else token,
                    data=data,
                    headers={"Content-Type": "application/octet-stream"},
                    json_out=True,
                )
            return True
        except FileExistsError:
            return False
        except UNREACHABLE as exc:
            if _precondition_failed(exc):
                return False
            raise StoreUnavailable(f"cannot write {self.url}/{key}: {exc}") from exc
        finally:
            self.fs.invalidate_cache(self._full(key))


def _precondition_failed(exc: BaseException) -> bool:
    """Whether the store refused a conditional write (another writer came first)."""
    for err in (exc, exc.__cause__):
        response = getattr(err, "response", None)
        if isinstance(response, dict) and response.get("Error", {}).get("Code") in (
            PRECONDITION_CODES
        ):
            return True
        if getattr(err, "code", None) in (409, 412):  # gcsfs' HttpError
            return True
    return False
