"""The Dockerfile and .dockerignore: entrypoint, user, health check, settings and build context."""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib

from tests.deploy.conftest import REPO, textcls_help

DOCKERFILE = (REPO / "Dockerfile").read_text()


def instructions(name: str) -> list[str]:
    """The arguments of every ``name`` instruction, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return re.findall(rf"^{name}\s+(.+?)\s*$", joined, flags=re.M)


def exec_form(name: str) -> list[str]:
    found = instructions(name)
    assert found, f"no {name} in the Dockerfile"
    value = json.loads(found[-1])
    assert isinstance(value, list), f"{name} must use the exec form (JSON array)"
    return value


def test_entrypoint_is_the_packages_console_script() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert exec_form("ENTRYPOINT") == ["textcls"]
    assert "textcls" in scripts


def test_cmd_is_textcls_serve_with_options_it_has() -> None:
    cmd = exec_form("CMD")
    assert cmd[0] == "serve"
    help_text = textcls_help("serve")
    for option in (a for a in cmd if a.startswith("--")):
        assert re.search(rf"{re.escape(option)}\b", help_text), f"serve has no {option}"
    # Inside a container the service must listen on every interface.
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"


def test_runs_as_a_numeric_non_root_user() -> None:
    user = instructions("USER")[-1]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"USER {user}: Kubernetes runAsNonRoot needs a uid"


def test_healthcheck_probes_healthz_on_the_served_port() -> None:
    (healthcheck,) = instructions("HEALTHCHECK")
    cmd = exec_form("CMD")
    port = cmd[cmd.index("--port") + 1]
    assert f"127.0.0.1:{port}/healthz" in healthcheck
    assert "curl" not in healthcheck and "wget" not in healthcheck, "the slim image has neither"
    assert f"EXPOSE {port}" in DOCKERFILE


def test_env_settings_exist_and_models_live_in_slash_models(settings_env_vars: set[str]) -> None:
    env = " ".join(instructions("ENV"))
    named = set(re.findall(r"\b(TEXTCLS_\w+)=", env))
    assert named <= settings_env_vars, f"unknown settings: {named - settings_env_vars}"
    assert "TEXTCLS_MODEL_DIR=/models" in env


def test_gpu_variant_installs_the_gpu_extra_and_both_the_encoder() -> None:
    """The image serves what `make run` trains: `auto` picks the encoder on small files, and its
    models need tensorflow-text to load."""
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(dep.startswith("tensorflow[and-cuda]") for dep in extras["gpu"])
    assert any(dep.startswith("tensorflow-text") for dep in extras["encoder"])
    assert 'cpu) extra="[encoder,fleet]"' in DOCKERFILE
    assert 'gpu) extra="[gpu,encoder,fleet]"' in DOCKERFILE
    # Several replicas: Redis limits, OTLP traces, object storage.
    assert any(dep.startswith("redis") for dep in extras["fleet"])
    assert "ARG VARIANT=cpu" in DOCKERFILE


def test_multi_stage_runtime_copies_the_venv_from_the_builder() -> None:
    stages = instructions("FROM")
    assert len(stages) >= 2 and stages[0].endswith("AS builder")
    assert "COPY --from=builder /opt/venv /opt/venv" in DOCKERFILE


def dockerignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_dockerignore_keeps_local_state_out_of_the_context() -> None:
    patterns = dockerignore_patterns()
    for local in (".venv", ".git", "models/example", "textcls.db", "textcls.spill.jsonl"):
        assert any(fnmatch.fnmatch(local, p) for p in patterns), f"{local} is sent to docker"


def test_dockerignore_keeps_what_the_build_copies() -> None:
    patterns = dockerignore_patterns()
    sources = [
        src
        for args in instructions("COPY")
        if not args.startswith("--from")
        for src in args.split()[:-1]
    ]
    assert {"pyproject.toml", "README.md", "app", "training"} <= set(sources)
    for src in sources:
        assert (REPO / src).exists(), f"COPY {src}: no such file"
        assert not any(fnmatch.fnmatch(src, p) for p in patterns), f".dockerignore drops {src}"
