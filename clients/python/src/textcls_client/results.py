"""Typed results: what /classify, /feedback and /models answer, as frozen dataclasses."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload


@dataclass(frozen=True, slots=True)
class RankedLabel:
    label: str
    confidence: float


@dataclass(frozen=True, slots=True)
class Prediction:
    """One text's answer, with what identifies it in the prediction log (request_id, index)."""

    label: str
    confidence: float
    fallback: bool  # hand the text to a person: low or ambiguous confidence
    ranking: tuple[RankedLabel, ...]
    request_id: str
    index: int
    model: str
    version: int


@dataclass(frozen=True, slots=True)
class Classification(Sequence[Prediction]):
    """The answer to a list of texts: its predictions in input order (also iterable itself)."""

    request_id: str
    model: str
    version: int
    predictions: tuple[Prediction, ...]

    @overload
    def __getitem__(self, index: int) -> Prediction: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Prediction]: ...
    def __getitem__(self, index: int | slice) -> Prediction | Sequence[Prediction]:
        return self.predictions[index]

    def __len__(self) -> int:
        return len(self.predictions)

    def __iter__(self) -> Iterator[Prediction]:
        return iter(self.predictions)


@dataclass(frozen=True, slots=True)
class Feedback:
    """A stored correction; ``correct`` tells whether the model had it right."""

    id: int
    request_id: str
    index: int
    label: str
    predicted_label: str
    correct: bool
    model: str
    version: int
    created_at: str
    source: str


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One model as /models describes it; ``raw`` holds every field the server sent."""

    name: str
    ready: bool
    version: int | None
    versions_on_disk: tuple[int, ...]
    classes: tuple[str, ...]  # the output classes, in the model's order
    version_labels: dict[str, int]  # version labels (stable, canary, ...) -> version
    threshold: float | None
    device: str
    raw: dict[str, Any] = field(repr=False, compare=False)


def parse_classification(body: dict[str, Any]) -> Classification:
    request_id, model, version = body["request_id"], body["model"], body["version"]
    predictions = tuple(
        Prediction(
            label=p["label"],
            confidence=p["confidence"],
            fallback=p["fallback"],
            ranking=tuple(RankedLabel(r["label"], r["confidence"]) for r in p["ranking"]),
            request_id=request_id,
            index=i,
            model=model,
            version=version,
        )
        for i, p in enumerate(body["predictions"])
    )
    return Classification(request_id, model, version, predictions)


def parse_feedback(body: dict[str, Any]) -> Feedback:
    return Feedback(
        id=body["id"],
        request_id=body["request_id"],
        index=body["index"],
        label=body["label"],
        predicted_label=body["predicted_label"],
        correct=body["correct"],
        model=body["model"],
        version=body["version"],
        created_at=body["created_at"],
        source=body["source"],
    )


def parse_model(body: dict[str, Any]) -> ModelInfo:
    return ModelInfo(
        name=body["name"],
        ready=body["ready"],
        version=body.get("version"),
        versions_on_disk=tuple(body.get("versions_on_disk") or ()),
        classes=tuple(body.get("classes") or ()),
        version_labels=dict(body.get("labels") or {}),
        threshold=body.get("threshold"),
        device=body.get("device", ""),
        raw=body,
    )
