"""The gRPC port (Open Inference Protocol V2) is on and reachable in the image, compose and k8s."""

from __future__ import annotations

import re

from tests.deploy.conftest import DEPLOY, REPO, load_yaml_documents
from tests.deploy.test_compose import textcls_env
from tests.deploy.test_k8s import BASE, container, objects_in

GRPC_PORT = 8001


def test_image_serves_grpc_on_8001_and_exposes_it() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(rf"^\s*TEXTCLS_GRPC_PORT={GRPC_PORT}\b", dockerfile, flags=re.M)
    (exposed,) = re.findall(r"^EXPOSE\s+(.+)$", dockerfile, flags=re.M)
    assert str(GRPC_PORT) in exposed.split()
    # `textcls serve --host 0.0.0.0` binds gRPC on the same address as HTTP.
    assert '"--host", "0.0.0.0"' in dockerfile


def test_compose_publishes_the_grpc_port() -> None:
    (compose,) = load_yaml_documents(DEPLOY / "docker-compose.yml")
    service = compose["services"]["textcls"]
    assert textcls_env(service)["TEXTCLS_GRPC_PORT"] == str(GRPC_PORT)
    published = [p.rsplit(":", 1)[1] for p in service["ports"]]
    assert str(GRPC_PORT) in published


def test_k8s_declares_the_grpc_port_and_services_target_it() -> None:
    base = objects_in(BASE)
    assert base[("ConfigMap", "textcls-config")]["data"]["TEXTCLS_GRPC_PORT"] == str(GRPC_PORT)
    ports = {
        p["name"]: p["containerPort"] for p in container(base[("Deployment", "textcls")])["ports"]
    }
    assert ports["grpc"] == GRPC_PORT
    for name in ("textcls", "textcls-grpc"):
        service = base[("Service", name)]
        (grpc,) = [p for p in service["spec"]["ports"] if p["name"] == "grpc"]
        assert grpc["targetPort"] == "grpc" and grpc["appProtocol"] == "kubernetes.io/h2c"
    # Headless, so a round_robin channel sees every replica.
    assert base[("Service", "textcls-grpc")]["spec"]["clusterIP"] == "None"
