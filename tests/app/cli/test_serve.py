"""``textcls serve``: clear configuration errors, and two real workers with summed metrics."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from app.cli import serve as serve_command
from tests.app.test_metrics import parse, total, value


def _cli() -> typer.Typer:
    cli = typer.Typer()
    serve_command.register(cli)

    @cli.callback()
    def _root() -> None:  # a callback keeps "serve" a named sub-command
        pass

    return cli


def test_invalid_setting_exits_2_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTCLS_MAX_BATCH_SIZE", "lots")
    result = CliRunner().invoke(_cli(), ["serve"])
    assert result.exit_code == 2
    assert "TEXTCLS_MAX_BATCH_SIZE" in result.output
    assert "Traceback" not in result.output


def test_gpu_without_a_gpu_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTCLS_DEVICE", "gpu")
    result = CliRunner().invoke(_cli(), ["serve"])
    assert result.exit_code == 2
    assert "TEXTCLS_DEVICE=gpu" in result.output


def test_a_taken_grpc_port_exits_2_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("TEXTCLS_GRPC_PORT", str(port))
        result = CliRunner().invoke(_cli(), ["serve", "--port", str(_free_port())])
    assert result.exit_code == 2
    assert f"127.0.0.1:{port}" in result.output
    assert "TEXTCLS_GRPC_PORT=0 to turn gRPC off" in result.output
    assert "Traceback" not in result.output


def test_grpc_is_on_8001_by_default() -> None:
    from app.config import Settings

    assert Settings.model_fields["grpc_port"].default == 8001


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_workers_sum_their_metrics(tiny_model_repo: Path, tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "TEXTCLS_LOG_PREDICTIONS": "false",
        "TEXTCLS_POLL_INTERVAL_S": "0",
        "TEXTCLS_API_KEYS": "",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    cmd = [
        sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", "2",
        "--model-dir", str(tiny_model_repo), "--log-level", "warning",
    ]  # fmt: skip
    log_file = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(cmd, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        # Both workers load the model; the first load by each counts a successful reload.
        deadline = time.monotonic() + 180
        reloads = 0.0
        while reloads < 2:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "workers did not both load the model"
            try:
                s = parse(httpx.get(f"{base}/metrics", timeout=5).text)
                reloads = total(s, "textcls_model_reloads_total", result="success")
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        n = 40
        for i in range(n):
            # A new connection each time, so the kernel spreads them over both workers.
            r = httpx.post(f"{base}/classify", json={"text": f"refund {i}"}, timeout=10)
            assert r.status_code == 200, r.text
        s = parse(httpx.get(f"{base}/metrics", timeout=5).text)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log_file.close()
    # Each worker counted its own model load; /metrics shows the sum from both processes.
    assert total(s, "textcls_model_reloads_total", model="example", result="success") == 2
    status = {"route": "/classify", "method": "POST", "status": "200"}
    assert value(s, "textcls_http_requests_total", **status) == n
    assert total(s, "textcls_predictions_total", model="example") == n
    assert value(s, "textcls_inference_batch_size_sum", model="example") == n
    # A live-max gauge: 1, not 2, although both workers serve version 1.
    assert value(s, "textcls_model_info", model="example", version="1", device="cpu") == 1
