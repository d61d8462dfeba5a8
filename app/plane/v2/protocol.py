"""The V2 data plane: health, metadata and inference over the service's own classifier.

Inference goes through ``Classifier.classify``: the same limits, batcher, ranking, metrics
and prediction log as ``/classify``. The transports authenticate and rate-limit first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.errors import ModelNotReady, VersionNotFound
from app.plane.classifier import Classification
from app.plane.routing import Serving
from app.plane.services import Services
from app.plane.v2.tensors import (
    CONFIDENCE,
    DATATYPES,
    FALLBACK,
    INPUT,
    LABEL,
    OUTPUTS,
    PROBABILITIES,
    InferRequest,
    InferResponse,
    OutputTensor,
    RequestedOutput,
    check_outputs,
)

SERVER_NAME = "textcls"
SERVER_VERSION = "0.1.0"
# Protocol extensions served: the binary tensor data of REST (what tritonclient.http sends
# by default) and top-k classification of the probabilities output.
EXTENSIONS = ("binary_tensor_data", "classification")
PLATFORM = "tensorflow_savedmodel"
# What a request that names no outputs gets: every output, in binary or not (built once; a
# frozen dataclass costs a microsecond or two per request to build).
EVERY_OUTPUT = {b: tuple(RequestedOutput(name, b) for name in OUTPUTS) for b in (False, True)}


@dataclass(frozen=True, slots=True)
class TensorMetadata:
    name: str
    datatype: str
    shape: list[int]


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelMetadata:
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]

    def as_dict(self) -> dict[str, Any]:
        def tensors(ts: list[TensorMetadata]) -> list[dict[str, Any]]:
            return [{"name": t.name, "datatype": t.datatype, "shape": t.shape} for t in ts]

        return {
            "name": self.name,
            "versions": self.versions,
            "platform": self.platform,
            "inputs": tensors(self.inputs),
            "outputs": tensors(self.outputs),
        }


def parse_version(version: str | None) -> int | None:
    """A V2 version string as the repository's version number ("" or None: any)."""
    if not version:
        return None
    if version.isdigit() and int(version) > 0:
        return int(version)
    raise VersionNotFound(f"version {version!r} is not a version number")


class InferenceProtocol:
    """V2 operations on the app's services (``services()`` is None before start-up)."""

    def __init__(self, services: Callable[[], Services | None]) -> None:
        self._services = services

    def services(self) -> Services:
        services = self._services()
        if services is None:
            raise ModelNotReady("the service is starting")
        return services

    def server_live(self) -> bool:
        return True

    def server_ready(self) -> bool:
        services = self._services()
        return services is not None and services.repository.ready

    def server_metadata(self) -> dict[str, Any]:
        return {"name": SERVER_NAME, "version": SERVER_VERSION, "extensions": list(EXTENSIONS)}

    def _serving(self, name: str, version: str | None) -> Serving:
        return self.services().repository.resolve(name or None, parse_version(version))

    def model_ready(self, name: str, version: str | None = None) -> bool:
        """Whether the model (at that version) answers now; unknown names are NotFound."""
        try:
            self._serving(name, version)
        except (ModelNotReady, VersionNotFound):
            return False
        return True

    def model_metadata(self, name: str, version: str | None = None) -> ModelMetadata:
        loaded = self._serving(name, version).model
        return ModelMetadata(
            name=loaded.name,
            versions=[str(loaded.version)],
            platform=PLATFORM,
            inputs=[TensorMetadata(INPUT, "BYTES", [-1])],
            outputs=[
                TensorMetadata(PROBABILITIES, "FP32", [-1, len(loaded.labels)]),
                TensorMetadata(LABEL, "BYTES", [-1]),
                TensorMetadata(CONFIDENCE, "FP32", [-1]),
                TensorMetadata(FALLBACK, "BOOL", [-1]),
            ],
        )

    async def infer(
        self, request: InferRequest, client: str | None, request_id: str | None
    ) -> InferResponse:
        """Classify the request's texts and build the outputs it asked for."""
        requested: Sequence[RequestedOutput] | None = request.outputs
        if requested:
            check_outputs(requested)
        else:
            requested = EVERY_OUTPUT[request.binary_outputs]
        classifier = self.services().classifier
        texts = classifier.check_texts(request.texts)
        result = await classifier.classify(
            texts,
            model=request.model or None,
            version=parse_version(request.version),
            client=client,
            request_id=request_id,
        )
        return InferResponse(
            model=result.model,
            version=str(result.version),
            id=request.id,
            request_id=result.request_id,
            outputs=[_output(result, out) for out in requested],
        )


def _output(result: Classification, out: RequestedOutput) -> OutputTensor:
    """One requested output of a classification."""
    probs = result.probabilities
    assert probs is not None
    preds = result.predictions
    n = len(preds)
    data: np.ndarray[Any, Any] | list[str]
    shape = [n]
    if out.name == PROBABILITIES and out.classification:
        return _top_k(probs, result.labels, out)
    if out.name == PROBABILITIES:
        data, shape = probs, list(probs.shape)
    elif out.name == LABEL:
        data = [p.label for p in preds]
    elif out.name == CONFIDENCE:
        data = np.array([p.confidence for p in preds], np.float32)
    else:
        data = np.array([p.fallback for p in preds], np.bool_)
    datatype = DATATYPES[out.name]
    return OutputTensor(name=out.name, datatype=datatype, shape=shape, data=data, binary=out.binary)


def _top_k(
    probs: np.ndarray[Any, Any], labels: Sequence[str], out: RequestedOutput
) -> OutputTensor:
    """The classification extension: "score:index:label" for the k most probable labels."""
    k = min(out.classification, probs.shape[1])
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    rows = [f"{probs[i, j]:f}:{j}:{labels[j]}" for i in range(probs.shape[0]) for j in order[i]]
    shape = [probs.shape[0], k]
    return OutputTensor(name=out.name, datatype="BYTES", shape=shape, data=rows, binary=out.binary)
