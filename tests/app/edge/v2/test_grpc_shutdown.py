"""SIGTERM with gRPC calls in flight: a real ``textcls serve`` answers them, logs them, exits 0."""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from app.edge.grpc.proto import grpc_predict_v2_pb2 as pb
from app.edge.grpc.proto import grpc_predict_v2_pb2_grpc as pb_grpc
from app.plane.v2.tensors import encode_bytes
from tests.app.test_shutdown import GRACE_S, free_port, sigterm_under_load, start_server


@dataclass
class Call:
    request_id: str
    started: float
    ended: float
    code: grpc.StatusCode


def hammer(target: str, worker: int, stop: threading.Event, out: list[Call]) -> None:
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        n = 0
        while not stop.is_set():
            n += 1
            rid = f"g{worker}-{n}"
            request = pb.ModelInferRequest(model_name="example", id=rid)
            request.inputs.add(name="text", datatype="BYTES", shape=[1])
            request.raw_input_contents.append(encode_bytes([f"card {worker} {n}".encode()]))
            started = time.monotonic()
            try:
                stub.ModelInfer(request, timeout=30)
                code = grpc.StatusCode.OK
            except grpc.RpcError as exc:
                code = exc.code()
            out.append(Call(rid, started, time.monotonic(), code))
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                return  # the server no longer takes calls


@pytest.mark.slow
def test_sigterm_drains_grpc_calls_logs_them_and_exits_0(
    tiny_model_repo: Path, tmp_path: Path
) -> None:
    port, grpc_port = free_port(), free_port()
    proc = start_server(
        tiny_model_repo,
        tmp_path,
        port,
        TEXTCLS_MAX_BATCH_WAIT_MS="150",  # keeps calls in flight when the signal lands
        TEXTCLS_GRPC_PORT=str(grpc_port),
    )
    calls: list[Call] = []
    target = f"127.0.0.1:{grpc_port}"
    workers = itertools.count()
    stopped = sigterm_under_load(
        proc,
        f"http://127.0.0.1:{port}",
        lambda stop: hammer(target, next(workers), stop, calls),
        workers=6,
    )
    code, sigterm_at, exited_after, output = (
        stopped.code,
        stopped.sigterm_at,
        stopped.exited_after,
        stopped.output,
    )

    assert code == 0, output
    assert exited_after < GRACE_S, output  # drained, not cut off at the grace period
    started_before = [c for c in calls if c.started < sigterm_at]
    in_flight = [c for c in started_before if c.ended > sigterm_at]
    assert in_flight, "no call was in flight at SIGTERM: the test proves nothing"
    # Every call made before the signal was answered; after it, calls are refused cleanly.
    assert all(c.code == grpc.StatusCode.OK for c in started_before), started_before[-6:]
    # A call sent while the server closes its connections is refused UNAVAILABLE or, when the
    # connection goes away under it, CANCELLED: never processed, so safe to retry elsewhere.
    refused = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}
    assert {c.code for c in calls} <= {grpc.StatusCode.OK, *refused}
    answered = [c for c in calls if c.code == grpc.StatusCode.OK]
    with sqlite3.connect(tmp_path / "log.db") as db:
        logged = {r for (r,) in db.execute("SELECT request_id FROM prediction_log")}
    missing = [c.request_id for c in answered if c.request_id not in logged]
    assert not missing, (missing[:5], output[-2000:])
