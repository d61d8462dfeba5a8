"""/docs (Swagger UI), /redoc and /openapi.json, with every asset served from this process.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so /docs is blank without a network
(an air-gapped cluster, a laptop on a train). This is FastAPI's self-hosting recipe with the
assets of ``fastapi-offline`` (a maintained package that ships Swagger UI 5 and ReDoc 2; the
older ``swagger-ui-bundle`` ships Swagger UI 4, which cannot render OpenAPI 3.1).

The routes are plain Starlette routes defined here, not FastAPI's: the HTTP metrics label a
request by its route, and FastAPI's built-in docs routes are not visible to them, so /docs and
/openapi.json were counted as ``<unmatched>``.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

ASSETS_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
OPENAPI_PATH = "/openapi.json"
ASSETS_PATH = "/docs/assets"


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


async def openapi(request: Request) -> Response:
    """The OpenAPI document, built once by FastAPI and cached on the app (as FastAPI serves it,
    behind a proxy's root path included)."""
    app = request.app
    root = _root(request)
    if root and app.root_path_in_servers and {"url": root} not in app.servers:
        app.servers.insert(0, {"url": root})
    return JSONResponse(app.openapi())


async def swagger_ui(request: Request) -> HTMLResponse:
    root = _root(request)
    return get_swagger_ui_html(
        openapi_url=root + OPENAPI_PATH,
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
        oauth2_redirect_url=None,  # the API's schemes are keys, not OAuth2
        # Off: Swagger UI would send the document's URL to an online validator.
        swagger_ui_parameters={"validatorUrl": None, **(request.app.swagger_ui_parameters or {})},
    )


async def redoc(request: Request) -> HTMLResponse:
    root = _root(request)
    return get_redoc_html(
        openapi_url=root + OPENAPI_PATH,
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
        with_google_fonts=False,
    )


def docs_routes() -> list[BaseRoute]:
    """The routes to add to the app (created with ``docs_url=None, openapi_url=None``)."""
    return [
        Route(OPENAPI_PATH, openapi, methods=["GET"], include_in_schema=False),
        Route("/docs", swagger_ui, methods=["GET"], include_in_schema=False),
        Route("/redoc", redoc, methods=["GET"], include_in_schema=False),
        Mount(ASSETS_PATH, StaticFiles(directory=ASSETS_DIR), name="docs-assets"),
    ]
