"""The generated reference pages cover the code: every setting with its real default, every
CLI command, every route of the OpenAPI schema."""

from __future__ import annotations

import importlib.util
import json
import re
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pydantic import SecretStr

from app.config import Settings
from tests.docs.snippets import DOCS


@cache
def hook() -> ModuleType:
    """docs/hooks/reference.py, the MkDocs hook that writes the reference pages."""
    spec = importlib.util.spec_from_file_location(
        "docs_reference_hook", DOCS / "hooks/reference.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def configuration_rows() -> dict[str, tuple[str, str, str]]:
    """{TEXTCLS_NAME: (type, default, meaning)} from the rendered configuration table."""
    page = hook().configuration_page()
    rows = re.findall(
        r'^\| <a id="textcls_\w+"></a>`(TEXTCLS_\w+)` \| (.*?) \| (.*?) \| (.*) \|$',
        page,
        flags=re.M,
    )
    return {name: (kind, default, meaning) for name, kind, default, meaning in rows}


def test_every_setting_is_in_the_configuration_reference_and_nothing_else() -> None:
    documented = set(configuration_rows())
    settings = {f"TEXTCLS_{name.upper()}" for name in Settings.model_fields}
    assert documented == settings


def default_of(name: str) -> Any:
    field = Settings.model_fields[name]
    value = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def stated(cell: str) -> Any:
    """What a default cell (``(unset)``, ``(empty)`` or a code span) says, as a value."""
    if cell == "(unset)":
        return None
    if cell == "(empty)":
        return ""
    code = re.fullmatch(r"`(.*)`", cell)
    assert code, cell
    return code.group(1)


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_each_setting_shows_its_real_default_and_a_meaning(name: str) -> None:
    kind, cell, meaning = configuration_rows()[f"TEXTCLS_{name.upper()}"]
    default, text = default_of(name), stated(cell)
    if default is None or default == "":
        assert text == default
    elif isinstance(default, bool):
        assert text == str(default).lower()
    elif isinstance(default, int | float):
        assert float(text) == default
    elif isinstance(default, Path):
        assert Path(text) == default
    elif isinstance(default, dict):
        assert json.loads(text) == default
    else:
        assert text == str(default)
    assert kind and meaning, f"TEXTCLS_{name.upper()} has no type or no meaning"


def test_secrets_are_marked() -> None:
    for name in ("API_KEYS", "ADMIN_API_KEY", "METRICS_API_KEY", "DATABASE_URL"):
        assert "*Secret.*" in configuration_rows()[f"TEXTCLS_{name}"][2], name
    assert "*Secret.*" not in configuration_rows()["TEXTCLS_MAX_BATCH_SIZE"][2]


def test_every_cli_command_is_in_the_cli_reference() -> None:
    page = hook().cli_page()
    paths = [path for path, _ in hook().cli_commands()]
    # The groups and commands the CLI is known to have, at least.
    for expected in (
        "textcls train",
        "textcls serve",
        "textcls models label",
        "textcls db upgrade",
    ):
        assert expected in paths
    for path in paths:
        assert f"`{path}`" in page, f"{path} missing from the CLI reference"
    # Every option of every command is listed.
    for path, command in hook().cli_commands():
        for param in command.params:
            if param.param_type_name == "option" and not param.hidden:
                assert f"`{param.opts[0]}" in page, f"{path} {param.opts[0]}"


def test_every_route_is_in_the_http_api_reference() -> None:
    schema = hook().openapi_schema()
    page = hook().http_api_page(schema)
    operations = [
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if method in {"get", "put", "post", "delete", "patch"}
    ]
    assert ("POST", "/classify") in operations and ("POST", "/explain") in operations
    for method, path in operations:
        assert f"### `{method} {path}`" in page, f"{method} {path}"
    for name in schema["components"]["schemas"]:
        assert f"### {name} {{ #schema-" in page, name
