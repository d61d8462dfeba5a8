"""MkDocs hook: the reference pages generated from the code at build time.

``reference/configuration.md`` from ``app.config.Settings``, ``reference/cli.md`` from the Typer
app of ``app.cli``, ``reference/http-api.md`` and ``openapi.json`` from the app's OpenAPI
schema. Generated on every build, so they cannot fall behind the code; ``tests/docs`` checks
they cover every setting, command and route.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import types
import typing
from pathlib import Path
from typing import Any

CONFIGURATION_PAGE = "reference/configuration.md"
CLI_PAGE = "reference/cli.md"
HTTP_API_PAGE = "reference/http-api.md"
OPENAPI_FILE = "reference/openapi.json"


# -- configuration ------------------------------------------------------------------------------


def _type_name(annotation: Any) -> str:
    """A reader's name for a settings field's type."""
    from pydantic import SecretStr

    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin in (typing.Union, types.UnionType):
        inner = " or ".join(_type_name(a) for a in args)
        return f"{inner} (optional)"
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{a}`" for a in typing.get_args(annotation))
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is dict:
        return "JSON object"
    if annotation is SecretStr:
        return "string (secret)"
    if annotation is Path:
        return "path"
    names = {bool: "boolean", int: "integer", float: "number", str: "string"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _default_text(field: Any) -> str:
    from pydantic import SecretStr

    value = field.default_factory() if field.default_factory else field.default
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if value is None:
        return "(unset)"
    if value == "":
        return "(empty)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, dict):
        return f"`{json.dumps(value)}`"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    return f"`{value}`"


def _bounds(field: Any) -> str:
    """``>= 1, <= 4096`` from the field's constraints, or ``""``."""
    parts = []
    for item in field.metadata:
        for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            value = getattr(item, attr, None)
            if value is not None:
                parts.append(f"{sign} {value}")
    return ", ".join(parts)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def setting_rows() -> list[dict[str, str]]:
    """One row per ``Settings`` field: variable, type, default, meaning; in the class's order."""
    from pydantic import SecretStr

    from app.config import Settings

    rows = []
    for name, field in Settings.model_fields.items():
        meaning = field.description or ""
        bounds = _bounds(field)
        if bounds:
            meaning += f" Range: {bounds}."
        secret = SecretStr in (field.annotation, *typing.get_args(field.annotation))
        if secret or name == "database_url":
            meaning += " *Secret.*"
        rows.append(
            {
                "variable": f"TEXTCLS_{name.upper()}",
                "type": _type_name(field.annotation),
                "default": _default_text(field),
                "meaning": meaning.strip(),
            }
        )
    return rows


def configuration_page() -> str:
    lines = [
        "# Configuration",
        "",
        "Every setting is an environment variable, or a line `NAME=value` in a `.env` file in",
        "the working directory. The service reads and validates them all at start-up; an invalid",
        "value stops it with a message naming the variable. `textcls serve --model-dir`,",
        "`--host` and the other flags override the matching settings.",
        "",
        "*Secret.* settings belong in a Kubernetes Secret or your secret store, not in a",
        "ConfigMap or an image; the service never logs them. The Docker image sets",
        "`TEXTCLS_MODEL_DIR=/models`, `TEXTCLS_DATABASE_URL=sqlite:////data/textcls.db`,",
        "`TEXTCLS_LOG_SPILL_PATH=/data/textcls.spill.jsonl` and `TEXTCLS_GRPC_PORT=8001`.",
        "",
        "This page is generated from `app/config.py` (`Settings`) when the site is built.",
        "",
        "| Variable | Type | Default | Meaning |",
        "|---|---|---|---|",
    ]
    for row in setting_rows():
        anchor = row["variable"].lower()
        lines.append(
            f'| <a id="{anchor}"></a>`{row["variable"]}` | {_cell(row["type"])} '
            f"| {_cell(row['default'])} | {_cell(row['meaning'])} |"
        )
    return "\n".join(lines) + "\n"


# -- CLI ----------------------------------------------------------------------------------------


def cli_group() -> Any:
    """The ``textcls`` command as a click group, with every command registered as
    ``app.cli.main`` registers them before it runs."""
    import typer

    from app import cli

    if not cli.cli.registered_commands and not cli.cli.registered_groups:
        register = getattr(cli, "_register", None)
        if register is not None:
            register()
    return typer.main.get_command(cli.cli)


def cli_commands() -> list[tuple[str, Any]]:
    """(``textcls sub command``, click command) for every command, depth first, sorted.

    Duck-typed: Typer builds its commands on its own copy of click's classes."""
    found: list[tuple[str, Any]] = []

    def walk(path: str, command: Any) -> None:
        found.append((path, command))
        if _is_group(command):
            for name in sorted(command.commands):
                walk(f"{path} {name}", command.commands[name])

    walk("textcls", cli_group())
    return found


