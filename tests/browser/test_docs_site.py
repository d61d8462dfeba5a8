"""The documentation site in Chromium: the built home page and a guide open, render their
navigation and code, and fetch nothing from outside the site (no web fonts, no CDN scripts)."""

from __future__ import annotations

import functools
import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import VIEWPORT
from tests.docs.snippets import REPO

pytestmark = pytest.mark.browser

TIMEOUT_MS = 15_000


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mkdocs build --strict`` into a temporary folder, served over HTTP on a free port (the
    site's search fetches its index, which a file:// page cannot)."""
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    handler = functools.partial(QuietHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def page(browser: Any, site_url: str) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    outside: list[str] = []

    def only_the_site(route: Any) -> None:
        if route.request.url.startswith(site_url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_site)
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    yield p
    context.close()
    assert not outside, f"the site fetched from outside itself: {outside}"
    assert not errors, f"JavaScript errors: {errors}"


def test_home_page_opens_and_leads_to_the_guides(page: Any, site_url: str) -> None:
    page.goto(f"{site_url}/")
    assert page.title().startswith("textcls")
    page.locator("h1", has_text="textcls").wait_for()
    # Material's navigation lists every section of the site.
    nav = page.locator("nav.md-nav--primary")
    for section in ("Get started", "Guides", "Reference", "Results"):
        assert nav.get_by_text(section, exact=True).count() >= 1, section
    page.locator("article a", has_text="Install and first request").first.click()
    page.wait_for_url(f"{site_url}/get-started/")
    page.locator("h1", has_text="Install and first request").wait_for()
    assert page.locator("pre code", has_text="make run").count() >= 1


def test_a_guide_renders_its_tables_code_and_search(page: Any, site_url: str) -> None:
    page.goto(f"{site_url}/guides/api/")
    page.locator("h1", has_text="The API").wait_for()
    assert page.locator("article table").count() >= 3
    assert page.locator("pre code", has_text="tritonclient.grpc").count() == 1
    # Search works offline: its index comes from the site itself.
    search = page.locator("input.md-search__input")
    search.click()
    search.press_sequentially("canary", delay=50)
    page.locator(".md-search-result__item").first.wait_for()
    # The generated configuration reference is linked and filled in.
    page.goto(f"{site_url}/reference/configuration/")
    assert page.locator("code", has_text="TEXTCLS_MAX_BATCH_SIZE").count() >= 1
