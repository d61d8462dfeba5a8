"""The load generator: runs wrk (one thread, Lua POST bodies) and parses its JSON summary."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from bench import procstat

LUA_SCRIPT = Path(__file__).resolve().parent / "post_bodies.lua"
MARKER = "BENCH_WRK_JSON "
INSTALL_HINT = (
    "wrk is not installed: the benchmark's load generator is wrk. Install it with\n"
    "  apt-get update && apt-get install -y wrk      (Debian/Ubuntu)\n"
    "  brew install wrk                              (macOS)"
)


class LoadgenError(Exception):
    """wrk is missing, failed, or printed no summary."""


@dataclass(frozen=True)
class WrkSummary:
    """What the Lua ``done()`` hook reports: counts, and latencies in microseconds."""

    requests: int
    duration_us: int
    bytes: int
    non_2xx: int
    connect_errors: int
    read_errors: int
    write_errors: int
    timeouts: int
    status_errors: int
    latency_us: dict[str, float]

    @property
    def errors(self) -> int:
        """Failed requests: non-2xx answers plus socket errors and timeouts."""
        return (
            self.non_2xx
            + self.connect_errors
            + self.read_errors
            + self.write_errors
            + self.timeouts
        )

    @property
    def ok_requests(self) -> int:
        return max(self.requests - self.non_2xx, 0)


@dataclass(frozen=True)
class LoadResult:
    """One wrk run: its summary and the CPU each party used while it ran."""

    connections: int
    texts_per_request: int
    wall_s: float
    wrk: WrkSummary
    client_cpu_s: float  # wrk's own user + system time
    server_cpu_s: float  # the server process tree's
    machine_busy_cpu_s: float  # every process on the machine, summed over cores

    @property
    def requests_per_s(self) -> float:
        return self.wrk.ok_requests / (self.wrk.duration_us / 1e6) if self.wrk.duration_us else 0.0

    @property
    def texts_per_s(self) -> float:
        return self.requests_per_s * self.texts_per_request

    @property
    def server_cpu_ms_per_request(self) -> float:
        return 1000 * self.server_cpu_s / max(self.wrk.ok_requests, 1)

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["requests_per_s"] = self.requests_per_s
        d["texts_per_s"] = self.texts_per_s
        d["errors"] = self.wrk.errors
        return d


def find_wrk() -> str:
    """The wrk executable, or LoadgenError saying how to install it."""
    path = shutil.which("wrk")
    if path is None:
        raise LoadgenError(INSTALL_HINT)
    return path


def parse_wrk_output(stdout: str) -> WrkSummary:
    """The summary line our Lua ``done()`` hook printed (wrk's own text output is ignored)."""
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            try:
                raw = json.loads(line[len(MARKER) :])
                return WrkSummary(**raw)
            except (json.JSONDecodeError, TypeError) as exc:
                raise LoadgenError(f"unreadable wrk summary {line!r}: {exc}") from exc
    raise LoadgenError("wrk printed no summary line; its output was:\n" + stdout[-2000:])


def write_bodies(path: Path, bodies: list[dict[str, object]]) -> Path:
    """One JSON body per line, the format the Lua script reads."""
    path.write_text("".join(json.dumps(b, ensure_ascii=False) + "\n" for b in bodies))
    return path


def wrk_command(
    wrk: str,
    url: str,
    bodies_file: Path,
    connections: int,
    duration_s: float,
    timeout_s: float,
) -> list[str]:
    """One wrk thread for every row, so the client's CPU share is the same everywhere."""
    base, _, path = url.partition("://")[2].partition("/")
    scheme = url.partition("://")[0]
    return [
        wrk,
        "--threads",
        "1",
        "--connections",
        str(connections),
        "--duration",
        f"{max(1, round(duration_s))}s",
        "--timeout",
        f"{max(1, round(timeout_s))}s",
        "--latency",
        "--script",
        str(LUA_SCRIPT),
        f"{scheme}://{base}",
        "--",
        str(bodies_file),
        "/" + path,
    ]


def run_wrk(
    url: str,
    bodies_file: Path,
    connections: int,
    duration_s: float,
    texts_per_request: int,
    server_pid: int | None,
    timeout_s: float = 10.0,
) -> LoadResult:
    """Run wrk against ``url`` and measure its CPU, the server's and the machine's meanwhile."""
    argv = wrk_command(find_wrk(), url, bodies_file, connections, duration_s, timeout_s)
    server_before = procstat.tree_cpu_seconds(server_pid) if server_pid else 0.0
    machine_before = procstat.MachineCpu.read()
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    out = proc.stdout.read().decode("utf-8", "replace")
    # wait4 rather than wait(): it returns the child's exact resource usage
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    machine_after = procstat.MachineCpu.read()
    server_after = procstat.tree_cpu_seconds(server_pid) if server_pid else 0.0
    if proc.returncode != 0:
        raise LoadgenError(f"wrk exited with {proc.returncode}:\n{out[-2000:]}")
    return LoadResult(
        connections=connections,
        texts_per_request=texts_per_request,
        wall_s=wall,
        wrk=parse_wrk_output(out),
        client_cpu_s=usage.ru_utime + usage.ru_stime,
        server_cpu_s=server_after - server_before,
        machine_busy_cpu_s=machine_after.busy_s - machine_before.busy_s,
    )


class Target(Protocol):
    """A running server: where to POST and which process tree to charge CPU to."""

    @property
    def classify_url(self) -> str: ...

    @property
    def pid(self) -> int: ...


@dataclass(frozen=True)
class Rounds:
    """Single-text load on several servers: a warm-up each, then ``reps`` measured rounds."""

    connections: int
    warmup_s: float
    duration_s: float
    reps: int


def run_rounds(
    servers: Mapping[str, Target], bodies_file: Path, rounds: Rounds
) -> Iterator[tuple[int, str, LoadResult]]:
    """Yield ``(round, name, result)``: round 0 is each server's warm-up, then 1..reps.

    The servers take turns within a round, and the order rotates each round, so drift in a
    shared machine's load spreads over every server instead of always hitting the same one.
    """
    names = list(servers)
    for name in names:
        url = servers[name].classify_url
        yield 0, name, run_wrk(url, bodies_file, rounds.connections, rounds.warmup_s, 1, None)
    for rep in range(1, rounds.reps + 1):
        shift = (rep - 1) % len(names)
        for name in names[shift:] + names[:shift]:
            server = servers[name]
            result = run_wrk(
                server.classify_url, bodies_file, rounds.connections, rounds.duration_s, 1,
                server.pid,
            )  # fmt: skip
            yield rep, name, result
