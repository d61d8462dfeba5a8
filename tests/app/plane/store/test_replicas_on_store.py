"""Two ``textcls serve`` processes on one ``s3://`` repository (moto's server): ``textcls train
--model-dir s3://...`` publishes version 2 while both serve version 1 under load; both move to
it within a poll interval plus its load, with no failed request."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from app.plane.store.marker import MarkerError, publish_folder, read_marker
from app.plane.store.objects import ObjectStore, open_store
from tests.app.cli.test_train import TINY_FLAGS
from tests.s3_server import S3Server
from tests.serve_process import serve_processes

POLL_S = 0.3
LOAD_S = 30.0


def _wait_for_marker(store: ObjectStore, prefix: str, trainer: subprocess.Popen[str]) -> float:
    """When the version's completion marker appeared (the moment it counts as published)."""
    deadline = time.monotonic() + 300
    while True:
        try:
            read_marker(store, prefix)
            return time.monotonic()
        except MarkerError:
            assert trainer.poll() is None, trainer.communicate()[0][-3000:]
            assert time.monotonic() < deadline, "the trainer never published"
            time.sleep(0.05)


@pytest.mark.slow
def test_two_replicas_move_to_a_version_trained_into_the_store_without_a_failed_request(
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
            answering = time.monotonic() + 30
            while not all(seen.values()):  # each replica has answered under the load
                assert time.monotonic() < answering, f"a replica never answered: {statuses[-5:]}"
                time.sleep(0.05)
            assert all(versions == {1} for versions in seen.values()), seen
            trainer = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "train", "--model-dir", url, *TINY_FLAGS],
                env={**os.environ, **env},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            published = _wait_for_marker(store, "example/2", trainer)
            # A poll interval, the download and the load (seconds on this shared machine).
            deadline = published + POLL_S + LOAD_S
            while not all(2 in versions for versions in seen.values()):
                assert time.monotonic() < deadline, f"not every replica moved: {seen}"
                time.sleep(0.05)
            moved = time.monotonic() - published
            print(f"both replicas on version 2 {moved:.2f} s after its marker")
            output, _ = trainer.communicate(timeout=120)
            assert trainer.returncode == 0, output[-3000:]
            assert output.strip().splitlines()[-1] == f"{url}/example/2"
        finally:
            stop.set()
            for t in threads:
                t.join()
    assert statuses and set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
