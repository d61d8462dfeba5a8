"""``gs://`` repositories against fake-gcs-server: listing, reads (the bytes of the generation
the token names), uploads, a version published with its marker and mirrored verified, and an
unfinished one skipped. The conditional writes are not checked here: this emulator accepts an
upload whatever its ``ifGenerationMatch`` says (docs/guides/fleet.md says what that leaves)."""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import CollectorRegistry

from app.plane.store.cache import VersionCache
from app.plane.store.marker import describe, publish_folder
from app.plane.store.mirror import StoreMirror
from app.plane.store.objects import open_store
from tests.gcs_server import GCSServer


def test_a_gs_repository_is_listed_read_published_and_mirrored(
    gcs_env: GCSServer, tmp_path: Path
) -> None:
    store = open_store(f"gs://{gcs_env.new_bucket()}/models")
    store.write("example/serving.json", b'{"labels": {"stable": 1}}')
    first = store.read("example/serving.json")
    store.write("example/serving.json", b'{"labels": {"stable": 2}}')
    second = store.read("example/serving.json")
    assert first.data != second.data and first.token != second.token  # generations

    folder = tmp_path / "v1"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(os.urandom(2048))
    (folder / "variables" / "variables.index").write_bytes(os.urandom(512))
    publish_folder(store, folder, "example/1")
    store.write("example/2/saved_model.pb", b"half an upload")  # no marker yet
    mirror = StoreMirror(
        VersionCache(tmp_path / "cache", store, max_bytes=1 << 30), CollectorRegistry()
    )
    result = mirror.sync()
    assert result.reachable and result.fetched == [("example", 1)]
    assert "unfinished" in result.skipped[("example", 2)]
    assert describe(mirror.path_of("example") / "1") == describe(folder)
    assert b'"stable": 2' in (mirror.path_of("example") / "serving.json").read_bytes()
