"""The review page at /ui/: static files shipped in the package, no CDN."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

UI_DIR = Path(__file__).resolve().parent / "ui"
PATH = "/ui"


def mount_review_page(app: FastAPI) -> None:
    """Serve app/edge/ui/ at /ui/ (index.html for /ui/). The files hold no data and no key: the
    page asks for the API key and sends it with every /explain, /review and /feedback call."""
    # html=True: /ui/ answers index.html, and /ui redirects to /ui/.
    app.mount(PATH, StaticFiles(directory=UI_DIR, html=True), name="ui")
