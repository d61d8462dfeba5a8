"""Admin route of the prediction log: erase rows on request (the admin key).

The same as ``textcls logs erase``: one selector (request id, client, or a text the rows
hold), their feedback with them, an audit row; ``dry_run`` counts without erasing.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, model_validator
from sqlalchemy.exc import OperationalError

from app.edge.admin_auth import authenticate_admin
from app.edge.deps import ServicesDep
from app.errors import LogStoreUnavailable, PredictionLogOff
from app.predlog.erasure import Selector, erase

router = APIRouter(prefix="/admin/logs", tags=["admin"], dependencies=[Depends(authenticate_admin)])

ERRORS: dict[int | str, dict[str, str]] = {
    401: {"description": "No admin key, or a wrong one."},
    403: {"description": "A client's key, or the admin routes are off (no admin key set)."},
    422: {"description": "Not exactly one of request_id, client, text_contains."},
    503: {"description": "The prediction log is off or its database is unavailable."},
}


class EraseBody(BaseModel):
    """Exactly one of ``request_id``, ``client``, ``text_contains`` (case-sensitive)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"client": "chat-eu", "dry_run": True}]},
    )

    request_id: StrictStr | None = Field(None, min_length=1, max_length=64)
    client: StrictStr | None = Field(None, min_length=1, max_length=128)
    text_contains: StrictStr | None = Field(None, min_length=1, max_length=5000)
    dry_run: StrictBool = False

    @model_validator(mode="after")
    def _one_selector(self) -> EraseBody:
        if sum(v is not None for v in (self.request_id, self.client, self.text_contains)) != 1:
            raise ValueError("give exactly one of request_id, client, text_contains")
        return self

    def selector(self) -> Selector:
        if self.request_id is not None:
            return Selector("request_id", self.request_id)
        if self.client is not None:
            return Selector("client", self.client)
        assert self.text_contains is not None
        return Selector("text_contains", self.text_contains)


class EraseResponse(BaseModel):
    rows: int = Field(description="Prediction rows erased (or, on a dry run, matching).")
    feedback: int = Field(description="Feedback rows erased with them.")
    dry_run: bool
    selector: str = Field(description="What was asked, as the audit records it.")


@router.post("/erase", response_model=EraseResponse, responses=ERRORS)
def post_erase(body: EraseBody, services: ServicesDep) -> EraseResponse:
    """Erase the log rows of a request, a client or a text, and their feedback (audited)."""
    writer = services.log_writer
    if writer is None or writer.engine is None:
        raise PredictionLogOff("erasure needs the prediction log; TEXTCLS_LOG_PREDICTIONS is false")
    selector = body.selector()
    # Rows still in the writer's queue would land after the erasure.
    writer.flush(5.0)
    try:
        erased = erase(writer.engine, selector, dry_run=body.dry_run, source="admin api")
    except OperationalError as exc:
        raise LogStoreUnavailable(
            "the prediction log database is unavailable; nothing was erased, try again later"
        ) from exc
    return EraseResponse(
        rows=erased.rows,
        feedback=erased.feedback,
        dry_run=erased.dry_run,
        selector=selector.describe(),
    )
