"""V2 over REST with NVIDIA's real tritonclient.http (binary and JSON tensors) and raw HTTP:
answers equal /classify; every protocol error in V2's ``{"error": ...}`` shape."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import orjson
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from app.edge.v2_codec import split_body
from app.errors import InvalidInput
from app.plane.v2.tensors import encode_bytes
from tests.app.conftest import wait_until
from tests.app.edge.v2.conftest import AUTH, CHINESE, ENGLISH, MAX_TEXT_CHARS, MAX_TEXTS, V2Server


@pytest.fixture(scope="module")
def triton(v2: V2Server) -> Iterator[httpclient.InferenceServerClient]:
    client = httpclient.InferenceServerClient(v2.url.removeprefix("http://"))
    yield client
    client.close()


def text_input(texts: list[str], binary: bool = True) -> httpclient.InferInput:
    inp = httpclient.InferInput("text", [len(texts)], "BYTES")
    inp.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=np.object_), binary)
    return inp


NAMES = ("probabilities", "label", "confidence", "fallback")


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("texts", [ENGLISH, CHINESE], ids=["english", "chinese"])
@pytest.mark.parametrize("version", ["", "1"], ids=["unversioned", "version-1"])
def test_infer_equals_classify(
    v2: V2Server,
    triton: httpclient.InferenceServerClient,
    texts: list[str],
    version: str,
    binary: bool,
) -> None:
    outputs = [httpclient.InferRequestedOutput(n, binary_data=binary) for n in NAMES]
    result = triton.infer(
        "example",
        [text_input(texts, binary)],
        model_version=version,
        outputs=outputs,
        headers=dict(AUTH),
    )
    expected = v2.classify(texts)["predictions"]
    probs = result.as_numpy("probabilities")
    assert probs.dtype == np.float32 and probs.shape[0] == len(texts)
    labels = [x.decode() if isinstance(x, bytes) else x for x in result.as_numpy("label")]
    assert labels == [p["label"] for p in expected]
    assert result.as_numpy("confidence").tolist() == [
        np.float32(p["confidence"]).item() for p in expected
    ]
    assert result.as_numpy("fallback").tolist() == [p["fallback"] for p in expected]
    assert probs.max(axis=1).tolist() == result.as_numpy("confidence").tolist()
    response = result.get_response()
    assert (response["model_name"], response["model_version"]) == ("example", "1")


def test_default_outputs_binary_and_the_request_id(
    v2: V2Server, triton: httpclient.InferenceServerClient
) -> None:
    # No outputs named: tritonclient asks for all of them in binary (binary_data_output).
    result = triton.infer(
        "example", [text_input(ENGLISH)], headers={**AUTH, "X-Request-ID": "rest-7"}
    )
    response = result.get_response()
    assert [o["name"] for o in response["outputs"]] == list(NAMES)
    assert all("binary_data_size" in o["parameters"] for o in response["outputs"])
    assert response["parameters"]["request_id"] == "rest-7"
    wait_until(lambda: len(v2.logged("rest-7")) == 3)
    assert [row[2] for row in v2.logged("rest-7")] == ["svc"] * 3


def test_classification_extension(v2: V2Server, triton: httpclient.InferenceServerClient) -> None:
    out = httpclient.InferRequestedOutput("probabilities", class_count=2)
    result = triton.infer("example", [text_input(ENGLISH)], outputs=[out], headers=dict(AUTH))
    rows = result.as_numpy("probabilities")
    assert rows.shape == (3, 2)
    expected = v2.classify(ENGLISH, top_k=2)["predictions"]
    for row, pred in zip(rows, expected, strict=True):
        assert [e.decode().split(":")[2] for e in row] == [r["label"] for r in pred["ranking"]]


def test_health_and_metadata(v2: V2Server, triton: httpclient.InferenceServerClient) -> None:
    assert triton.is_server_live() and triton.is_server_ready()  # open, like /readyz
    assert triton.is_model_ready("example", headers=dict(AUTH))
    assert triton.is_model_ready("example", "1", headers=dict(AUTH))
    assert not triton.is_model_ready("example", "2", headers=dict(AUTH))
    server = triton.get_server_metadata(headers=dict(AUTH))
    assert server["name"] == "textcls"
    assert set(server["extensions"]) == {"binary_tensor_data", "classification"}
    for version in ("", "1"):
        meta = triton.get_model_metadata("example", version, headers=dict(AUTH))
        assert meta["name"] == "example" and meta["versions"] == ["1"]
        assert meta["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
        assert meta["outputs"][0]["name"] == "probabilities"
        assert meta["outputs"][0]["shape"][0] == -1
    r = httpx.get(v2.url + "/v2/models/nope/ready", headers=dict(AUTH))
    assert r.status_code == 404 and "nope" in r.json()["error"]


def post_infer(v2: V2Server, body: object, path: str = "/v2/models/example/infer",
               **kwargs: object) -> httpx.Response:  # fmt: skip
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    headers = {**AUTH, **kwargs.pop("headers", {})}  # type: ignore[dict-item]
    return httpx.post(v2.url + path, content=content, headers=headers, **kwargs)  # type: ignore[arg-type]


def tensor(data: object, shape: list[int], datatype: str = "BYTES", name: str = "text") -> dict:
    return {"inputs": [{"name": name, "shape": shape, "datatype": datatype, "data": data}]}


@pytest.mark.parametrize(
    ("body", "path", "status", "message"),
    [
        (tensor([1.0, 2.0], [2], "FP32"), None, 400, "datatype 'FP32'"),
        (tensor(["a", "b"], [3]), None, 400, "the shape says 3"),
        (tensor(["a", "b", "c", "d"], [2, 2]), None, 400, "expected [n] or [n, 1]"),
        ({"inputs": []}, None, 400, "missing input 'text'"),
        ({"id": "x"}, None, 400, "missing input 'text'"),
        (tensor(["a"], [1], name="texts"), None, 400, "unknown input 'texts'"),
        (tensor([1], [1]), None, 400, "BYTES elements are strings"),
        (tensor(["a"] * (MAX_TEXTS + 1), [MAX_TEXTS + 1]), None, 400, "too many texts"),
        (tensor(["x" * (MAX_TEXT_CHARS + 1)], [1]), None, 400, "characters (at most"),
        (tensor([" "], [1]), None, 400, "is empty"),
        ({**tensor(["a"], [1]), "outputs": [{"name": "logits"}]}, None, 400, "unknown output"),
        (b"{not json", None, 400, "not valid JSON"),
        (b'{"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["\\ud800"]}]}',
         None, 400, "lone UTF-16 surrogate"),
        (b'{"inputs": [], "parameters": {"x": NaN}}', None, 400, "NaN or Infinity"),
        (b"[1, 2]", None, 400, "must be a JSON object"),
        (tensor(["a"], [1]), "/v2/models/nope/infer", 404, "model 'nope' not found"),
        (tensor(["a"], [1]), "/v2/models/example/versions/9/infer", 404, "version 9 is not served"),
        (tensor(["a"], [1]), "/v2/models/example/versions/v1/infer", 404, "not a version number"),
    ],
    ids=["datatype", "shape", "matrix", "no-inputs", "missing", "name", "not-string", "too-many",
         "too-long", "blank", "output", "json", "surrogate", "nan", "not-object", "model",
         "version", "version-string"],
)  # fmt: skip
def test_protocol_errors(
    v2: V2Server, body: object, path: str | None, status: int, message: str
) -> None:
    r = post_infer(v2, body, path or "/v2/models/example/infer")
    assert r.status_code == status, r.text
    assert set(r.json()) == {"error"}
    assert message in r.json()["error"]


def test_errors_through_tritonclient(triton: httpclient.InferenceServerClient) -> None:
    with pytest.raises(InferenceServerException) as info:
        triton.infer("nope", [text_input(["a"])], headers=dict(AUTH))
    assert info.value.status() == "404" and "not found" in info.value.message()
    inp = text_input(["a", "b"])
    inp.set_shape([3])
    with pytest.raises(InferenceServerException) as info:
        triton.infer("example", [inp], headers=dict(AUTH))
    assert info.value.status() == "400" and "the shape says 3" in info.value.message()


def binary_body(elements: list[bytes], declared: int | None = None) -> tuple[bytes, dict]:
    raw = encode_bytes(elements)
    size = len(raw) if declared is None else declared
    header = orjson.dumps(
        {"inputs": [{"name": "text", "shape": [len(elements)], "datatype": "BYTES",
                     "parameters": {"binary_data_size": size}}]}
    )  # fmt: skip
    return header + raw, {"Inference-Header-Content-Length": str(len(header))}


def test_binary_body_errors(v2: V2Server) -> None:
    body, headers = binary_body([b"\xff\xfe"])
    r = post_infer(v2, body, headers=headers)
    assert r.status_code == 400 and "not valid UTF-8" in r.json()["error"]
    body, headers = binary_body([b"hello"], declared=99)
    r = post_infer(v2, body, headers=headers)
    assert r.status_code == 400 and "does not fit" in r.json()["error"]
    body, headers = binary_body([b"hello"])
    r = post_infer(v2, body + b"extra", headers=headers)
    assert r.status_code == 400 and "belong to no input" in r.json()["error"]
    r = post_infer(v2, body, headers={"Inference-Header-Content-Length": "100000"})
    assert r.status_code == 400 and "Inference-Header-Content-Length" in r.json()["error"]
    # A body with no Content-Type at all is read as what it is (V2 clients send none).
    r = httpx.post(v2.url + "/v2/models/example/infer", content=body, headers={**AUTH, **headers})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("value", ["", " ", "-1", "3", "²", "1e2", "0x1"])
def test_a_header_length_that_is_no_byte_count_within_the_body_is_invalid(value: str) -> None:
    # "²" is a digit to str.isdigit, yet int() refuses it: it must be a 400, never a 500.
    with pytest.raises(InvalidInput, match="does not fit"):
        split_body(b"{}", value)


def test_oversize_body_is_413_in_v2_shape(v2: V2Server) -> None:
    r = post_infer(v2, tensor(["x" * (3 << 20)], [1]))
    assert r.status_code == 413 and set(r.json()) == {"error"}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}], ids=["none", "wrong"])
def test_keys_are_required(v2: V2Server, headers: dict[str, str]) -> None:
    for method, path in [
        ("POST", "/v2/models/example/infer"),
        ("GET", "/v2/models/example"),
        ("GET", "/v2/models/example/ready"),
        ("GET", "/v2"),
    ]:
        r = httpx.request(method, v2.url + path, headers=headers, content=b"{}")
        assert r.status_code == 401, (path, r.text)
        assert set(r.json()) == {"error"}
    # Probes stay open.
    assert httpx.get(v2.url + "/v2/health/live").status_code == 200
    assert httpx.get(v2.url + "/v2/health/ready").json() == {"ready": True}


def test_v2_requests_are_counted_by_route_template(v2: V2Server) -> None:
    post_infer(v2, tensor(["a"], [1]))
    post_infer(v2, tensor(["a"], [1]), "/v2/models/nope/infer")
    text = httpx.get(v2.url + "/metrics").text
    assert (
        'textcls_http_requests_total{method="POST",route="/v2/models/{name}/infer",status="200"}'
        in text
    )
    assert (
        'textcls_http_requests_total{method="POST",route="/v2/models/{name}/infer",status="404"}'
        in text
    )
