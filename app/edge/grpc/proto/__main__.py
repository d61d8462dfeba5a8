"""Regenerate the Python modules of grpc_predict_v2.proto: ``python -m app.edge.grpc.proto``.

The generated modules are committed, so installing or running textcls needs no protoc
(grpcio-tools is a dev dependency); tests/app/edge/v2/test_proto.py regenerates them into a
temporary folder and fails when the committed ones differ.

Two edits to protoc's output, both for one reason: the protocol's message names
(``inference.ModelInferRequest``, ...) are the same in every copy of it, and tritonclient (or
any other client of the protocol) registers its own copy in protobuf's default descriptor
pool, where a second definition of a name is an error. So these messages live in a pool of
their own, and the service module imports them by their package's name.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTO = "grpc_predict_v2.proto"
OUTPUTS = ("grpc_predict_v2_pb2.py", "grpc_predict_v2_pb2.pyi", "grpc_predict_v2_pb2_grpc.py")
_DEFAULT_POOL = "DESCRIPTOR = _descriptor_pool.Default().AddSerializedFile("
_OWN_POOL = (
    "# Own pool: tritonclient's copy of the protocol defines the same names (see __main__).\n"
    "_POOL = _descriptor_pool.DescriptorPool()\n"
    "DESCRIPTOR = _POOL.AddSerializedFile("
)
_ABSOLUTE = "import grpc_predict_v2_pb2 as"
_RELATIVE = f"from {__package__} import grpc_predict_v2_pb2 as"


def generate(out: Path) -> list[Path]:
    """Write the generated modules into ``out``; their paths."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "grpc_tools.protoc", f"-I{HERE}", f"--python_out={tmp}",
             f"--pyi_out={tmp}", f"--grpc_python_out={tmp}", str(HERE / PROTO)],
            check=True,
        )  # fmt: skip
        written = []
        for name in OUTPUTS:
            text = (Path(tmp) / name).read_text()
            if name.endswith("_pb2.py"):
                assert _DEFAULT_POOL in text, "protoc's output changed: see app/edge/grpc/proto"
                text = text.replace(_DEFAULT_POOL, _OWN_POOL)
            if name.endswith("_grpc.py"):
                assert _ABSOLUTE in text, "protoc's output changed: see app/edge/grpc/proto"
                text = text.replace(_ABSOLUTE, _RELATIVE)
            (out / name).write_text(text)
            written.append(out / name)
        return written


if __name__ == "__main__":
    for path in generate(HERE):
        print(path)
