"""V2 REST bodies: JSON tensors and the binary tensor data extension, to and from the
wire-neutral InferRequest / InferResponse (no HTTP framework code).

With the binary extension a body is a JSON header of ``Inference-Header-Content-Length``
bytes followed by the raw tensors, each input marking its size with the
``binary_data_size`` parameter; ``tritonclient.http`` sends BYTES inputs that way unless
told not to, and asks for binary outputs with ``binary_data`` (per output) or
``binary_data_output`` (for all).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from app.errors import InvalidInput
from app.plane.v2.tensors import (
    INPUT,
    InferRequest,
    InferResponse,
    RequestedOutput,
    check_input,
    decode_bytes,
    flatten_strings,
    texts_from_bytes,
)

HEADER_LENGTH = "inference-header-content-length"
BINARY_CONTENT_TYPE = "application/octet-stream"
_THE_INPUT = f"input '{INPUT}'"


def _object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a JSON object")
    return value


def _parameters(value: dict[str, Any], what: str) -> dict[str, Any]:
    return _object(value.get("parameters") or {}, f"{what} 'parameters'")


def _flag(params: dict[str, Any], name: str, what: str) -> bool:
    value = params.get(name, False)
    if not isinstance(value, bool):
        raise InvalidInput(f"{what} parameter {name!r} must be true or false")
    return value


def _shape(value: object) -> list[int]:
    if type(value) is list:
        for d in value:
            if type(d) is not int:  # orjson reads integers as int, true and false as bool
                break
        else:
            return value
    raise InvalidInput(f"input '{INPUT}' needs a 'shape': a list of integers")


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, memoryview]:
    """(JSON header, binary tensor data) of a request body."""
    if header_length is None:
        return body, memoryview(b"")
    n = int(header_length) if header_length.strip().isdecimal() else -1
    if not 0 <= n <= len(body):
        raise InvalidInput(
            f"Inference-Header-Content-Length {header_length!r} does not fit a body of "
            f"{len(body)} bytes"
        )
    return body[:n], memoryview(body)[n:]


def decode_request(
    body: bytes, header_length: str | None, *, model: str, version: str
) -> InferRequest:
    """An InferRequest from a REST body; InvalidInput naming what is wrong."""
    header, binary = split_body(body, header_length)
    try:
        doc = _object(orjson.loads(header), "the request")
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the request is not valid JSON: {exc}") from None
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInput(f"missing input '{INPUT}' ('inputs' must list it)")
    if len(inputs) > 1:
        raise InvalidInput(f"expected one input '{INPUT}', got {len(inputs)}")
    tensor = _object(inputs[0], "an input")
    name, datatype = tensor.get("name"), tensor.get("datatype")
    if not isinstance(name, str) or not isinstance(datatype, str):
        raise InvalidInput("an input needs a 'name' and a 'datatype'")
    count = check_input(name, datatype, _shape(tensor.get("shape")))
    size = _parameters(tensor, _THE_INPUT).get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= len(binary):
            raise InvalidInput(
                f"input '{INPUT}' binary_data_size {size!r} does not fit the "
                f"{len(binary)} bytes of binary data"
            )
        if "data" in tensor:
            raise InvalidInput(f"input '{INPUT}' has both 'data' and binary_data_size")
        texts = texts_from_bytes(decode_bytes(binary[:size], count))
        binary = binary[size:]
    elif "data" in tensor:
        texts = flatten_strings(tensor["data"], count)
    else:
        raise InvalidInput(f"input '{INPUT}' has no 'data' (nor binary_data_size)")
    if len(binary):
        raise InvalidInput(f"{len(binary)} bytes of binary data belong to no input")
    binary_outputs = _flag(_parameters(doc, "the request"), "binary_data_output", "request")
    outputs = None
    if doc.get("outputs") is not None:
        if not isinstance(doc["outputs"], list):
            raise InvalidInput("'outputs' must be a list")
        outputs = [_requested_output(o, binary_outputs) for o in doc["outputs"]]
    request_id = doc.get("id", "")
    if not isinstance(request_id, str):
        raise InvalidInput("'id' must be a string")
    return InferRequest(
        model=model,
        version=version,
        id=request_id,
        texts=texts,
        outputs=outputs,
        binary_outputs=binary_outputs,
    )


def _requested_output(value: object, binary_default: bool) -> RequestedOutput:
    out = _object(value, "an output")
    name = out.get("name")
    if not isinstance(name, str):
        raise InvalidInput("an output needs a 'name'")
    params = _parameters(out, f"output {name!r}")
    binary = (
        _flag(params, "binary_data", f"output {name!r}")
        if "binary_data" in params
        else (binary_default)
    )
    k = params.get("classification", 0)
    if not isinstance(k, int) or isinstance(k, bool):
        raise InvalidInput(f"output {name!r} parameter 'classification' must be an integer")
    return RequestedOutput(name, binary, k)


def encode_response(response: InferResponse) -> tuple[bytes, int | None]:
    """(body, JSON header length when binary outputs follow it, else None)."""
    chunks: list[bytes] = []
    outputs = []
    for out in response.outputs:
        entry: dict[str, Any] = {"name": out.name, "datatype": out.datatype, "shape": out.shape}
        if out.binary:
            raw = out.raw()
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            entry["data"] = out.data.reshape(-1) if isinstance(out.data, np.ndarray) else out.data
        outputs.append(entry)
    doc: dict[str, Any] = {"model_name": response.model, "model_version": response.version}
    if response.id:
        doc["id"] = response.id
    doc["parameters"] = {"request_id": response.request_id}
    doc["outputs"] = outputs
    header = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    if not chunks:
        return header, None
    return header + b"".join(chunks), len(header)