def _is_group(command: Any) -> bool:
    return isinstance(getattr(command, "commands", None), dict)


def _plain(text: str) -> str:
    """Help text without Rich markup and with its paragraphs kept."""
    text = re.sub(r"\[/?(bold|dim|italic|red|green|yellow|blue|cyan|magenta)\]", "", text)
    return text.strip()


def _param_row(param: Any, ctx: Any) -> str | None:
    """``| `--flag <type>` | help [default: x] |`` as ``--help`` shows it; None when hidden."""
    record = param.get_help_record(ctx)
    if record is None:
        return None
    names, help_text = record
    if param.param_type_name == "argument":
        names = f"{names} (argument)"
    return f"| `{_cell(names)}` | {_cell(_plain(help_text))} |"


def cli_page() -> str:
    lines = [
        "# CLI",
        "",
        "`textcls` is the one command for training, serving and operating textcls; it is in",
        "`.venv/bin` after `make run` or `make test`, and the Docker image's entrypoint.",
        "Every command takes `--help`. This page is generated from the Typer app in `app/cli`",
        "when the site is built.",
        "",
    ]
    for path, command in cli_commands():
        ctx = command.context_class(command, info_name=path)
        level = "#" * min(2 + path.count(" ") - 1, 4) if path != "textcls" else "##"
        anchor = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")
        lines += [f"{level} `{path}` {{ #{anchor} }}", ""]
        if command.help:
            lines += [_plain(command.help), ""]
        pieces = command.collect_usage_pieces(ctx)
        lines += ["```text", f"{path} {' '.join(pieces)}".rstrip(), "```", ""]
        params = [p for p in command.get_params(ctx) if p.name != "help"]
        if _is_group(command):
            subs = sorted(command.commands.items())
            if subs:
                lines += ["| Command | What |", "|---|---|"]
                for name, sub in subs:
                    summary = _plain(sub.get_short_help_str(limit=120))
                    lines.append(f"| `{path} {name}` | {_cell(summary)} |")
                lines.append("")
        if params:
            lines += ["| Parameter | Meaning |", "|---|---|"]
            lines += [row for p in params if (row := _param_row(p, ctx)) is not None]
            lines.append("")
    return "\n".join(lines)


# -- HTTP API -----------------------------------------------------------------------------------


