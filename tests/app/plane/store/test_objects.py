"""The storage interface on a local folder and on S3 (moto's server): list, read, write, and
compare-and-swap that never loses a concurrent edit."""

from __future__ import annotations

import threading

import pytest

from app.plane.store.objects import (
    NotFound,
    ObjectStore,
    StoreUnavailable,
    open_store,
    update,
)
from tests.live_server import free_port


def test_write_list_read(store: ObjectStore) -> None:
    store.write("example/1/saved_model.pb", b"graph")
    store.write("example/1/variables/variables.index", b"idx")
    store.write("other/2/metadata.json", b"{}")
    assert store.list("example") == {
        "example/1/saved_model.pb": 5,
        "example/1/variables/variables.index": 3,
    }
    assert set(store.list()) == {
        "example/1/saved_model.pb",
        "example/1/variables/variables.index",
        "other/2/metadata.json",
    }
    assert store.read("example/1/saved_model.pb").data == b"graph"
    assert store.list("missing") == {}
    with pytest.raises(NotFound):
        store.read("example/1/nothing")


def test_write_if_creates_once_and_swaps_only_from_the_token_read(store: ObjectStore) -> None:
    assert store.write_if("m/serving.json", b"v1", None)
    assert not store.write_if("m/serving.json", b"again", None)  # exists already
    first = store.read("m/serving.json")
    assert store.write_if("m/serving.json", b"v2", first.token)
    assert not store.write_if("m/serving.json", b"stale", first.token)  # changed since
    second = store.read("m/serving.json")
    assert second.data == b"v2" and second.token != first.token


def test_concurrent_read_modify_write_loses_no_edit(store: ObjectStore) -> None:
    store.write("m/counter", b"0")

    def add_one() -> None:
        while True:
            blob = store.read("m/counter")
            if store.write_if("m/counter", str(int(blob.data) + 1).encode(), blob.token):
                return

    threads = [threading.Thread(target=add_one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.read("m/counter").data == b"6"


def test_an_unreachable_store_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    store = open_store("s3://nowhere/models")
    with pytest.raises(StoreUnavailable):
        store.list("example")
    with pytest.raises(StoreUnavailable):
        store.read("example/serving.json")


def test_two_replicas_editing_one_state_at_once_both_land(store: ObjectStore) -> None:
    """Two store objects (two replicas) add different labels to one serving.json at the same
    moment: ``update`` re-applies the loser's edit on the winner's state."""
    import json

    other = open_store(store.url)
    start = threading.Barrier(2)

    def label(which: ObjectStore, name: str, version: int) -> None:
        def change(current: bytes | None) -> bytes:
            state = json.loads(current or b'{"labels": {}}')
            state["labels"][name] = version
            return json.dumps(state).encode()

        start.wait()
        update(which, "example/serving.json", change)

    threads = [
        threading.Thread(target=label, args=(store, "canary", 2)),
        threading.Thread(target=label, args=(other, "shadow", 3)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    state = json.loads(store.read("example/serving.json").data)
    assert state["labels"] == {"canary": 2, "shadow": 3}
