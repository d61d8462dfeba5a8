"""README's Configuration and Deploy sections: every setting with its real default, and only
paths that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from app.config import Settings
from tests.deploy.conftest import REPO


def readme_section(title: str) -> str:
    readme = (REPO / "README.md").read_text()
    match = re.search(rf"^## {title}\n(.*?)(?=^## |\Z)", readme, flags=re.M | re.S)
    assert match, f"README.md has no '## {title}' section"
    return match.group(1)


def deploy_section() -> str:
    return readme_section("Deploy")


def documented_defaults() -> dict[str, str]:
    """{TEXTCLS_NAME: default cell} from the configuration reference table."""
    rows = re.findall(
        r"^\| `(TEXTCLS_\w+)` \| ([^|]+) \|", readme_section("Configuration"), flags=re.M
    )
    assert rows, "no configuration reference table in the Configuration section"
    return {name: cell.strip() for name, cell in rows}


def default_of(name: str) -> Any:
    field = Settings.model_fields[name]
    value = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def matches(cell: str, default: Any) -> bool:
    """Whether the README's cell (``(unset)``, ``(empty)`` or a code span) states ``default``."""
    if cell == "(unset)":
        return default is None
    if cell == "(empty)":
        return default == ""
    code = re.fullmatch(r"`(.*)`", cell)
    if not code or default is None:
        return False
    text = code.group(1)
    if isinstance(default, bool):
        return text == str(default).lower()
    if isinstance(default, int | float):
        return float(text) == default
    if isinstance(default, Path):
        return Path(text) == default
    if isinstance(default, dict):
        return bool(json.loads(text) == default)
    return bool(text == str(default))


def test_every_setting_is_documented_and_nothing_else() -> None:
    documented = set(documented_defaults())
    settings = {f"TEXTCLS_{name.upper()}" for name in Settings.model_fields}
    assert not settings - documented, f"add to README's reference: {sorted(settings - documented)}"
    assert not documented - settings, f"not settings any more: {sorted(documented - settings)}"


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_documented_default_is_the_real_default(name: str) -> None:
    cell = documented_defaults()[f"TEXTCLS_{name.upper()}"]
    default = default_of(name)
    assert matches(cell, default), f"TEXTCLS_{name.upper()}: README says {cell}, code {default!r}"


def test_deploy_paths_mentioned_exist() -> None:
    paths = set(re.findall(r"\bdeploy/[\w./-]*[\w/]", deploy_section())) - {"deploy/.env"}
    assert paths
    missing = sorted(p for p in paths if not (REPO / p).exists())
    assert not missing, f"the Deploy section names files that do not exist: {missing}"


def test_covers_images_compose_kubernetes_and_tensorflow_serving() -> None:
    section = deploy_section()
    for needle in (
        "--build-arg VARIANT=gpu",
        "docker compose -f deploy/docker-compose.yml",
        "kubectl apply -k deploy/k8s/base",
        "kubectl apply -k deploy/k8s/gpu",
        "tensorflow/serving",
        ":predict",
        "config.pbtxt",
        "### Scaling out",
    ):
        assert needle in section, f"README's Deploy section lacks {needle!r}"
