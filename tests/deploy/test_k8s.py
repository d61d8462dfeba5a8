"""deploy/k8s: the objects reference each other, the image and the settings consistently."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import DEPLOY, REPO, load_yaml_documents, textcls_help

K8S = DEPLOY / "k8s"
BASE = K8S / "base"
GPU = K8S / "gpu"


def objects_in(folder: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """{(kind, name): object} for every manifest in ``folder`` (kustomizations left out)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(folder.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in load_yaml_documents(path):
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in found, f"{key} defined twice in {folder}"
            found[key] = doc
    return found


@pytest.fixture(scope="module")
def base() -> dict[tuple[str, str], dict[str, Any]]:
    return objects_in(BASE)


@pytest.fixture(scope="module")
def gpu() -> dict[tuple[str, str], dict[str, Any]]:
    return objects_in(GPU)


def kustomization(folder: Path) -> dict[str, Any]:
    (doc,) = load_yaml_documents(folder / "kustomization.yaml")
    return doc


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    (c,) = [c for c in containers if c["name"] == "textcls"]
    return c


def dockerfile_uid() -> int:
    users = re.findall(r"^USER\s+(\d+)", (REPO / "Dockerfile").read_text(), flags=re.M)
    return int(users[-1])


def test_kustomizations_list_files_that_exist() -> None:
    for folder in (BASE, GPU):
        k = kustomization(folder)
        for entry in k.get("resources", []):
            assert (folder / entry).exists(), f"{folder.name}: no {entry}"
        for patch in k.get("patches", []):
            assert (folder / patch["path"]).is_file(), f"{folder.name}: no {patch['path']}"
    listed = set(kustomization(BASE)["resources"])
    on_disk = {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk, "every base manifest is applied by `kubectl apply -k`"


def test_every_textcls_variable_is_a_setting(
    base: dict[tuple[str, str], dict[str, Any]],
    gpu: dict[tuple[str, str], dict[str, Any]],
    settings_env_vars: set[str],
) -> None:
    jobs = objects_in(K8S / "jobs")
    for key, obj in {**base, **gpu, **jobs}.items():
        names = set(obj.get("data", {})) | set(obj.get("stringData", {}))
        if obj["kind"] in ("Deployment", "Job"):
            for c in obj["spec"]["template"]["spec"]["containers"]:
                names |= {e["name"] for e in c.get("env", [])}
        unknown = {n for n in names if n.startswith("TEXTCLS_")} - settings_env_vars
        assert not unknown, f"{key}: {sorted(unknown)} are not settings (app/config.py)"


def test_secrets_are_in_the_secret_not_the_configmap(
    base: dict[tuple[str, str], dict[str, Any]],
) -> None:
    config = base[("ConfigMap", "textcls-config")]["data"]
    secret = base[("Secret", "textcls-secrets")]["stringData"]
    assert {"TEXTCLS_DATABASE_URL", "TEXTCLS_API_KEYS"} <= set(secret)
    assert not {"TEXTCLS_DATABASE_URL", "TEXTCLS_API_KEYS", "TEXTCLS_METRICS_API_KEY"} & set(config)
    assert secret["TEXTCLS_DATABASE_URL"].startswith("postgresql+psycopg://")


def test_deployment_probes_ports_and_env(base: dict[tuple[str, str], dict[str, Any]]) -> None:
    deployment = base[("Deployment", "textcls")]
    c = container(deployment)
    assert c["args"][0] == "serve"
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    port = int(c["args"][c["args"].index("--port") + 1])
    assert ports["http"] == port
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"]["port"] in ("http", port)
    for ref in c["envFrom"]:
        if "configMapRef" in ref:
            key = ("ConfigMap", ref["configMapRef"]["name"])
        else:
            key = ("Secret", ref["secretRef"]["name"])
        assert key in base, f"envFrom names {key}, which no manifest defines"
    assert c["resources"]["requests"] and c["resources"]["limits"]


def test_pods_run_as_the_images_non_root_user(base: dict[tuple[str, str], dict[str, Any]]) -> None:
    jobs = objects_in(K8S / "jobs")
    for obj in (base[("Deployment", "textcls")], jobs[("Job", "textcls-migrate")]):
        pod = obj["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == dockerfile_uid()
        for c in pod["containers"]:
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
            assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_writable_paths_are_volumes(base: dict[tuple[str, str], dict[str, Any]]) -> None:
    """The root filesystem is read-only: the spill file and /tmp must be mounted volumes."""
    deployment = base[("Deployment", "textcls")]
    mounts = {m["mountPath"]: m for m in container(deployment)["volumeMounts"]}
    spill = Path(base[("ConfigMap", "textcls-config")]["data"]["TEXTCLS_LOG_SPILL_PATH"])
    assert str(spill.parent) in mounts and not mounts[str(spill.parent)].get("readOnly")
    assert "/tmp" in mounts


def test_models_come_from_the_shared_claim_read_only(
    base: dict[tuple[str, str], dict[str, Any]],
) -> None:
    deployment = base[("Deployment", "textcls")]
    model_dir = base[("ConfigMap", "textcls-config")]["data"]["TEXTCLS_MODEL_DIR"]
    (mount,) = [m for m in container(deployment)["volumeMounts"] if m["mountPath"] == model_dir]
    assert mount["readOnly"] is True
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    claim = volumes[mount["name"]]["persistentVolumeClaim"]["claimName"]
    pvc = base[("PersistentVolumeClaim", claim)]
    assert set(pvc["spec"]["accessModes"]) & {"ReadWriteMany", "ReadOnlyMany"}, "shared by pods"


def test_service_hpa_and_pdb_select_the_deployment(
    base: dict[tuple[str, str], dict[str, Any]],
) -> None:
    deployment = base[("Deployment", "textcls")]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    service = base[("Service", "textcls")]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    port_names = {p["name"] for p in container(deployment)["ports"]}
    assert all(p["targetPort"] in port_names for p in service["spec"]["ports"])
    pdb = base[("PodDisruptionBudget", "textcls")]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    hpa = base[("HorizontalPodAutoscaler", "textcls")]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "textcls",
    }
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


def test_termination_grace_outlasts_the_drain(base: dict[tuple[str, str], dict[str, Any]]) -> None:
    pod = base[("Deployment", "textcls")]["spec"]["template"]["spec"]
    drain = float(base[("ConfigMap", "textcls-config")]["data"]["TEXTCLS_SHUTDOWN_GRACE_S"])
    pre_stop = container(base[("Deployment", "textcls")])["lifecycle"]["preStop"]["sleep"]
    assert pod["terminationGracePeriodSeconds"] > drain + pre_stop["seconds"]


def test_gpu_overlay_requests_a_gpu_and_runs_inference_on_it(
    gpu: dict[tuple[str, str], dict[str, Any]],
    base: dict[tuple[str, str], dict[str, Any]],
) -> None:
    assert set(gpu) <= set(base), "the GPU overlay patches base objects, adds none"
    resources = container(gpu[("Deployment", "textcls")])["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == resources["requests"]["nvidia.com/gpu"] == "1"
    assert gpu[("ConfigMap", "textcls-config")]["data"]["TEXTCLS_DEVICE"] == "gpu"
    (image,) = kustomization(GPU)["images"]
    assert image["newTag"].endswith("-gpu")


def test_migrate_job_runs_a_real_command() -> None:
    job = objects_in(K8S / "jobs")[("Job", "textcls-migrate")]
    (c,) = job["spec"]["template"]["spec"]["containers"]
    textcls_help(*c["args"])
    assert c["args"] == ["db", "upgrade"]


def test_fleet_overlay_serves_from_the_store_it_deploys() -> None:
    """The replicas read s3://BUCKET from the MinIO Service the overlay runs, the Job creates
    that bucket, the credentials come from one Secret, and the shared models claim is gone."""
    fleet = objects_in(K8S / "fleet")
    config = fleet[("ConfigMap", "textcls-config")]["data"]
    bucket = config["TEXTCLS_MODEL_DIR"].removeprefix("s3://").split("/")[0]
    assert config["TEXTCLS_MODEL_DIR"].startswith("s3://") and bucket
    endpoint = re.fullmatch(r"http://([\w-]+):(\d+)", config["AWS_ENDPOINT_URL"])
    assert endpoint, config["AWS_ENDPOINT_URL"]
    service = fleet[("Service", endpoint.group(1))]
    assert int(endpoint.group(2)) in [p["port"] for p in service["spec"]["ports"]]
    (mc,) = fleet[("Job", "textcls-models-bucket")]["spec"]["template"]["spec"]["containers"]
    assert f"mc mb --ignore-existing store/{bucket}" in " ".join(mc["args"])
    secret = fleet[("Secret", "textcls-store")]["stringData"]
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(secret)
    textcls = container(fleet[("Deployment", "textcls")])
    refs = [e["secretRef"]["name"] for e in textcls["envFrom"] if "secretRef" in e]
    assert "textcls-store" in refs
    mounts = {m["mountPath"] for m in textcls["volumeMounts"]}
    assert config["TEXTCLS_CACHE_DIR"] in mounts
    patches = " ".join(p.get("patch", "") for p in kustomization(K8S / "fleet")["patches"])
    assert "name: textcls-models\n$patch: delete" in patches
