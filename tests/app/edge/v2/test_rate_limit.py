"""REST and gRPC draw on the same per-client token bucket as /classify."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from app.edge.grpc.proto import grpc_predict_v2_pb2 as pb
from app.edge.grpc.proto import grpc_predict_v2_pb2_grpc as pb_grpc
from app.main import create_app
from app.plane.v2.tensors import encode_bytes
from tests.app.edge.v2.conftest import AUTH, GRPC_AUTH, KEY
from tests.app.live_service import make_settings
from tests.live_server import free_port, live_server

INFER = {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["refund"]}]}


@pytest.fixture(scope="module")
def limited(
    tiny_model_repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    port = free_port()
    settings = make_settings(
        tmp_path_factory.mktemp("v2-limited"),
        tiny_model_repo,
        api_keys=f"svc:{KEY}",
        grpc_port=port,
        rate_limit_per_s=0.5,
        rate_limit_burst=1,
    )
    with live_server(create_app(settings)) as url:
        yield url, f"127.0.0.1:{port}"


def infer_request() -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="example")
    request.inputs.add(name="text", datatype="BYTES", shape=[1])
    request.raw_input_contents.append(encode_bytes([b"refund"]))
    return request


def test_one_bucket_for_classify_rest_and_grpc(limited: tuple[str, str]) -> None:
    url, target = limited
    time.sleep(2.1)  # a full bucket (one token)
    assert httpx.post(url + "/classify", json={"text": "a"}, headers=AUTH).status_code == 200
    r = httpx.post(url + "/v2/models/example/infer", json=INFER, headers=AUTH)
    assert r.status_code == 429
    assert set(r.json()) == {"error"} and "rate limit" in r.json()["error"]
    assert int(r.headers["Retry-After"]) >= 1
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.ModelInfer(infer_request(), metadata=tuple(GRPC_AUTH.items()))
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        trailers = dict(info.value.trailing_metadata() or ())
        assert int(trailers["retry-after"]) >= 1
        time.sleep(2.1)
        reply = stub.ModelInfer(infer_request(), metadata=tuple(GRPC_AUTH.items()))
        assert [o.name for o in reply.outputs][0] == "probabilities"
