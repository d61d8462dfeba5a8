"""After `make run`, the README's tritonclient gRPC snippet works unchanged: `textcls serve` on
its defaults (HTTP 127.0.0.1:8000, gRPC 8001), no TEXTCLS_* setting.

The snippet below is the README's, duplicated: keep the two the same.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

HOST, HTTP_PORT, GRPC_PORT = "127.0.0.1", 8000, 8001


def _taken(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return True
    return False


def _readme_grpc_snippet() -> tuple[object, object]:
    import numpy as np
    import tritonclient.grpc as grpcclient  # or tritonclient.http, on port 8000

    client = grpcclient.InferenceServerClient("localhost:8001")
    text = grpcclient.InferInput("text", [2], "BYTES")
    text.set_data_from_numpy(
        np.array([b"refund please", "我的卡还没有收到".encode()], dtype=object)
    )
    result = client.infer("example", [text], headers={"authorization": "Bearer KEY"})
    return result.as_numpy("label"), result.as_numpy("probabilities")  # [2], [2, n_labels]


@pytest.mark.slow
def test_the_readme_grpc_snippet_works_on_the_default_settings(
    tiny_model_repo: Path, tmp_path: Path
) -> None:
    taken = [p for p in (HTTP_PORT, GRPC_PORT) if _taken(p)]
    if taken:
        message = f"ports {taken} on {HOST} are in use (a `make run`?); this test needs them"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    # A newcomer's environment: none of the TEXTCLS_* settings the test session sets.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEXTCLS_")}
    log_path = tmp_path / "serve.log"
    cmd = [sys.executable, "-m", "app.cli", "serve", "--model-dir", str(tiny_model_repo)]
    repo_root = Path(__file__).resolve().parents[4]
    env["PYTHONPATH"] = str(repo_root)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://{HOST}:{HTTP_PORT}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        labels, probabilities = _readme_grpc_snippet()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert labels.shape == (2,)  # type: ignore[attr-defined]
    assert probabilities.shape[0] == 2  # type: ignore[attr-defined]
    log_text = log_path.read_text()
    assert f"gRPC (Open Inference Protocol V2, health) listening on {HOST}:{GRPC_PORT}" in log_text
