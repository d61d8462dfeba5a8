"""V2 tensors as textcls uses them: one BYTES input of texts, FP32/BYTES/BOOL outputs.

Holds the wire-neutral request and response types and the byte layouts both transports
share: the raw form of a BYTES tensor (each element a 4-byte little-endian length, then its
bytes), which gRPC's ``raw_*_contents`` and REST's binary tensor extension both use, and the
raw little-endian forms of FP32 and BOOL.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from app.errors import InvalidInput

INPUT = "text"
PROBABILITIES = "probabilities"
LABEL = "label"
CONFIDENCE = "confidence"
FALLBACK = "fallback"
OUTPUTS = (PROBABILITIES, LABEL, CONFIDENCE, FALLBACK)
DATATYPES = {PROBABILITIES: "FP32", LABEL: "BYTES", CONFIDENCE: "FP32", FALLBACK: "BOOL"}

_LENGTH = struct.Struct("<I")


@dataclass(frozen=True, slots=True)
class RequestedOutput:
    """An output the client asked for; ``classification`` > 0: the top-k extension."""

    name: str
    binary: bool = False
    classification: int = 0


@dataclass(slots=True, kw_only=True)
class InferRequest:
    """A decoded inference request: the texts and what to answer with."""

    model: str
    version: str  # "" when the client left it to the server
    id: str
    texts: list[str]
    outputs: list[RequestedOutput] | None = None  # None: every output
    binary_outputs: bool = False  # REST: every output in binary unless it says otherwise


@dataclass(slots=True, kw_only=True)
class OutputTensor:
    name: str
    datatype: str
    shape: list[int]
    data: np.ndarray | list[str]  # numeric array, or the strings of a BYTES tensor
    binary: bool = False

    def raw(self) -> bytes:
        """The tensor's contents in the raw (binary) layout of its datatype."""
        if self.datatype == "BYTES":
            return encode_bytes([s.encode("utf-8") for s in self.data])
        assert isinstance(self.data, np.ndarray)
        if self.datatype == "BOOL":
            return self.data.astype(np.bool_).tobytes()
        return self.data.astype("<f4", copy=False).tobytes()


@dataclass(slots=True, kw_only=True)
class InferResponse:
    model: str
    version: str
    id: str
    request_id: str  # the prediction log's key for these texts (and POST /feedback's)
    outputs: list[OutputTensor] = field(default_factory=list)


def encode_bytes(elements: Sequence[bytes]) -> bytes:
    """Raw BYTES layout: each element as a 4-byte little-endian length, then its bytes."""
    pack = _LENGTH.pack
    return b"".join(pack(len(e)) + e for e in elements)


def decode_bytes(raw: bytes | memoryview, count: int) -> list[bytes]:
    """The ``count`` elements of a raw BYTES tensor; InvalidInput if the layout is broken."""
    view = memoryview(raw)
    out: list[bytes] = []
    at = 0
    end = len(view)
    while at < end:
        if at + 4 > end:
            raise InvalidInput("raw BYTES data ends inside an element's 4-byte length")
        (n,) = _LENGTH.unpack_from(view, at)
        at += 4
        if at + n > end:
            raise InvalidInput("raw BYTES data ends inside an element")
        out.append(bytes(view[at : at + n]))
        at += n
    if len(out) != count:
        raise InvalidInput(f"raw BYTES data holds {len(out)} elements; the shape says {count}")
    return out


def texts_from_bytes(elements: Sequence[bytes]) -> list[str]:
    """UTF-8 texts; InvalidInput naming the first element that is not valid UTF-8."""
    try:
        return [e.decode("utf-8") for e in elements]
    except UnicodeDecodeError:
        for i, e in enumerate(elements):
            try:
                e.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput(f"input '{INPUT}' element {i} is not valid UTF-8") from None
        raise


def check_input(name: str, datatype: str, shape: Sequence[int]) -> int:
    """The number of texts an input declares; InvalidInput unless it is ``text`` BYTES [n]
    (or [n, 1], the batched form Triton clients use)."""
    if name != INPUT:
        raise InvalidInput(f"unknown input {name!r}; the model's only input is '{INPUT}'")
    if datatype != "BYTES":
        raise InvalidInput(f"input '{INPUT}' has datatype {datatype!r}; expected 'BYTES'")
    dims = list(shape)
    if not dims or len(dims) > 2 or (len(dims) == 2 and dims[1] != 1) or min(dims) < 0:
        raise InvalidInput(f"input '{INPUT}' has shape {dims}; expected [n] or [n, 1] (n texts)")
    return math.prod(dims)


def check_outputs(requested: Sequence[RequestedOutput]) -> None:
    seen = set()
    for out in requested:
        if out.name not in OUTPUTS:
            known = ", ".join(repr(o) for o in OUTPUTS)
            raise InvalidInput(f"unknown output {out.name!r}; the model's outputs are {known}")
        if out.name in seen:
            raise InvalidInput(f"output {out.name!r} is requested twice")
        seen.add(out.name)
        if out.classification < 0:
            raise InvalidInput(f"output {out.name!r}: 'classification' must be positive")
        if out.classification and out.name != PROBABILITIES:
            raise InvalidInput(
                f"output {out.name!r}: the classification extension applies to "
                f"'{PROBABILITIES}' only"
            )


def flatten_strings(data: object, count: int) -> list[str]:
    """JSON ``data`` of a BYTES tensor (flat or nested lists of strings) as ``count`` texts."""
    flat: list[str] = []
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, str):
            flat.append(item)
        else:
            raise InvalidInput(
                f"input '{INPUT}' data holds a {type(item).__name__}; BYTES elements are strings"
            )
    if len(flat) != count:
        raise InvalidInput(
            f"input '{INPUT}' data holds {len(flat)} elements; the shape says {count}"
        )
    return flat
