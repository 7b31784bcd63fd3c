"""The objects one app instance serves with, built once by `create_app`."""

from __future__ import annotations

from dataclasses import dataclass

from serving.exposures import ExposureBuffer
from serving.live import LiveState
from serving.metrics import Metrics
from serving.repository import PicksRepository
from serving.security import Guard
from serving.settings import Settings


@dataclass(frozen=True)
class Services:
    """Settings, metrics, live state, repository, exposure buffer and key guard of one app."""

    settings: Settings
    metrics: Metrics
    live: LiveState
    repo: PicksRepository
    exposures: ExposureBuffer
    guard: Guard

    @classmethod
    def build(cls, settings: Settings) -> Services:
        """Wire the services (no I/O: Redis is opened by the app's lifespan)."""
        metrics = Metrics()
        live = LiveState(settings, metrics)
        exposures = ExposureBuffer(settings, metrics)
        repo = PicksRepository(settings, live, metrics, exposures)
        return cls(settings, metrics, live, repo, exposures, Guard(settings, live, metrics))
