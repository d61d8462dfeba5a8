"""After `make run`, the getting-started page's tritonclient gRPC snippet works unchanged:
`textcls serve` on its defaults (HTTP 127.0.0.1:8000, gRPC 8001), no TEXTCLS_* setting.

The snippet is read from docs/get-started/index.md and run as written, ports included.
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

from tests.docs.snippets import page_snippets

HOST, HTTP_PORT, GRPC_PORT = "127.0.0.1", 8000, 8001
PAGE = "get-started/index.md"


def _taken(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return True
    return False


def _grpc_snippet() -> str:
    """The page's Python block that calls the server through tritonclient.grpc."""
    found = [s.code for s in page_snippets(PAGE) if "tritonclient.grpc" in s.code]
    assert len(found) == 1, f"{PAGE} should hold one tritonclient.grpc block, not {len(found)}"
    return found[0]


@pytest.mark.slow
def test_the_pages_grpc_snippet_works_on_the_default_settings(
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
        answer = subprocess.run(
            [sys.executable, "-c", _grpc_snippet()],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip().endswith(")"), answer.stdout  # the probabilities' shape
    log_text = log_path.read_text()
    assert f"gRPC (Open Inference Protocol V2, health) listening on {HOST}:{GRPC_PORT}" in log_text
