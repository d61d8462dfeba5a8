"""The objects one app instance runs with, created in its lifespan and shared by the routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.config import Settings
from app.metrics import Metrics
from app.plane.classifier import Classifier
from app.plane.device import Device
from app.plane.repository import ModelRepository

if TYPE_CHECKING:
    from app.plane.explainer import Explainer
    from app.plane.store.mirror import StoreMirror
    from app.predlog.writer import PredictionLogWriter


@dataclass(kw_only=True)
class Services:
    settings: Settings
    metrics: Metrics
    device: Device
    repository: ModelRepository
    classifier: Classifier
    log_writer: PredictionLogWriter | None = None
    explainer: Explainer | None = None
    mirror: StoreMirror | None = None  # the object store's mirror, when the models are in one
