"""Two ``textcls serve`` processes on one ``s3://`` repository (moto's server): a version
pushed while both serve under load reaches both within a poll interval plus its load, with no
failed request."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest

from app.plane.store.marker import publish_folder
from app.plane.store.objects import open_store
from tests.s3_server import S3Server
from tests.serve_process import serve_processes
from training.artifact import METADATA_FILE

POLL_S = 0.3


@pytest.mark.slow
def test_two_replicas_move_to_a_pushed_version_under_load_without_a_failed_request(
    tiny_model_repo: Path, tmp_path: Path, s3_env: S3Server
) -> None:
    url = f"s3://{s3_env.new_bucket()}/models"
    store = open_store(url)
    publish_folder(store, tiny_model_repo / "example" / "1", "example/1")
    env = {**s3_env.env, "TEXTCLS_POLL_INTERVAL_S": str(POLL_S)}
    with serve_processes(2, url, tmp_path, env) as servers:
        statuses: list[int] = []
        seen: dict[str, set[int]] = {s.url: set() for s in servers}
        stop = threading.Event()

        def load(base: str) -> None:
            with httpx.Client(timeout=30) as client:
                while not stop.is_set():
                    r = client.post(f"{base}/classify", json={"text": "where is my card"})
                    statuses.append(r.status_code)
                    if r.status_code == 200:
                        seen[base].add(int(r.json()["version"]))

        threads = [threading.Thread(target=load, args=(s.url,)) for s in servers]
        for t in threads:
            t.start()
        try:
            time.sleep(1.0)
            v2 = tmp_path / "v2"
            shutil.copytree(tiny_model_repo / "example" / "1", v2)
            meta = json.loads((v2 / METADATA_FILE).read_text())
            (v2 / METADATA_FILE).write_text(json.dumps({**meta, "version": 2}))
            publish_folder(store, v2, "example/2")  # what `textcls models push` does
            deadline = time.monotonic() + 60
            while not all(2 in versions for versions in seen.values()):
                assert time.monotonic() < deadline, f"not every replica moved: {seen}"
                time.sleep(0.1)
        finally:
            stop.set()
            for t in threads:
                t.join()
    assert statuses and set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
