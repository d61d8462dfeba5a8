"""Two real servers (``textcls serve`` processes) over one model folder agree after a CLI
change within their poll interval, and a restarted one keeps the state."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from app.cli.models import register
from tests.app.conftest import add_version_copy

POLL_S = 0.2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, model_dir: Path, log: Path) -> None:
        self.model_dir, self.log = model_dir, log
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "TEXTCLS_LOG_PREDICTIONS": "false",
            "TEXTCLS_POLL_INTERVAL_S": str(POLL_S),
            "TEXTCLS_API_KEYS": "",
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        cmd = [
            sys.executable, "-m", "app.cli", "serve", "--port", str(self.port),
            "--model-dir", str(self.model_dir), "--log-level", "warning",
        ]  # fmt: skip
        out = self.log.open("a")
        self.proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while True:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server not ready"
            time.sleep(0.2)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def version(self, session: str = "s") -> int:
        r = httpx.post(f"{self.url}/classify", json={"text": "hi", "session": session}, timeout=10)
        assert r.status_code == 200, r.text
        return int(r.json()["version"])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # our own child, by its handle
            self.proc.wait(30)


@pytest.fixture
def servers(tiny_model_repo: Path, tmp_path: Path) -> Iterator[tuple[Path, Server, Server]]:
    models = tmp_path / "models"
    shutil.copytree(tiny_model_repo, models)
    add_version_copy(models, "example", 1, 2)
    a, b = Server(models, tmp_path / "a.log"), Server(models, tmp_path / "b.log")
    try:
        a.start()
        b.start()
        yield models, a, b
    finally:
        a.stop()
        b.stop()


def _cli(*args: str) -> None:
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["models", *args])
    assert result.exit_code == 0, result.output


def _wait(check: object, timeout: float = 10 * POLL_S + 5) -> float:
    started = time.monotonic()
    while not check():  # type: ignore[operator]
        assert time.monotonic() - started < timeout, "replicas did not follow in time"
        time.sleep(0.05)
    return time.monotonic() - started


@pytest.mark.slow
def test_two_servers_agree_after_a_cli_change_and_a_restart_keeps_it(
    servers: tuple[Path, Server, Server],
) -> None:
    models, a, b = servers
    assert a.version() == b.version() == 2  # nothing labelled: the newest
    _cli("label", "example", "stable", "1", "--model-dir", str(models))
    _wait(lambda: a.version() == 1 and b.version() == 1)
    # A canary split: both replicas route every session the same way.
    _cli("label", "example", "canary", "2", "--model-dir", str(models))
    _cli("traffic", "example", "--canary", "0.5", "--model-dir", str(models))
    _wait(lambda: {a.version(f"c{i}") for i in range(20)} == {1, 2})
    _wait(lambda: all(a.version(f"c{i}") == b.version(f"c{i}") for i in range(40)))
    _cli("rollback", "example", "--model-dir", str(models))
    _wait(lambda: all(a.version(f"c{i}") == b.version(f"c{i}") == 1 for i in range(20)))
    b.stop()
    b.start()
    assert all(b.version(f"c{i}") == 1 for i in range(20))
    info = httpx.get(f"{b.url}/models/example").json()
    assert info["labels"] == {"canary": 2, "stable": 1} and info["traffic"]["canary"] == 0.0
