"""Start a server as a subprocess on a free port, time it to ready, measure it, stop it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from bench import procstat

REPO_ROOT = Path(__file__).resolve().parent.parent


class ServerError(Exception):
    """A server did not become ready, or exited early; the message ends with its log."""


@dataclass(frozen=True)
class ServerSpec:
    """How to start one server: its argv (with ``{port}``), extra env, and readiness path."""

    key: str
    title: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    ready_path: str = "/readyz"
    classify_path: str = "/classify"
    cwd: Path | None = None  # where it runs (default: this checkout)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def uvicorn_argv(factory: str) -> list[str]:
    """A baseline app under uvicorn, one worker, the same HTTP stack textcls serve uses."""
    return [
        sys.executable, "-m", "uvicorn", factory, "--factory",
        "--host", "127.0.0.1", "--port", "{port}", "--workers", "1",
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip


class RunningServer:
    """A started server; ``cold_start_s`` is process start to the first 200 from ready_path."""

    def __init__(self, spec: ServerSpec, log_dir: Path, ready_timeout_s: float = 180.0) -> None:
        self.spec = spec
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"{spec.key}.log"
        self.ready_timeout_s = ready_timeout_s
        self.cold_start_s: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    @property
    def classify_url(self) -> str:
        return self.base_url + self.spec.classify_path

    def start(self) -> float:
        argv = [a.replace("{port}", str(self.port)) for a in self.spec.argv]
        # gRPC stays off (it defaults to 8001) unless the spec gives it a port of its own.
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TEXTCLS_GRPC_PORT": "0", **self.spec.env}
        log = self.log_path.open("wb")
        started = time.perf_counter()
        self._proc = subprocess.Popen(
            argv, cwd=self.spec.cwd or REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        log.close()
        deadline = started + self.ready_timeout_s
        url = self.base_url + self.spec.ready_path
        while time.perf_counter() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                raise ServerError(f"{self.spec.key} exited with {code}" + self._tail())
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        self.cold_start_s = time.perf_counter() - started
                        return self.cold_start_s
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        self.stop()
        raise ServerError(f"{self.spec.key} not ready after {self.ready_timeout_s}s" + self._tail())

    def rss_bytes(self) -> int:
        return procstat.tree_rss_bytes(self.pid)

    def terminate(self) -> None:
        """SIGTERM to the server's process group (its uvicorn workers too); does not wait."""
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM to the server's process group, SIGKILL if it has not exited after grace_s."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        self.terminate()
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def _tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()[-30:]
        except OSError:
            return ""
        return f"\n--- last lines of {self.log_path} ---\n" + "\n".join(lines)

    def __enter__(self) -> RunningServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def stop_all(servers: list[RunningServer]) -> None:
    """Stop several servers at once: all get SIGTERM first, so their drains overlap."""
    for server in servers:
        server.terminate()
    for server in servers:
        server.stop()