def openapi_schema() -> dict[str, Any]:
    """The service's OpenAPI document, as a server with API keys, an admin key and a metrics
    key configured describes itself (every status the routes can answer)."""
    from pydantic import SecretStr

    from app.config import Settings
    from app.main import create_app

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            model_dir=Path(tmp),
            log_predictions=False,
            api_keys=SecretStr("client:docs-key"),
            admin_api_key=SecretStr("docs-admin-key"),
            metrics_api_key=SecretStr("docs-metrics-key"),
            rate_limit_per_s=100,
        )
        return create_app(settings).openapi()


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _anchor(name: str) -> str:
    return "schema-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _schema_type(schema: dict[str, Any]) -> str:
    """A short, linked description of a JSON schema: ``[ClassifyRequest](#...)``, ``string``,
    ``array of number``, ``integer or null``."""
    if "$ref" in schema:
        name = _ref_name(schema["$ref"])
        return f"[{name}](#{_anchor(name)})"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(_schema_type(s) for s in schema[key])
    if "allOf" in schema:
        return " and ".join(_schema_type(s) for s in schema["allOf"])
    kind = schema.get("type")
    if kind == "array":
        return "array of " + _schema_type(schema.get("items", {}))
    if kind == "object" and "additionalProperties" in schema:
        extra = schema["additionalProperties"]
        if isinstance(extra, dict) and extra:
            return "object of " + _schema_type(extra)
    if "enum" in schema:
        return "one of " + ", ".join(f"`{v}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    if isinstance(kind, list):
        return " or ".join(kind)
    return kind or "any"


def _media_schemas(content: dict[str, Any]) -> str:
    parts = []
    for media, body in content.items():
        schema = body.get("schema")
        parts.append(f"{_schema_type(schema) if schema else 'any'} (`{media}`)")
    return "; ".join(parts)


def _what(op: dict[str, Any]) -> str:
    """An operation in one line: its description's first paragraph, else its summary."""
    description = (op.get("description") or "").strip()
    return " ".join(description.split("\n\n")[0].split()) if description else op.get("summary", "")


def _operation_anchor(path: str, method: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", f"{method} {path}".lower()).strip("-")


def _operation(path: str, method: str, op: dict[str, Any]) -> list[str]:
    lines = [f"### `{method.upper()} {path}` {{ #{_operation_anchor(path, method)} }}", ""]
    if op.get("summary"):
        lines += [f"**{op['summary']}**", ""]
    if op.get("description"):
        lines += [op["description"].strip(), ""]
    if op.get("security"):
        schemes = sorted({name for req in op["security"] for name in req})
        lines += ["Authentication: " + ", ".join(f"`{s}`" for s in schemes) + ".", ""]
    params = op.get("parameters", [])
    if params:
        lines += ["| Parameter | In | Type | Required | Meaning |", "|---|---|---|---|---|"]
        for p in params:
            schema = p.get("schema", {})
            lines.append(
                f"| `{p['name']}` | {p['in']} | {_cell(_schema_type(schema))} "
                f"| {'yes' if p.get('required') else 'no'} "
                f"| {_cell(p.get('description') or schema.get('description', ''))} |"
            )
        lines.append("")
    body = op.get("requestBody")
    if body:
        lines += [f"Request body: {_media_schemas(body.get('content', {}))}.", ""]
    responses = op.get("responses", {})
    if responses:
        lines += ["| Status | Meaning | Body |", "|---|---|---|"]
        for status, response in responses.items():
            content = _media_schemas(response.get("content", {}))
            lines.append(
                f"| {status} | {_cell(response.get('description', ''))} | {_cell(content)} |"
            )
        lines.append("")
    return lines


def _schema_section(name: str, schema: dict[str, Any]) -> list[str]:
    lines = [f"### {name} {{ #{_anchor(name)} }}", ""]
    if schema.get("description"):
        lines += [schema["description"].strip(), ""]
    properties = schema.get("properties", {})
    if properties:
        required = set(schema.get("required", []))
        lines += ["| Field | Type | Required | Meaning |", "|---|---|---|---|"]
        for field, prop in properties.items():
            meaning = prop.get("description", "")
            if "default" in prop and prop["default"] is not None:
                meaning += f" Default: `{json.dumps(prop['default'])}`."
            lines.append(
                f"| `{field}` | {_cell(_schema_type(prop))} "
                f"| {'yes' if field in required else 'no'} | {_cell(meaning.strip())} |"
            )
        lines.append("")
    elif schema.get("type") or schema.get("enum") or schema.get("anyOf"):
        lines += [f"Type: {_schema_type(schema)}.", ""]
    return lines


def http_api_page(schema: dict[str, Any]) -> str:
    info = schema.get("info", {})
    lines = [
        "# HTTP API",
        "",
        f"The OpenAPI {schema.get('openapi', '')} document of textcls {info.get('version', '')},",
        "rendered when the site is built from the app itself (`app.main.create_app`), as a",
        "server with client, admin and metrics keys configured describes itself: an open server",
        "(no keys) answers no 401 or 429 and leaves them out of its own `/openapi.json`.",
        "Download the document: [openapi.json](openapi.json). A running server also serves it",
        "at `/openapi.json`, with Swagger UI at `/docs` and ReDoc at `/redoc` (their assets come",
        "from the server, so they work offline). The [API guide](../guides/api.md) explains the",
        "routes with examples.",
        "",
        "## Routes",
        "",
        "| Method and path | What |",
        "|---|---|",
    ]
    operations = [
        (path, method, op)
        for path, item in schema.get("paths", {}).items()
        for method, op in item.items()
        if method in {"get", "put", "post", "delete", "patch"}
    ]
    for path, method, op in operations:
        anchor = _operation_anchor(path, method)
        lines.append(f"| [`{method.upper()} {path}`](#{anchor}) | {_cell(_what(op))} |")
    lines.append("")
    for path, method, op in operations:
        lines += _operation(path, method, op)
    schemes = schema.get("components", {}).get("securitySchemes", {})
    if schemes:
        lines += ["## Authentication", "", "| Scheme | Kind | Meaning |", "|---|---|---|"]
        for name, scheme in schemes.items():
            kind = scheme.get("scheme") or f"{scheme.get('in', '')} `{scheme.get('name', '')}`"
            lines.append(
                f"| `{name}` | {_cell(str(scheme.get('type', '')) + ' ' + kind)} "
                f"| {_cell(scheme.get('description', ''))} |"
            )
        lines.append("")
    lines += ["## Schemas", ""]
    for name, component in sorted(schema.get("components", {}).get("schemas", {}).items()):
        lines += _schema_section(name, component)
    return "\n".join(lines)


# -- MkDocs -------------------------------------------------------------------------------------


def on_files(files: Any, config: Any) -> Any:
    """Add the generated pages (and the OpenAPI document) to the site's files."""
    from mkdocs.structure.files import File

    # Building the app may import TensorFlow: keep its start-up banners out of the build log.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    schema = openapi_schema()
    generated = {
        CONFIGURATION_PAGE: configuration_page(),
        CLI_PAGE: cli_page(),
        HTTP_API_PAGE: http_api_page(schema),
        OPENAPI_FILE: json.dumps(schema, indent=2),
    }
    for path, content in generated.items():
        existing = files.get_file_from_path(path)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, path, content=content))
    return files
