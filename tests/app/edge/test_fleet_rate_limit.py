"""Two ``textcls serve`` replicas with ``TEXTCLS_REDIS_URL``: a client limited to R requests/s
gets R/s over both together, not 2R; with Redis cut off, each replica limits on its own,
nothing answers 5xx, and /metrics and the log say so."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.app.predlog.tcp_proxy import TcpProxy
from tests.serve_process import ServeProcess, serve_processes

RATE = 20.0  # requests/s the (one, open-service) client may send
BURST = 5
WINDOW_S = 3.0


def _hammer(servers: list[ServeProcess], seconds: float) -> dict[int, int]:
    """Two threads per replica sending GET /models (a rate-limited client route) as fast as
    they can for ``seconds``; the count of each status code."""
    counts: dict[int, int] = {}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker(url: str) -> None:
        with httpx.Client(timeout=10) as client:
            while time.monotonic() < deadline:
                status = client.get(f"{url}/models").status_code
                with lock:
                    counts[status] = counts.get(status, 0) + 1

    threads = [threading.Thread(target=worker, args=(s.url,)) for s in servers for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts


@pytest.mark.slow
def test_a_client_gets_its_rate_across_two_replicas_and_local_limits_without_redis(
    tiny_model_repo: Path, tmp_path: Path, redis_url: str, key_prefix: str
) -> None:
    target = urlsplit(redis_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 6379)
    proxy.start()
    try:
        env = {
            "TEXTCLS_REDIS_URL": f"redis://127.0.0.1:{proxy.port}{target.path or '/0'}",
            "TEXTCLS_REDIS_KEY_PREFIX": key_prefix,
            "TEXTCLS_REDIS_RETRY_S": "0.5",
            # Generous: the proxy shares this busy process with the load threads, and the
            # shared phases are about sharing, not about a slow Redis.
            "TEXTCLS_REDIS_TIMEOUT_MS": "3000",
            "TEXTCLS_RATE_LIMIT_PER_S": str(RATE),
            "TEXTCLS_RATE_LIMIT_BURST": str(BURST),
        }
        with serve_processes(2, tiny_model_repo, tmp_path, env) as servers:
            for server in servers:  # each opens its Redis connection before the count starts
                httpx.get(f"{server.url}/models", timeout=10)
            time.sleep(BURST / RATE)  # the allowance refilled
            shared = _hammer(servers, WINDOW_S)
            expected = BURST + RATE * WINDOW_S  # the burst, then RATE per second
            assert set(shared) == {200, 429}, shared
            for server in servers:
                assert server.metric("textcls_rate_limit_local_fallbacks_total") == 0
            assert abs(shared[200] - expected) <= 0.1 * expected, (shared, expected)

            proxy.cut()  # Redis unreachable from both replicas
            alone = _hammer(servers, WINDOW_S)
            assert set(alone) == {200, 429}, alone  # never a 5xx
            # Each replica's own bucket: about twice the shared rate over two replicas.
            assert alone[200] >= 1.6 * expected, (alone, expected)
            for server in servers:
                assert server.metric("textcls_rate_limit_redis_up") == 0
                assert server.metric("textcls_rate_limit_local_fallbacks_total") > 0
                assert server.output().count("Redis unreachable") == 1

            proxy.restore()
            time.sleep(max(0.6, BURST / RATE))  # past TEXTCLS_REDIS_RETRY_S, allowance refilled
            back = _hammer(servers, WINDOW_S)
            assert abs(back[200] - expected) <= 0.1 * expected + 1, (back, expected)
            for server in servers:
                assert server.metric("textcls_rate_limit_redis_up") == 1
    finally:
        proxy.close()
