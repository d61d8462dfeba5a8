"""deploy/docker-compose*.yml, Prometheus and Grafana provisioning: the pieces fit together."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.deploy.conftest import DEPLOY, load_yaml_documents, textcls_help

COMPOSE_FILE = DEPLOY / "docker-compose.yml"
GPU_OVERRIDE = DEPLOY / "docker-compose.gpu.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    (doc,) = load_yaml_documents(COMPOSE_FILE)
    return doc


def textcls_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "write environment as a mapping"
    return {k: str(v) for k, v in env.items() if k.startswith("TEXTCLS_")}


def parse_volume(volume: str) -> tuple[str, str, str]:
    """``SOURCE:TARGET[:MODE]`` -> (source, target, mode); SOURCE may be ``${VAR:-default}``."""
    source = ""
    if volume.startswith("${"):
        end = volume.index("}") + 1
        source, volume = volume[:end], volume[end:].removeprefix(":")
    else:
        source, _, volume = volume.partition(":")
    target, _, mode = volume.partition(":")
    return source, target, mode or "rw"


def bind_mounts(service: dict[str, Any]) -> dict[str, str]:
    """{target: source} of the service's bind mounts (sources that are paths)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, _ = parse_volume(volume)
        if source.startswith((".", "/", "$")):
            mounts[target] = source
    return mounts


def test_every_textcls_variable_is_a_setting(
    compose: dict[str, Any], settings_env_vars: set[str]
) -> None:
    (override,) = load_yaml_documents(GPU_OVERRIDE)
    for doc in (compose, override):
        for name, service in doc["services"].items():
            unknown = set(textcls_env(service)) - settings_env_vars
            assert not unknown, f"{name}: {sorted(unknown)} are not settings (app/config.py)"


def test_service_logs_to_the_compose_postgres_once_it_is_healthy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    postgres = services["postgres"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    for name in ("textcls", "migrate"):
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
        url = urlsplit(textcls_env(services[name])["TEXTCLS_DATABASE_URL"])
        assert url.scheme == "postgresql+psycopg"
        assert url.hostname == "postgres"
        assert url.username == postgres["environment"]["POSTGRES_USER"]
        assert url.path == "/" + postgres["environment"]["POSTGRES_DB"]
    migrate = services["textcls"]["depends_on"]["migrate"]
    assert migrate["condition"] == "service_completed_successfully"


def test_migrate_runs_a_real_command(compose: dict[str, Any]) -> None:
    command = compose["services"]["migrate"]["command"]
    assert command == ["db", "upgrade"]
    textcls_help(*command)
    assert compose["services"]["migrate"]["image"] == compose["services"]["textcls"]["image"]


def test_models_are_mounted_read_only_where_the_service_looks(compose: dict[str, Any]) -> None:
    textcls = compose["services"]["textcls"]
    model_dir = textcls_env(textcls)["TEXTCLS_MODEL_DIR"]
    (source,) = [
        source
        for source, target, mode in map(parse_volume, textcls["volumes"])
        if target == model_dir and mode == "ro"
    ]
    default = source.removeprefix("${").removesuffix("}").partition(":-")[2]
    assert (DEPLOY / default).resolve() == (DEPLOY.parent / "models").resolve()


def test_bind_mount_sources_exist(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for target, source in bind_mounts(service).items():
            if source.startswith("$"):
                continue  # a variable with a default, checked above for the models
            assert (DEPLOY / source).exists(), f"{name}: {source} -> {target} does not exist"


def test_prometheus_scrapes_the_service_metrics(compose: dict[str, Any]) -> None:
    services = compose["services"]
    mounts = bind_mounts(services["prometheus"])
    config_path = DEPLOY / mounts["/etc/prometheus/prometheus.yml"]
    (config,) = load_yaml_documents(config_path)
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "textcls"]
    assert job["metrics_path"] == "/metrics"
    (target,) = job["static_configs"][0]["targets"]
    host, port = target.split(":")
    assert host == "textcls"
    published = [p.rsplit(":", 1)[1] for p in services["textcls"]["ports"]]
    assert port in published, "Prometheus must scrape the port the container listens on"


def test_grafana_is_provisioned_with_the_datasource_and_the_dashboard(
    compose: dict[str, Any],
) -> None:
    grafana = compose["services"]["grafana"]
    mounts = bind_mounts(grafana)
    provisioning = DEPLOY / mounts["/etc/grafana/provisioning"]
    (datasources,) = load_yaml_documents(provisioning / "datasources" / "prometheus.yml")
    (datasource,) = datasources["datasources"]
    assert datasource["type"] == "prometheus"
    assert urlsplit(datasource["url"]).hostname == "prometheus"
    assert "prometheus" in compose["services"]

    (providers,) = load_yaml_documents(provisioning / "dashboards" / "textcls.yml")
    (provider,) = providers["providers"]
    dashboards_dir = provider["options"]["path"]
    dashboard_mounts = {
        target: source for target, source in mounts.items() if target.startswith(dashboards_dir)
    }
    assert dashboard_mounts, f"nothing is mounted under {dashboards_dir}"
    for source in dashboard_mounts.values():
        assert Path(source).name == "textcls.json" and (DEPLOY / source).is_file()


def test_gpu_override_builds_the_gpu_image_and_reserves_a_gpu() -> None:
    (override,) = load_yaml_documents(GPU_OVERRIDE)
    textcls = override["services"]["textcls"]
    assert textcls["build"]["args"]["VARIANT"] == "gpu"
    assert textcls["environment"]["TEXTCLS_DEVICE"] == "gpu"
    (device,) = textcls["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert override["services"]["migrate"]["image"] == textcls["image"]


def test_the_fleet_reads_its_models_from_the_compose_store(compose: dict[str, Any]) -> None:
    """The fleet profile's replicas serve s3://BUCKET from the minio service, the bucket and
    the first versions are put there before they start, and no models folder is mounted."""
    services = compose["services"]
    fleet = services["textcls-fleet"]
    env = fleet["environment"]
    url = env["TEXTCLS_MODEL_DIR"]
    bucket = url.removeprefix("s3://").split("/")[0]
    assert url.startswith("s3://") and bucket
    assert urlsplit(env["AWS_ENDPOINT_URL"]).hostname == "minio"
    assert "fleet" in services["minio"]["profiles"]
    assert f"mc mb --ignore-existing store/{bucket}" in " ".join(
        services["models-bucket"]["command"]
    )
    assert f"--to {url}" in " ".join(services["models-publish"]["command"])
    started = fleet["depends_on"]["models-publish"]["condition"]
    assert started == "service_completed_successfully"
    assert not any(target == "/models" for target in bind_mounts(fleet))
    assert env["TEXTCLS_CACHE_DIR"].startswith("/data/")
