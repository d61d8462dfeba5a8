"""ModelInferRequest -> InferRequest, InferResponse -> ModelInferResponse (raw tensors), and
the gRPC status of each kind of domain error."""

from __future__ import annotations

import grpc

from app.edge.grpc.proto import grpc_predict_v2_pb2 as pb
from app.errors import (
    InferenceFailed,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServiceError,
    Unauthorized,
    Unavailable,
)
from app.plane.v2.tensors import (
    INPUT,
    InferRequest,
    InferResponse,
    RequestedOutput,
    check_input,
    decode_bytes,
    texts_from_bytes,
)


def decode_infer_request(request: pb.ModelInferRequest) -> InferRequest:
    """The texts and requested outputs of a ModelInferRequest; InvalidInput if malformed."""
    if not request.inputs:
        raise InvalidInput(f"missing input '{INPUT}'")
    if len(request.inputs) > 1:
        names = ", ".join(repr(i.name) for i in request.inputs)
        raise InvalidInput(f"expected one input '{INPUT}', got {len(request.inputs)}: {names}")
    tensor = request.inputs[0]
    count = check_input(tensor.name, tensor.datatype, tensor.shape)
    raw = request.raw_input_contents
    if raw:
        if len(raw) != 1:
            raise InvalidInput(f"{len(raw)} raw_input_contents for 1 input")
        elements = decode_bytes(raw[0], count)
    else:
        elements = list(tensor.contents.bytes_contents)
        if len(elements) != count:
            raise InvalidInput(
                f"input '{INPUT}' holds {len(elements)} elements; the shape says {count}"
            )
    outputs = None
    if request.outputs:
        outputs = []
        for out in request.outputs:
            param = out.parameters.get("classification")
            k = param.int64_param if param is not None else 0
            outputs.append(RequestedOutput(out.name, True, k))
    return InferRequest(
        model=request.model_name,
        version=request.model_version,
        id=request.id,
        texts=texts_from_bytes(elements),
        outputs=outputs,
    )


def encode_infer_response(response: InferResponse) -> pb.ModelInferResponse:
    """Outputs in raw_output_contents, as Triton answers (what tritonclient reads)."""
    reply = pb.ModelInferResponse(
        model_name=response.model, model_version=response.version, id=response.id
    )
    reply.parameters["request_id"].string_param = response.request_id
    for out in response.outputs:
        reply.outputs.add(name=out.name, datatype=out.datatype, shape=out.shape)
        reply.raw_output_contents.append(out.raw())
    return reply


def peer_host(peer: str) -> str:
    """``ipv4:10.0.0.7:5123`` -> ``10.0.0.7``; ``ipv6:[::1]:5123`` -> ``::1``."""
    _, _, address = peer.partition(":")
    if address.startswith("["):
        return address[1 : address.find("]")] or "anonymous"
    host, _, _ = address.rpartition(":")
    return host or address or "anonymous"


# By kind (app.errors); a subclass takes its nearest listed ancestor's code.
CODES: dict[type[ServiceError], grpc.StatusCode] = {
    InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    Unauthorized: grpc.StatusCode.UNAUTHENTICATED,
    RateLimited: grpc.StatusCode.RESOURCE_EXHAUSTED,
    PayloadTooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    InferenceFailed: grpc.StatusCode.INTERNAL,
}


def code_of(exc: ServiceError) -> grpc.StatusCode:
    """The gRPC status for a domain error (INTERNAL for a kind not listed)."""
    for cls in type(exc).__mro__:
        code = CODES.get(cls)
        if code is not None:
            return code
    return grpc.StatusCode.INTERNAL
