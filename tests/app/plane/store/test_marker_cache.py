"""Publishing with a completion marker written last, and the verified local cache, on a local
folder and on S3 (moto's server)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from app.plane.store.cache import VersionCache
from app.plane.store.marker import (
    MARKER_FILE,
    MarkerError,
    check_sizes,
    describe,
    publish_folder,
    read_marker,
)
from app.plane.store.objects import ObjectStore


def _version_folder(tmp_path: Path, seed: int = 0) -> Path:
    folder = tmp_path / f"src{seed}"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(bytes([seed]) * 2048)
    (folder / "variables" / "variables.data-00000-of-00001").write_bytes(os.urandom(4096))
    (folder / "metadata.json").write_text('{"name": "example"}')
    return folder


def test_a_published_version_is_whole_and_cached_verified(
    store: ObjectStore, tmp_path: Path
) -> None:
    folder = _version_folder(tmp_path)
    publish_folder(store, folder, "example/1")
    manifest = read_marker(store, "example/1")
    assert manifest == describe(folder)
    listing = {k.removeprefix("example/1/"): v for k, v in store.list("example/1").items()}
    check_sizes(manifest, listing)
    cache = VersionCache(tmp_path / "cache", store, max_bytes=1 << 30)
    copy = cache.fetch("example", 1, manifest)
    assert (copy / "variables" / "variables.data-00000-of-00001").read_bytes() == (
        folder / "variables" / "variables.data-00000-of-00001"
    ).read_bytes()
    assert cache.verified("example") == [1]
    assert cache.fetch("example", 1, manifest) == copy  # cached: not downloaded again


def test_a_version_uploaded_file_by_file_counts_only_once_its_marker_is_there(
    store: ObjectStore, tmp_path: Path
) -> None:
    folder = _version_folder(tmp_path)
    manifest = describe(folder)
    for path in manifest:  # as `gsutil cp -r` uploads: one file at a time
        store.write(f"example/2/{path}", (folder / path).read_bytes())
        with pytest.raises(MarkerError, match="unfinished"):
            read_marker(store, "example/2")
    publish_folder(store, folder, "example/2")  # the same files again, then the marker
    assert read_marker(store, "example/2") == manifest


def test_files_that_do_not_match_the_marker_are_refused(store: ObjectStore, tmp_path: Path) -> None:
    folder = _version_folder(tmp_path)
    publish_folder(store, folder, "example/3")
    manifest = read_marker(store, "example/3")
    # Same size, other bytes: the listing cannot tell, the download's sha256 does.
    store.write("example/3/saved_model.pb", b"\xff" * 2048)
    cache = VersionCache(tmp_path / "cache", store, max_bytes=1 << 30)
    with pytest.raises(MarkerError, match="saved_model.pb does not match"):
        cache.fetch("example", 3, manifest)
    assert cache.verified("example") == []
    assert not cache.path("example", 3).exists()
    # Another size: the listing alone says so.
    store.write("example/3/saved_model.pb", b"short")
    listing = {k.removeprefix("example/3/"): v for k, v in store.list("example/3").items()}
    with pytest.raises(MarkerError, match="saved_model.pb has 5 bytes"):
        check_sizes(manifest, listing)
    assert MARKER_FILE in listing


def test_a_tampered_cached_copy_is_not_verified(tmp_path: Path, store: ObjectStore) -> None:
    publish_folder(store, _version_folder(tmp_path), "example/1")
    cache = VersionCache(tmp_path / "cache", store, max_bytes=1 << 30)
    copy = cache.fetch("example", 1, read_marker(store, "example/1"))
    (copy / "saved_model.pb").write_bytes(b"\x00" * 2048 + b"!")
    assert cache.verified("example") == []


def test_the_cache_stays_under_its_bound_keeping_versions_in_use(
    tmp_path: Path, store: ObjectStore
) -> None:
    cache = VersionCache(tmp_path / "cache", store, max_bytes=2 * 7000)
    copies = []
    for v in (1, 2, 3):
        publish_folder(store, _version_folder(tmp_path, v), f"example/{v}")
        copies.append(cache.fetch("example", v, read_marker(store, f"example/{v}")))
        os.utime(copies[-1], (v, v))  # v1 least recently used
    removed = cache.evict(in_use={copies[0]})
    assert removed == [copies[1]]  # the oldest not in use
    assert cache.verified("example") == [1, 3]


def test_two_processes_sharing_a_cache_fetch_one_version_at_once(
    tmp_path: Path, store: ObjectStore
) -> None:
    """Workers of one replica share its cache: both download, the second rename finds the
    first's verified copy and uses it."""
    publish_folder(store, _version_folder(tmp_path), "example/1")
    manifest = read_marker(store, "example/1")
    caches = [VersionCache(tmp_path / "cache", store, max_bytes=1 << 30) for _ in (0, 1)]
    start = threading.Barrier(2)
    got: list[Path | Exception] = []

    def fetch(cache: VersionCache) -> None:
        start.wait()
        try:
            got.append(cache.fetch("example", 1, manifest))
        except Exception as exc:  # reported by the assertion below
            got.append(exc)

    threads = [threading.Thread(target=fetch, args=(c,)) for c in caches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == [caches[0].path("example", 1)] * 2
    assert caches[0].verified("example") == [1]
    assert not [
        p for p in caches[0].path("example", 1).parent.iterdir() if p.name.startswith(".tmp")
    ]
