"""The committed gRPC modules are what grpcio-tools generates from the committed .proto."""

from __future__ import annotations

from pathlib import Path

from app.edge.grpc.proto.__main__ import HERE, generate


def test_generated_modules_are_up_to_date(tmp_path: Path) -> None:
    for path in generate(tmp_path):
        committed = HERE / path.name
        assert committed.read_text() == path.read_text(), (
            f"{committed} is out of date: run `python -m app.edge.grpc.proto`"
        )


def test_messages_live_in_their_own_descriptor_pool() -> None:
    # tritonclient (and any other copy of the protocol) defines the same names in the
    # default pool; sharing it would make importing both an error.
    import tritonclient.grpc.service_pb2 as triton_pb

    from app.edge.grpc.proto import grpc_predict_v2_pb2 as pb

    assert pb.ModelInferRequest.DESCRIPTOR.full_name == "inference.ModelInferRequest"
    assert pb.DESCRIPTOR.pool is not triton_pb.DESCRIPTOR.pool
    request = pb.ModelInferRequest(model_name="example", id="1")
    assert triton_pb.ModelInferRequest.FromString(request.SerializeToString()).id == "1"
