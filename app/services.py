"""The objects one app instance runs with, created in its lifespan and shared by the routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.classifier import Classifier
from app.config import Settings
from app.device import Device
from app.metrics import Metrics
from app.repository import ModelRepository

if TYPE_CHECKING:
    from app.log_writer import PredictionLogWriter


@dataclass
class Services:
    settings: Settings
    metrics: Metrics
    device: Device
    repository: ModelRepository
    classifier: Classifier
    log_writer: PredictionLogWriter | None = None
