"""GET /metrics: Prometheus text format, or OpenMetrics when the scraper asks for it."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.edge.deps import MetricsDep

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response)
async def metrics(request: Request, metrics: MetricsDep) -> Response:
    """Every textcls_ family and the process collector (summed over workers)."""
    body, content_type = metrics.render(request.headers.get("accept"))
    return Response(body, media_type=content_type)
