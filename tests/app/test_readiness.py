"""/readyz, V2 server-ready and gRPC health wait for every model found at start-up."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.plane.loaded_model import LoadedModel
from tests.app.conftest import make_settings, wait_ready, wait_until
from tests.app.plane.test_repository import _add_second_model


@pytest.fixture
def slow_second_model(
    model_repo_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, threading.Event]:
    """A repository with ``example`` and ``slow``; ``slow`` loads once the event is set."""
    _add_second_model(model_repo_copy, "slow")
    release = threading.Event()
    load = LoadedModel.load

    def held_load(self: LoadedModel, *args: Any, **kwargs: Any) -> None:
        if self.name == "slow":
            assert release.wait(60), "the test never let the slow model load"
        load(self, *args, **kwargs)

    monkeypatch.setattr(LoadedModel, "load", held_load)
    return model_repo_copy, release


def test_not_ready_until_every_model_found_at_start_up_has_loaded(
    slow_second_model: tuple[Path, threading.Event],
) -> None:
    model_dir, release = slow_second_model
    with TestClient(create_app(make_settings(model_dir))) as c:
        models = lambda: {m["name"]: m["state"] for m in c.get("/models").json()["models"]}  # noqa: E731
        wait_until(lambda: models() == {"example": "ready", "slow": "loading"})
        r = c.get("/readyz")
        assert r.status_code == 503
        body = r.json()
        assert body["ready"] is False
        assert body["model_states"] == {"example": "ready", "slow": "loading"}
        assert "slow not loaded yet" in body["reason"]
        assert c.get("/v2/health/ready").status_code == 400
        release.set()
        body = wait_ready(c)
        assert body["model_states"] == {"example": "ready", "slow": "ready"}
        assert body["models"] == {"example": 1, "slow": 1}
        assert c.get("/v2/health/ready").status_code == 200


def test_a_model_added_later_loads_while_the_service_stays_ready(
    tiny_model_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    model_dir = tmp_path / "models"
    shutil.copytree(tiny_model_repo, model_dir)
    release = threading.Event()
    load = LoadedModel.load

    def held_load(self: LoadedModel, *args: Any, **kwargs: Any) -> None:
        if self.name == "later":
            assert release.wait(60)
        load(self, *args, **kwargs)

    monkeypatch.setattr(LoadedModel, "load", held_load)
    with TestClient(create_app(make_settings(model_dir, poll_interval_s=0.1))) as c:
        wait_ready(c)
        _add_second_model(model_dir, "later")
        states = lambda: {m["name"]: m["state"] for m in c.get("/models").json()["models"]}  # noqa: E731
        wait_until(lambda: states().get("later") == "loading")
        r = c.get("/readyz")
        assert r.status_code == 200
        assert r.json()["model_states"] == {"example": "ready", "later": "loading"}
        release.set()
        wait_until(lambda: states() == {"example": "ready", "later": "ready"})


def test_grpc_health_check_answers_the_readiness_of_the_moment(
    slow_second_model: tuple[Path, threading.Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Check reads readiness when it is called: with the background poll stopped (an hour
    apart), only the call itself can turn NOT_SERVING into SERVING once the models load."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from app.edge.grpc import health as grpc_health
    from tests.live_server import free_port

    monkeypatch.setattr(grpc_health, "HEALTH_POLL_S", 3600.0)
    model_dir, release = slow_second_model
    port = free_port()
    with (
        TestClient(create_app(make_settings(model_dir, grpc_port=port))) as c,
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        health = health_pb2_grpc.HealthStub(channel)

        def status(service: str) -> int:
            return health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status

        services = ("", grpc_health.SERVICE)
        assert {status(s) for s in services} == {health_pb2.HealthCheckResponse.NOT_SERVING}
        release.set()
        wait_ready(c)
        assert {status(s) for s in services} == {health_pb2.HealthCheckResponse.SERVING}
