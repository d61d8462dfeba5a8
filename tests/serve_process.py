"""``textcls serve`` as a real process on a free port: a replica of a fleet, for tests that run
two of them against shared Redis, object storage or a trace receiver."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from tests.live_server import free_port


class ServeProcess:
    """One ``python -m app.cli serve`` with ``env`` over the test's environment; its output
    goes to ``log``."""

    def __init__(self, model_dir: str | Path, log: Path, env: dict[str, str]) -> None:
        self.model_dir = str(model_dir)
        self.log = log
        self.env = env
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {
            **os.environ,
            "TEXTCLS_LOG_PREDICTIONS": "false",
            "TEXTCLS_API_KEYS": "",
            **self.env,
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        cmd = [
            sys.executable, "-m", "app.cli", "serve", "--port", str(self.port),
            "--model-dir", self.model_dir, "--log-level", "warning",
        ]  # fmt: skip
        out = self.log.open("a")
        self.proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout_s: float = 120) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.proc.poll() is None, self.output()[-3000:]
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server not ready: " + self.output()[-3000:]
            time.sleep(0.2)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def metric(self, family: str) -> float:
        """A sample's value on this server's /metrics (0 when absent)."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        for line in text.splitlines():
            if line.startswith(family + " ") or line.startswith(family + "{"):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # our own child, by its handle
            self.proc.wait(30)


@contextmanager
def serve_processes(
    n: int, model_dir: str | Path, logs: Path, env: dict[str, str]
) -> Iterator[list[ServeProcess]]:
    """``n`` ready replicas with the same settings, started side by side."""
    with ExitStack() as stack:
        servers = []
        for i in range(n):
            own = {"TEXTCLS_CACHE_DIR": str(logs / f"cache{i}"), **env}
            server = ServeProcess(model_dir, logs / f"replica{i}.log", own)
            stack.callback(server.stop)
            server.start()
            servers.append(server)
        for server in servers:
            server.wait_ready()
        yield servers
