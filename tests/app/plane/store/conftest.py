"""The store tests' fixtures: moto's S3 server, and a store of each kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.plane.store.objects import ObjectStore, open_store
from tests.s3_server import S3Server


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """An empty store: a local folder, or a fresh bucket on the test S3 server."""
    if request.param == "local":
        return open_store(tmp_path / "repo")
    server: S3Server = request.getfixturevalue("s3_env")
    return open_store(f"s3://{server.new_bucket()}/models")
