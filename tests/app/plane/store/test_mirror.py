"""A replica's mirror of an S3 model repository (moto's server): complete versions only,
skipped ones named and counted, serving state copied, an unreachable store survived."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from app.plane.store.cache import VersionCache
from app.plane.store.marker import describe, publish_folder
from app.plane.store.mirror import StoreMirror
from app.plane.store.objects import ObjectStore, open_store
from tests.live_server import free_port
from tests.s3_server import S3Server


def _folder(tmp_path: Path, version: int) -> Path:
    folder = tmp_path / f"v{version}"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(bytes([version]) * 1024)
    (folder / "variables" / "variables.index").write_bytes(os.urandom(512))
    return folder


def _mirror(tmp_path: Path, store: ObjectStore) -> tuple[StoreMirror, CollectorRegistry]:
    registry = CollectorRegistry()
    cache = VersionCache(tmp_path / "cache", store, max_bytes=1 << 30)
    return StoreMirror(cache, registry), registry


@pytest.fixture
def s3(s3_env: S3Server) -> ObjectStore:
    return open_store(f"s3://{s3_env.new_bucket()}/models")


def test_complete_versions_are_mirrored_and_the_rest_skipped_until_whole(
    s3: ObjectStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mirror, registry = _mirror(tmp_path, s3)
    v1 = _folder(tmp_path, 1)
    publish_folder(s3, v1, "example/1")
    s3.write("example/serving.json", b'{"labels": {"stable": 1}}')
    s3.write("serving.json", b'{"default_model": "example"}')  # the repository's own state
    # Version 2 half uploaded (no marker yet); version 3 whole but tampered after its marker.
    v2 = _folder(tmp_path, 2)
    s3.write("example/2/saved_model.pb", (v2 / "saved_model.pb").read_bytes())
    publish_folder(s3, _folder(tmp_path, 3), "example/3")
    s3.write("example/3/saved_model.pb", b"\xff" * 1024)
    with caplog.at_level(logging.WARNING, "app.plane.store.mirror"):
        result = mirror.sync()
        mirror.sync()  # the same skips again: logged once
    assert result.fetched == [("example", 1)]
    assert set(result.skipped) == {("example", 2), ("example", 3)}
    assert "unfinished" in result.skipped[("example", 2)]
    assert "does not match" in result.skipped[("example", 3)]
    assert sum("version 2 skipped" in r.getMessage() for r in caplog.records) == 1
    assert (
        registry.get_sample_value("textcls_store_versions_skipped_total", {"model": "example"}) == 4
    )
    assert describe(mirror.path_of("example") / "1") == describe(v1)
    assert not (mirror.path_of("example") / "2").exists()
    assert (mirror.path_of("example") / "serving.json").read_bytes() == b'{"labels": {"stable": 1}}'
    assert (mirror.root / "serving.json").read_bytes() == b'{"default_model": "example"}'

    publish_folder(s3, v2, "example/2")  # the upload finishes: the next sync takes it
    s3.write("example/serving.json", b'{"labels": {"stable": 2}}')
    result = mirror.sync()
    assert result.fetched == [("example", 2)]
    assert set(mirror.skipped) == {("example", 3)}
    assert b'"stable": 2' in (mirror.path_of("example") / "serving.json").read_bytes()


def test_an_unreachable_store_keeps_the_mirror_logs_once_and_counts(
    s3_env: S3Server,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = open_store(f"s3://{s3_env.new_bucket()}/models")
    publish_folder(store, _folder(tmp_path, 1), "example/1")
    mirror, _ = _mirror(tmp_path, store)
    mirror.sync()
    # The endpoint goes away (a closed port): the same bucket, unreachable.
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    away, registry = _mirror(tmp_path, open_store(store.url))
    with caplog.at_level(logging.WARNING, "app.plane.store.mirror"):
        assert not away.sync().reachable
        assert not away.sync().reachable
    assert sum("unreachable" in r.getMessage() for r in caplog.records) == 1
    assert (away.path_of("example") / "1" / "saved_model.pb").is_file()  # the cached copy
    assert away.cache.verified("example") == [1]
    assert registry.get_sample_value("textcls_store_up") == 0
    assert registry.get_sample_value("textcls_store_errors_total") == 2
