"""/review/intents: groups of hand-offs that `textcls intents discover` found, and the team's
decision on each (a new label, an existing one, or dismissed), saved as feedback."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from app.edge.deps import ServicesDep
from app.edge.routes.review import ModelQ, _engine, _read
from app.plane.services import Services
from app.predlog.intents import StoredGroup, decide, list_groups, model_of

router = APIRouter(prefix="/review/intents", tags=["review"])

ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No discovered intent with this id."},
    409: {"description": "The intent was decided already."},
    422: {"description": "A label that does not fit the action, or a bad body."},
    503: {"description": "The prediction log is off or its database is unavailable."},
}


class IntentOut(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    id: int
    model: str
    discovered_at: datetime
    space: str = Field(description="The embedding the texts were grouped in.")
    rank: int = Field(description="1 = the biggest group of its discovery.")
    size: int = Field(description="Logged texts in the group.")
    examples: list[str] = Field(description="Its most central texts.")
    terms: list[str] = Field(description="Words that set it apart.")
    nearest_label: str | None
    nearest_similarity: float | None = Field(description="Cosine of the centres, -1 to 1.")
    status: Literal["open", "named", "mapped", "dismissed"]
    label: str | None = Field(description="The label it was named or mapped to.")
    resolved_at: datetime | None


class IntentsResponse(BaseModel):
    intents: list[IntentOut]
    labels: dict[str, list[str]] = Field(
        description="Each listed model's served labels, to map an intent to."
    )


class DecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["name", "map", "dismiss"] = Field(
        description="name: a new label; map: an existing label; dismiss: not an intent."
    )
    label: str | None = Field(None, min_length=1, max_length=255)


class DecisionResponse(BaseModel):
    intent: IntentOut
    feedback_rows: int = Field(description="Feedback rows written, one per logged text.")
    kept: int = Field(description="Texts left as they were (reviewed already, or gone).")


def _out(group: StoredGroup) -> dict[str, Any]:
    return {k: getattr(group, k) for k in IntentOut.model_fields}


def _served_labels(services: Services, model: str) -> list[str] | None:
    entry = services.repository.entries.get(model)
    if entry is None or entry.serving is None:
        return None
    return list(entry.serving.model.labels)


@router.get("", response_model=IntentsResponse, responses=ERRORS)
def get_intents(
    services: ServicesDep,
    *,
    model: ModelQ = None,
    status: Annotated[
        Literal["open", "named", "mapped", "dismissed"] | None,
        Query(description="Only intents in this state (default: all)."),
    ] = None,
) -> dict[str, Any]:
    """Discovered intents, newest discovery first and biggest first within one."""
    engine = _engine(services)
    groups = _read(lambda: list_groups(engine, model, status))
    labels = {m: _served_labels(services, m) or [] for m in sorted({g.model for g in groups})}
    return {"intents": [_out(g) for g in groups], "labels": labels}


@router.post("/{intent_id}", response_model=DecisionResponse, responses=ERRORS)
def post_decision(
    intent_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    body: DecisionRequest,
    services: ServicesDep,
) -> dict[str, Any]:
    """Name the intent (a new label), map it to one of the model's labels, or dismiss it;
    naming or mapping saves the label as feedback for each of its texts not reviewed yet."""
    engine = _engine(services)

    def run() -> Any:
        model = model_of(engine, intent_id)
        known = _served_labels(services, model) if model is not None else None
        return decide(engine, intent_id, action=body.action, label=body.label, known=known)

    decision = _read(run)
    return {
        "intent": _out(decision.group),
        "feedback_rows": decision.feedback_rows,
        "kept": decision.kept,
    }
