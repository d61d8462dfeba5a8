"""A Python asyncio load generator: N concurrent callers, each one request at a time.

One generator for every protocol, so their rows compare the servers, not the tools: HTTP/1.1
over keep-alive connections (requests pre-encoded, answers read by Content-Length), and gRPC
over one HTTP/2 channel (requests pre-serialised, answers left as bytes). wrk cannot speak
gRPC, and ghz is not installable here, hence this.
"""

from __future__ import annotations

import asyncio
import itertools
import resource
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass

import grpc

Call = Callable[[int], Awaitable[bool]]  # request number -> answered OK


@dataclass(frozen=True)
class LoadRun:
    """One timed run: counts, rates, latencies and the generator's own CPU."""

    concurrency: int
    seconds: float
    ok: int
    errors: int
    client_cpu_s: float
    p50_ms: float
    p99_ms: float

    @property
    def requests_per_s(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "requests_per_s": self.requests_per_s}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_load(callers: Sequence[Call], warmup_s: float, duration_s: float) -> LoadRun:
    """Run every caller in a loop for warmup + duration; count only the measured part."""
    counter = itertools.count()
    measuring = False
    stop = False
    ok = errors = 0
    latencies: list[float] = []

    async def loop(call: Call) -> None:
        nonlocal ok, errors
        while not stop:
            started = time.perf_counter()
            good = await call(next(counter))
            if measuring:
                latencies.append(time.perf_counter() - started)
                if good:
                    ok += 1
                else:
                    errors += 1

    tasks = [asyncio.ensure_future(loop(c)) for c in callers]
    await asyncio.sleep(warmup_s)
    measuring = True
    cpu0, t0 = _cpu(), time.perf_counter()
    await asyncio.sleep(duration_s)
    measuring = False
    seconds, cpu = time.perf_counter() - t0, _cpu() - cpu0
    stop = True
    await asyncio.gather(*tasks)
    return LoadRun(
        len(callers),
        seconds,
        ok,
        errors,
        cpu,
        _percentile(latencies, 0.5) * 1000,
        _percentile(latencies, 0.99) * 1000,
    )


def http_request(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: bench", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def http_callers(
    host: str, port: int, requests: Sequence[bytes], concurrency: int
) -> tuple[list[Call], Callable[[], None]]:
    """``concurrency`` callers, each on its own keep-alive connection; and a closer."""
    conns = [await asyncio.open_connection(host, port) for _ in range(concurrency)]

    def caller(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Call:
        async def call(n: int) -> bool:
            writer.write(requests[n % len(requests)])
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            return head.startswith(b"HTTP/1.1 200")

        return call

    def close() -> None:
        for _, writer in conns:
            writer.close()

    return [caller(r, w) for r, w in conns], close


async def grpc_callers(
    target: str, method: str, requests: Sequence[bytes], concurrency: int
) -> tuple[list[Call], Callable[[], Awaitable[None]]]:
    """``concurrency`` callers sharing one channel (HTTP/2 streams); and a closer."""
    channel = grpc.aio.insecure_channel(target)
    await channel.channel_ready()
    rpc = channel.unary_unary(method)  # no serialisers: the requests are bytes already

    async def call(n: int) -> bool:
        try:
            await rpc(requests[n % len(requests)])
        except grpc.aio.AioRpcError:
            return False
        return True

    return [call] * concurrency, channel.close
