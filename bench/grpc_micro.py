"""``python -m bench.grpc_micro``: what a call costs grpcio's servers before any work, vs uvicorn.

Each variant is a server in its own process whose handler does nothing (answers empty bytes,
or hands the call to an event loop and back, as textcls hands it to its batcher); the same
Python asyncio load generator as bench.protocols (bench/asyncload.py: 64 callers, one HTTP/1.1
connection each, or one gRPC channel) drives it. Printed per variant: calls/s and the server's
CPU per call (its whole process, from /proc), medians over interleaved reps.

Variants: ``http`` uvicorn (uvloop, httptools) with a bare ASGI app; ``aio`` grpc.aio with a
generic handler on raw bytes (no protobuf), on asyncio's loop; ``aio_uvloop`` the same on
uvloop (textcls's loop under uvicorn); ``aio_opts`` that plus throughput-minded server
options; ``aio_pb`` on uvloop with the generated servicer parsing ModelInferRequest and
answering ModelInferResponse; ``sync`` grpc.server with a 64-thread pool (``sync4``: 4
threads), raw bytes; ``sync_bridge`` sync, each call handed to a uvloop loop on another thread
(run_coroutine_threadsafe) and waited for (``sync_bridge8``: 8 threads); ``aio_thread`` an aio
server on its own thread and loop, each call handed to the main loop and awaited.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

from bench import procstat
from bench.asyncload import grpc_callers, http_callers, http_request, run_load
from bench.servers import free_port

VARIANTS = (
    "http", "aio", "aio_uvloop", "aio_opts", "aio_pb",
    "sync", "sync4", "sync_bridge", "sync_bridge8", "aio_thread",
)  # fmt: skip
METHOD = "/inference.GRPCInferenceService/ModelInfer"
THROUGHPUT_OPTIONS = [
    ("grpc.optimization_target", "throughput"),
    ("grpc.so_reuseport", 0),
    ("grpc.max_concurrent_streams", 1000),
    ("grpc.http2.max_pings_without_data", 0),
]


async def _nothing() -> bytes:
    await asyncio.sleep(0)
    return b""


def _generic(handler: Callable[..., Any]) -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        "inference.GRPCInferenceService",
        {"ModelInfer": grpc.unary_unary_rpc_method_handler(handler)},
    )


async def _serve_aio(port: int, options: list[tuple[str, Any]], protobuf: bool) -> None:
    server = grpc.aio.server(options=options)
    if protobuf:
        from app.edge.grpc.proto import grpc_predict_v2_pb2 as pb
        from app.edge.grpc.proto import grpc_predict_v2_pb2_grpc as pb_grpc

        class Servicer(pb_grpc.GRPCInferenceServiceServicer):
            async def ModelInfer(self, request: Any, context: Any) -> Any:
                reply = pb.ModelInferResponse(model_name=request.model_name)
                reply.raw_output_contents.append(bytes(request.raw_input_contents[0]))
                return reply

        pb_grpc.add_GRPCInferenceServiceServicer_to_server(Servicer(), server)
    else:

        async def handle(request: bytes, context: Any) -> bytes:
            return await _nothing()

        server.add_generic_rpc_handlers((_generic(handle),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def _loop_thread() -> asyncio.AbstractEventLoop:
    import uvloop

    loop = uvloop.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True, name="app-loop").start()
    return loop


def _serve_sync(port: int, bridge: bool, workers: int) -> None:
    loop = _loop_thread() if bridge else None

    def handle(request: bytes, context: Any) -> bytes:
        if loop is None:
            return b""
        return asyncio.run_coroutine_threadsafe(_nothing(), loop).result()

    server = grpc.server(ThreadPoolExecutor(max_workers=workers), maximum_concurrent_rpcs=None)
    server.add_generic_rpc_handlers((_generic(handle),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


async def _serve_aio_thread(port: int) -> None:
    """The app's loop is this one; the gRPC server runs on its own thread and loop."""
    app_loop = asyncio.get_running_loop()

    async def handle(request: bytes, context: Any) -> bytes:
        future = asyncio.run_coroutine_threadsafe(_nothing(), app_loop)
        return await asyncio.wrap_future(future)

    async def grpc_main() -> None:
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((_generic(handle),))
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    threading.Thread(target=asyncio.run, args=(grpc_main(),), daemon=True).start()
    await asyncio.Event().wait()


