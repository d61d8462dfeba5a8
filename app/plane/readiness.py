"""What /readyz says beyond ready or not: why not, and which parts run degraded.

The service is ready once every model found at start-up has loaded or failed for good and one
serves (ModelRepository.ready): a replica never takes traffic for a model it is still loading.
A model published later loads while the service stays ready; /models shows it ``loading``.

A missing or empty model directory is not a start-up error: the repository keeps polling,
so a model published (or storage mounted) later makes the service ready without a restart.
Until then /readyz answers 503 with the reason. A prediction log database that cannot be
reached does not make the service unready, since it still classifies and the writer keeps
the rows (and spills them to a file) until the database is back; /readyz stays 200 and lists
``logging`` under ``degraded``.
"""

from __future__ import annotations

from typing import Any

from app.plane.services import Services


def not_ready_reason(services: Services) -> str | None:
    """Why no model answers yet, or None when one does."""
    repo = services.repository
    if repo.ready:
        return None
    model_dir = services.settings.model_dir
    if not repo.started:
        loading = sorted(n for n, e in repo.entries.items() if e.status == "loading")
        if loading:
            return f"loading models from {model_dir}: {', '.join(loading)} not loaded yet"
        return f"loading models from {model_dir}"
    if not model_dir.is_dir():
        return f"model directory {model_dir} does not exist"
    if not repo.entries:
        return f"no model versions under {model_dir}"
    failures = [
        f"{entry.name} version {f.version}: {f.error}"
        for entry in repo.entries.values()
        for f in entry.failures.values()
    ]
    if failures:
        return "no model version loads: " + "; ".join(failures)
    return "loading models"


def logging_status(services: Services) -> str:
    """``ok``, ``off``, or the log writer's description of what is wrong."""
    writer = services.log_writer
    if writer is None:
        return "off"
    return "ok" if writer.healthy else str(writer.status)


def readiness_details(services: Services) -> dict[str, Any]:
    """The ``reason``, ``logging`` and ``degraded`` fields of /readyz."""
    logging = logging_status(services)
    return {
        "reason": not_ready_reason(services),
        "logging": logging,
        "degraded": [] if logging in ("ok", "off") else ["logging"],
    }
