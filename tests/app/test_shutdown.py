"""SIGTERM under load: a real ``textcls serve`` finishes what it answered, logs it, exits 0."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

GRACE_S = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(model_dir: Path, tmp_path: Path, port: int, **env: str) -> subprocess.Popen[str]:
    environ = {
        **os.environ,
        "TEXTCLS_DATABASE_URL": f"sqlite:///{tmp_path / 'log.db'}",
        "TEXTCLS_LOG_SPILL_PATH": str(tmp_path / "spill.jsonl"),
        "TEXTCLS_POLL_INTERVAL_S": "0",
        "TEXTCLS_SHUTDOWN_GRACE_S": str(GRACE_S),
        **env,
    }
    cmd = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    return subprocess.Popen(
        [*cmd, "--model-dir", str(model_dir), "--log-level", "warning"],
        env=environ,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_ready(proc: subprocess.Popen[str], base: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"server exited early:\n{proc.stdout.read() if proc.stdout else ''}"
            )
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError("server not ready")


@dataclass
class Stopped:
    code: int
    sigterm_at: float
    exited_after: float
    output: str


def sigterm_under_load(
    proc: subprocess.Popen[str], base: str, load: Callable[[threading.Event], None], *, workers: int
) -> Stopped:
    """Once ``proc`` is ready, run ``load(stop)`` on ``workers`` threads, send SIGTERM after
    1.5 s, wait for the exit, stop the load; kills the server if anything goes wrong."""
    try:
        wait_ready(proc, base)
        stop = threading.Event()
        threads = [threading.Thread(target=load, args=(stop,)) for _ in range(workers)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        sigterm_at = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=GRACE_S + 20)
        exited_after = time.monotonic() - sigterm_at
        stop.set()
        for t in threads:
            t.join(timeout=30)
        output = proc.stdout.read() if proc.stdout else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return Stopped(code, sigterm_at, exited_after, output)


@dataclass
class Outcome:
    request_id: str
    texts: int
    started: float
    ended: float
    status: int | None  # None: no answer (connection refused or reset before reading)
    error: str = ""


def hammer(base: str, worker: int, stop: threading.Event, out: list[Outcome]) -> None:
    """Send requests on fresh connections until the server stops answering or ``stop``."""
    n = 0
    with httpx.Client(timeout=30, headers={"Connection": "close"}) as client:
        while not stop.is_set():
            n += 1
            rid = f"w{worker}-{n}"
            texts = [f"my card {worker} {n} has not arrived", "refund please"][: 1 + n % 2]
            started = time.monotonic()
            try:
                r = client.post(
                    f"{base}/classify", json={"texts": texts}, headers={"X-Request-ID": rid}
                )
            except httpx.TransportError as exc:
                out.append(Outcome(rid, len(texts), started, time.monotonic(), None, repr(exc)))
                if isinstance(exc, httpx.ConnectError):
                    return  # the listener is closed: the server no longer accepts
                continue
            out.append(Outcome(rid, len(texts), started, time.monotonic(), r.status_code, r.text))


@pytest.mark.slow
def test_sigterm_under_load_answers_in_flight_requests_logs_them_and_exits_0(
    tiny_model_repo: Path, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # A long batch wait keeps requests in flight when the signal lands.
    proc = start_server(tiny_model_repo, tmp_path, port, TEXTCLS_MAX_BATCH_WAIT_MS="150")
    outcomes: list[Outcome] = []
    workers = itertools.count()
    stopped = sigterm_under_load(
        proc, base, lambda stop: hammer(base, next(workers), stop, outcomes), workers=8
    )
    code, sigterm_at, exited_after, output = (
        stopped.code,
        stopped.sigterm_at,
        stopped.exited_after,
        stopped.output,
    )

    assert code == 0, output
    assert exited_after < GRACE_S + 10, output
    answered = [o for o in outcomes if o.status is not None]
    bad = [o for o in answered if o.status != 200]
    assert not bad, bad[:5]
    in_flight = [o for o in answered if o.started < sigterm_at < o.ended]
    assert in_flight, "no request was in flight at SIGTERM: the test proves nothing"
    assert len(answered) >= 16
    # Every answered prediction reached the database (the spill file stays empty).
    with sqlite3.connect(tmp_path / "log.db") as db:
        logged = dict(
            db.execute("SELECT request_id, COUNT(*) FROM prediction_log GROUP BY request_id")
        )
    missing = [o.request_id for o in answered if logged.get(o.request_id) != o.texts]
    assert not missing, (missing[:5], output[-2000:])
    spill = tmp_path / "spill.jsonl"
    assert not spill.exists() or spill.stat().st_size == 0
