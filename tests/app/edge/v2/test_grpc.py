"""V2 over gRPC with NVIDIA's real tritonclient.grpc: answers equal /classify; every error."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tritonclient.utils import InferenceServerException

from tests.app.conftest import wait_until
from tests.app.edge.v2.conftest import (
    CHINESE,
    ENGLISH,
    GRPC_AUTH,
    MAX_TEXT_CHARS,
    MAX_TEXTS,
    V2Server,
)


@pytest.fixture(scope="module")
def triton(v2: V2Server) -> Iterator[grpcclient.InferenceServerClient]:
    with grpcclient.InferenceServerClient(v2.grpc_url) as client:
        yield client


def text_input(texts: list[str], shape: list[int] | None = None) -> grpcclient.InferInput:
    data = np.array([t.encode() for t in texts], dtype=np.object_)
    if shape is not None:
        data = data.reshape(shape)
    inp = grpcclient.InferInput("text", list(data.shape), "BYTES")
    inp.set_data_from_numpy(data)
    return inp


def outputs(*names: str) -> list[grpcclient.InferRequestedOutput]:
    return [grpcclient.InferRequestedOutput(n) for n in names]


def refusal(call: object) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as info:
        call()  # type: ignore[operator]
    return info.value


@pytest.mark.parametrize("texts", [ENGLISH, CHINESE], ids=["english", "chinese"])
@pytest.mark.parametrize("version", ["", "1"], ids=["unversioned", "version-1"])
def test_infer_equals_classify(
    v2: V2Server, triton: grpcclient.InferenceServerClient, texts: list[str], version: str
) -> None:
    result = triton.infer(
        "example",
        [text_input(texts)],
        model_version=version,
        outputs=outputs("probabilities", "label", "confidence", "fallback"),
        headers=GRPC_AUTH,
    )
    expected = v2.classify(texts)["predictions"]
    probs = result.as_numpy("probabilities")
    labels = [b.decode() for b in result.as_numpy("label")]
    assert probs.dtype == np.float32 and probs.shape[0] == len(texts)
    assert labels == [p["label"] for p in expected]
    assert result.as_numpy("confidence").tolist() == [
        np.float32(p["confidence"]).item() for p in expected
    ]
    assert result.as_numpy("fallback").tolist() == [p["fallback"] for p in expected]
    assert probs.max(axis=1).tolist() == result.as_numpy("confidence").tolist()
    meta = triton.get_model_metadata("example", as_json=True, headers=GRPC_AUTH)
    assert [meta["outputs"][0]["name"]] == ["probabilities"]
    response = result.get_response()
    assert (response.model_name, response.model_version) == ("example", "1")


def test_all_outputs_by_default_and_batched_shape(
    v2: V2Server, triton: grpcclient.InferenceServerClient
) -> None:
    result = triton.infer(
        "example", [text_input(ENGLISH, [3, 1])], headers=GRPC_AUTH, request_id="req-7"
    )
    response = result.get_response()
    assert [o.name for o in response.outputs] == [
        "probabilities",
        "label",
        "confidence",
        "fallback",
    ]
    assert response.id == "req-7"
    # The request's id keys the prediction log (and /feedback) when no x-request-id is sent.
    assert response.parameters["request_id"].string_param == "req-7"
    expected = [p["label"] for p in v2.classify(ENGLISH)["predictions"]]
    wait_until(lambda: len(v2.logged("req-7")) == 3)
    assert v2.logged("req-7") == [(i, lbl, "svc") for i, lbl in enumerate(expected)]


def test_x_request_id_metadata_wins(v2: V2Server, triton: grpcclient.InferenceServerClient) -> None:
    result = triton.infer(
        "example",
        [text_input(CHINESE[:1])],
        headers={**GRPC_AUTH, "x-request-id": "from-metadata-1"},
        request_id="ignored-id",
    )
    assert result.get_response().parameters["request_id"].string_param == "from-metadata-1"
    wait_until(lambda: len(v2.logged("from-metadata-1")) == 1)


def test_classification_extension(v2: V2Server, triton: grpcclient.InferenceServerClient) -> None:
    out = grpcclient.InferRequestedOutput("probabilities", class_count=2)
    result = triton.infer("example", [text_input(ENGLISH)], outputs=[out], headers=GRPC_AUTH)
    rows = result.as_numpy("probabilities")
    assert rows.shape == (3, 2)
    expected = v2.classify(ENGLISH, top_k=2)["predictions"]
    for row, pred in zip(rows, expected, strict=True):
        got = [entry.decode().split(":") for entry in row]
        assert [g[2] for g in got] == [r["label"] for r in pred["ranking"]]
        assert [float(g[0]) for g in got] == pytest.approx(
            [r["confidence"] for r in pred["ranking"]], abs=1e-6
        )


def test_health_and_metadata(triton: grpcclient.InferenceServerClient, v2: V2Server) -> None:
    assert triton.is_server_live() and triton.is_server_ready()  # open: no key needed
    assert triton.is_model_ready("example", headers=GRPC_AUTH)
    assert triton.is_model_ready("example", "1", headers=GRPC_AUTH)
    assert not triton.is_model_ready("example", "2", headers=GRPC_AUTH)
    server = triton.get_server_metadata(as_json=True, headers=GRPC_AUTH)
    assert server["name"] == "textcls"
    assert set(server["extensions"]) == {"binary_tensor_data", "classification"}
    meta = triton.get_model_metadata("example", "1", as_json=True, headers=GRPC_AUTH)
    assert meta["versions"] == ["1"] and meta["platform"] == "tensorflow_savedmodel"
    assert meta["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": ["-1"]}]
    assert {o["name"]: o["datatype"] for o in meta["outputs"]} == {
        "probabilities": "FP32",
        "label": "BYTES",
        "confidence": "FP32",
        "fallback": "BOOL",
    }
    with grpc.insecure_channel(v2.grpc_url) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "inference.GRPCInferenceService"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


def wrong_datatype() -> list[grpcclient.InferInput]:
    inp = grpcclient.InferInput("text", [2], "FP32")
    inp.set_data_from_numpy(np.array([1.0, 2.0], dtype=np.float32))
    return [inp]


def wrong_shape() -> list[grpcclient.InferInput]:
    inp = text_input(ENGLISH[:2])
    inp.set_shape([3])
    return [inp]


def matrix_shape() -> list[grpcclient.InferInput]:
    return [text_input(ENGLISH[:2] * 2, [2, 2])]


def wrong_name() -> list[grpcclient.InferInput]:
    inp = grpcclient.InferInput("texts", [1], "BYTES")
    inp.set_data_from_numpy(np.array([b"hello"], dtype=np.object_))
    return [inp]


def not_utf8() -> list[grpcclient.InferInput]:
    inp = grpcclient.InferInput("text", [1], "BYTES")
    inp.set_data_from_numpy(np.array([b"\xff\xfe"], dtype=np.object_))
    return [inp]


@pytest.mark.parametrize(
    ("inputs", "model", "version", "code", "message"),
    [
        (wrong_datatype, "example", "", "INVALID_ARGUMENT", "datatype 'FP32'"),
        (wrong_shape, "example", "", "INVALID_ARGUMENT", "the shape says 3"),
        (matrix_shape, "example", "", "INVALID_ARGUMENT", "expected [n] or [n, 1]"),
        (lambda: [], "example", "", "INVALID_ARGUMENT", "missing input 'text'"),
        (wrong_name, "example", "", "INVALID_ARGUMENT", "unknown input 'texts'"),
        (not_utf8, "example", "", "INVALID_ARGUMENT", "not valid UTF-8"),
        (lambda: [text_input(["a"] * (MAX_TEXTS + 1))], "example", "", "INVALID_ARGUMENT",
         "too many texts"),
        (lambda: [text_input(["x" * (MAX_TEXT_CHARS + 1)])], "example", "", "INVALID_ARGUMENT",
         "characters (at most"),
        (lambda: [text_input(["   "])], "example", "", "INVALID_ARGUMENT", "is empty"),
        (lambda: [text_input(["a"])], "nope", "", "NOT_FOUND", "model 'nope' not found"),
        (lambda: [text_input(["a"])], "example", "9", "NOT_FOUND", "version 9 is not served"),
        (lambda: [text_input(["a"])], "example", "v1", "NOT_FOUND", "not a version number"),
    ],
    ids=["datatype", "shape", "matrix", "missing", "name", "utf8", "too-many", "too-long",
         "blank", "model", "version", "version-string"],
)  # fmt: skip
def test_protocol_errors(
    triton: grpcclient.InferenceServerClient,
    inputs: object,
    model: str,
    version: str,
    code: str,
    message: str,
) -> None:
    error = refusal(
        lambda: triton.infer(model, inputs(), model_version=version, headers=GRPC_AUTH)  # type: ignore[operator]
    )
    assert error.status() == f"StatusCode.{code}"
    assert message in error.message()


def test_unknown_output_and_misplaced_classification(
    triton: grpcclient.InferenceServerClient,
) -> None:
    error = refusal(
        lambda: triton.infer(
            "example", [text_input(["a"])], outputs=outputs("logits"), headers=GRPC_AUTH
        )
    )
    assert error.status() == "StatusCode.INVALID_ARGUMENT" and "unknown output" in error.message()
    label_top = [grpcclient.InferRequestedOutput("label", class_count=2)]
    error = refusal(
        lambda: triton.infer("example", [text_input(["a"])], outputs=label_top, headers=GRPC_AUTH)
    )
    assert "'probabilities' only" in error.message()


def test_oversize_message_is_resource_exhausted(triton: grpcclient.InferenceServerClient) -> None:
    error = refusal(
        lambda: triton.infer("example", [text_input(["x" * (3 << 20)])], headers=GRPC_AUTH)
    )
    assert error.status() == "StatusCode.RESOURCE_EXHAUSTED"


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer wrong"}, {"authorization": "Basic abc"}],
    ids=["none", "wrong", "not-bearer"],
)
def test_keys_are_required(
    triton: grpcclient.InferenceServerClient, headers: dict[str, str]
) -> None:
    error = refusal(lambda: triton.infer("example", [text_input(["a"])], headers=headers))
    assert error.status() == "StatusCode.UNAUTHENTICATED"
    error = refusal(lambda: triton.get_model_metadata("example", headers=headers))
    assert error.status() == "StatusCode.UNAUTHENTICATED"


def test_x_api_key_metadata(triton: grpcclient.InferenceServerClient) -> None:
    key = GRPC_AUTH["authorization"].removeprefix("Bearer ")
    result = triton.infer("example", [text_input(["a"])], headers={"x-api-key": key})
    assert result.as_numpy("label").shape == (1,)


def test_grpc_calls_are_counted(v2: V2Server, triton: grpcclient.InferenceServerClient) -> None:
    import httpx

    triton.infer("example", [text_input(["a"])], headers=GRPC_AUTH)
    refusal(lambda: triton.infer("nope", [text_input(["a"])], headers=GRPC_AUTH))
    text = httpx.get(v2.url + "/metrics").text
    assert 'textcls_grpc_requests_total{code="OK",method="ModelInfer"}' in text
    assert 'textcls_grpc_requests_total{code="NOT_FOUND",method="ModelInfer"}' in text
    assert 'textcls_grpc_request_duration_seconds_count{method="ModelInfer"}' in text