async def _http_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await _nothing()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")],
        }
    )
    await send({"type": "http.response.body", "body": b"{}"})  # fmt: skip


def serve(variant: str, port: int) -> None:
    if variant == "http":
        import uvicorn

        uvicorn.run(_http_app, host="127.0.0.1", port=port, log_level="warning")
    elif variant.startswith("sync"):
        workers = int(variant.removeprefix("sync").removeprefix("_bridge") or 64)
        _serve_sync(port, bridge="bridge" in variant, workers=workers)
    elif variant == "aio_thread":
        asyncio.run(_serve_aio_thread(port))
    else:
        options = THROUGHPUT_OPTIONS if variant == "aio_opts" else []
        main = _serve_aio(port, options, protobuf=variant == "aio_pb")
        if variant == "aio":
            asyncio.run(main)
        else:  # on uvloop, as textcls's server runs under uvicorn
            import uvloop

            uvloop.run(main)


def _grpc_request() -> bytes:
    from app.edge.grpc.proto import grpc_predict_v2_pb2 as pb
    from app.plane.v2.tensors import encode_bytes

    request = pb.ModelInferRequest(model_name="banking77")
    request.inputs.add(name="text", datatype="BYTES", shape=[1])
    request.raw_input_contents.append(encode_bytes([b"how do I top up my card"]))
    return request.SerializeToString()


async def _one(
    variant: str, port: int, args: argparse.Namespace, pid: int
) -> tuple[float, float, float]:
    closer: Callable[[], Awaitable[None] | None]
    if variant == "http":
        body = b'{"text": "how do I top up my card"}'
        request = http_request("/classify", body, {"Content-Type": "application/json"})
        callers, closer = await http_callers("127.0.0.1", port, [request], args.concurrency)
    else:
        target = f"127.0.0.1:{port}"
        callers, closer = await grpc_callers(target, METHOD, [_grpc_request()], args.concurrency)
    cpu0 = procstat.tree_cpu_seconds(pid)
    t0 = time.perf_counter()
    run = await run_load(callers, args.warmup, args.duration)
    server_cpu = procstat.tree_cpu_seconds(pid) - cpu0
    calls_in_window = run.requests_per_s * (time.perf_counter() - t0)  # warm-up included
    done = closer()
    if done is not None:
        await done
    if run.errors:
        raise RuntimeError(f"{variant}: {run.errors} errors")
    server_us = server_cpu / max(calls_in_window, 1) * 1e6
    return run.requests_per_s, server_us, run.client_cpu_s / max(run.ok, 1) * 1e6


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.grpc_micro", description=__doc__)
    p.add_argument("variants", nargs="*", default=list(VARIANTS))
    p.add_argument("--serve", nargs=2, metavar=("VARIANT", "PORT"), help=argparse.SUPPRESS)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--duration", type=float, default=4.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument(
        "--server-env", action="append", default=[], metavar="KEY=VALUE",
        help="environment of the servers only (GRPC_EXPERIMENTS=..., GRPC_POLL_STRATEGY=...)",
    )  # fmt: skip
    args = p.parse_args(argv)
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return 0
    results: dict[str, list[tuple[float, float, float]]] = {v: [] for v in args.variants}
    for rep in range(args.reps):
        order = args.variants if rep % 2 == 0 else list(reversed(args.variants))
        for variant in order:
            port = free_port()
            cmd = [sys.executable, "-m", "bench.grpc_micro", "--serve", variant, str(port)]
            env = dict(os.environ, **dict(e.split("=", 1) for e in args.server_env))
            proc = subprocess.Popen(cmd, env=env)
            try:
                time.sleep(2.5 if variant != "http" else 1.5)
                results[variant].append(asyncio.run(_one(variant, port, args, proc.pid)))
            finally:
                proc.terminate()
                proc.wait(10)
            rate, cpu, client = results[variant][-1]
            print(f"  {variant}: {rate:.0f} calls/s, CPU/call: server {cpu:.0f} us, "
                  f"generator {client:.0f} us", flush=True)  # fmt: skip
    print("| variant | calls/s | server CPU us/call | generator CPU us/call |")
    print("|---|---:|---:|---:|")
    for variant, runs in results.items():
        rate, cpu, client = (statistics.median(r[i] for r in runs) for i in range(3))
        print(f"| {variant} | {rate:.0f} | {cpu:.0f} | {client:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
