"""/docs, /redoc and /openapi.json: every asset served locally, labelled in the metrics, and
Swagger UI renders in Chromium with every request off this host refused."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.conftest import make_settings
from tests.app.test_metrics import parse, value
from tests.live_server import live_server

# What a page fetches: src=, href=, ReDoc's spec-url=, Swagger UI's url: '...'.
REFERENCES = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|url:\s*'([^']+)'""")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    # No model needed: the pages and the document do not depend on one.
    model_dir = tmp_path_factory.mktemp("no-models")
    with TestClient(create_app(make_settings(model_dir))) as c:
        yield c


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_pages_reference_only_local_assets(client: TestClient, page: str) -> None:
    r = client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "http://" not in r.text and "https://" not in r.text, "a CDN URL remains"
    references = [a or b for a, b in REFERENCES.findall(r.text)]
    assert "/openapi.json" in references
    assert len(references) >= 3  # the script, the style or favicon, the document
    for ref in references:
        assert ref.startswith("/") and not ref.startswith("//"), ref
        asset = client.get(ref)
        assert asset.status_code == 200, ref
        assert len(asset.content) > 100, ref


def test_swagger_ui_is_not_sent_to_the_online_validator(client: TestClient) -> None:
    assert '"validatorUrl": null' in client.get("/docs").text


def test_openapi_document_and_docs_are_labelled_in_the_metrics(client: TestClient) -> None:
    document = client.get("/openapi.json")
    assert document.status_code == 200 and "/classify" in document.json()["paths"]
    client.get("/docs")
    client.get("/docs/assets/swagger-ui.css")
    client.get("/docs/assets/no-such-file.js")
    samples = parse(client.get("/metrics").text)
    name = "textcls_http_requests_total"
    assert value(samples, name, route="/openapi.json", method="GET", status="200") >= 1
    assert value(samples, name, route="/docs", method="GET", status="200") >= 1
    assert value(samples, name, route="/docs/assets", method="GET", status="200") >= 1
    assert value(samples, name, route="/docs/assets", method="GET", status="404") == 1
    unmatched = [k for k in samples if k[0] == name and ("route", "<unmatched>") in k[1]]
    assert not unmatched


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def live_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app = create_app(make_settings(tmp_path_factory.mktemp("no-models-live")))
    with live_server(app, ready_path="/healthz") as url:
        yield url


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine")
def test_swagger_ui_renders_with_the_network_cut_off(live_url: str) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    refused: list[str] = []

    def offline(route: object) -> None:
        request_url = route.request.url  # type: ignore[attr-defined]
        if request_url.startswith(live_url + "/"):
            route.continue_()  # type: ignore[attr-defined]
        else:
            refused.append(request_url)
            route.abort()  # type: ignore[attr-defined]

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.route("**/*", offline)
            page.goto(f"{live_url}/docs")
            title = page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
            assert title is not None and "textcls" in title.inner_text()
            # The operations are listed: the document was fetched and rendered.
            page.wait_for_selector("text=/classify", timeout=30_000)
        finally:
            browser.close()
    assert refused == [], f"/docs tried to load from off this host: {refused}"


def test_docs_assets_come_from_an_installed_package() -> None:
    from app.edge.routes.docs import ASSETS_DIR

    assert isinstance(ASSETS_DIR, Path)
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        assert (ASSETS_DIR / name).stat().st_size > 10_000
