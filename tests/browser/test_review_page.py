"""The review page in Chromium against a live server: sign in, try a text, label the queue.

Every request the page makes to anywhere but the server is blocked and recorded, so the test
also proves the page works on a closed network. With ``TEXTCLS_UI_SCREENSHOTS=<dir>`` set,
a screenshot of each view is saved there (the docs' pictures: ``docs/images/``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.predlog.tables import Feedback
from tests.browser.conftest import API_KEY, VIEWPORT, LiveServer

pytestmark = pytest.mark.browser

SCREENSHOTS_ENV = "TEXTCLS_UI_SCREENSHOTS"
QUEUE_TEXTS = [
    "I ordered a lamp three weeks ago and it still has not arrived",
    "hello?",
    "my card was stolen yesterday, please block it",
    "我的银行卡丢了，怎么办",
    "can I get my money back for the broken chair",
]
TIMEOUT_MS = 15_000


def screenshot(page: Any, name: str) -> None:
    folder = os.environ.get(SCREENSHOTS_ENV)
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"review-{name}.png"))


@pytest.fixture(scope="module")
def seeded(live_server: LiveServer) -> LiveServer:
    """Predictions in the log for the queue (two requests, so two timestamps)."""
    live_server.post("/classify", {"texts": QUEUE_TEXTS[:3]})
    time.sleep(0.01)
    live_server.post("/classify", {"texts": QUEUE_TEXTS[3:]})
    writer = live_server.app.state.services.log_writer
    assert writer.flush(10)
    return live_server


@pytest.fixture
def page(browser: Any, seeded: LiveServer) -> Iterator[Any]:
    # A reviewer far from UTC: the page still shows times in UTC, as its date filter reads.
    context = browser.new_context(viewport=VIEWPORT, locale="en-GB", timezone_id="Asia/Shanghai")
    context.set_default_timeout(TIMEOUT_MS)
    outside: list[str] = []

    def only_the_server(route: Any) -> None:
        if route.request.url.startswith(seeded.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_server)
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    yield p
    context.close()
    assert not outside, f"the page fetched from outside the server: {outside}"
    assert not errors, f"JavaScript errors: {errors}"


def sign_in(page: Any, url: str) -> None:
    page.goto(f"{url}/ui/")
    page.fill("#api-key", "not-the-key")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#login-error:has-text('refused')")
    screenshot(page, "login")
    page.fill("#api-key", API_KEY)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#view-try:not([hidden])")


def test_try_a_text_and_see_its_highlighted_words(page: Any, seeded: LiveServer) -> None:
    sign_in(page, seeded.url)
    text = "I still haven't received my new card"
    page.fill("#try-text", text)
    page.click("#try-submit")
    page.wait_for_selector("#try-result:not([hidden])")
    expected = seeded.post("/explain", {"text": text})
    assert page.inner_text("#try-label") == expected["label"]
    assert page.inner_text("#try-confidence") == f"{expected['confidence'] * 100:.1f}%"
    assert page.locator("#try-ranking tr").count() == len(expected["ranking"])
    assert page.inner_text("#try-highlight") == text
    strongest = max(expected["tokens"], key=lambda t: t["weight"])
    highlighted = page.locator("#try-highlight .tok.pos")
    assert highlighted.count() >= 1
    assert strongest["text"] in highlighted.all_inner_texts()
    screenshot(page, "try")


def test_label_a_queued_item_and_find_the_feedback_row(page: Any, seeded: LiveServer) -> None:
    sign_in(page, seeded.url)
    page.click(".tab[data-view=queue]")
    page.wait_for_selector("#queue .item")
    items = page.locator("#queue .item")
    assert items.count() == len(QUEUE_TEXTS)
    # Explanations arrive one by one; wait until every item shows its weights.
    page.wait_for_function(
        "[...document.querySelectorAll('#queue .item')].every(i => i.querySelector('.tok'))"
    )
    assert page.locator("#queue .item .badge.priority.fallback").count() >= 1
    for shown in page.locator("#queue .item .when").all_inner_texts():
        logged = datetime.strptime(shown, "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=UTC)
        assert abs(datetime.now(UTC) - logged) < timedelta(minutes=10), shown
    screenshot(page, "queue")
    first = items.nth(0)
    request_id, index = first.get_attribute("data-request-id"), first.get_attribute("data-index")
    predicted = first.locator("strong.predicted").inner_text()
    choice = first.locator(".picker button:not(.predicted)").first
    label = choice.inner_text()
    assert label != predicted
    choice.click()
    first.locator(".saved:not([hidden])").wait_for()
    assert first.locator(".saved").inner_text() == f"saved: {label}"
    with Session(seeded.app.state.services.log_writer.engine) as session:
        rows = session.execute(
            select(Feedback.label, Feedback.source).where(
                Feedback.request_id == request_id, Feedback.index == int(index or -1)
            )
        ).all()
    assert [tuple(r) for r in rows] == [(label, "api")]

    page.click(".tab[data-view=stats]")
    row = page.locator(f"#stats tr[data-label='{predicted}']")
    row.wait_for()
    cells = row.locator("td").all_inner_texts()
    assert cells[3:5] == ["1", "1"]  # reviewed, disagreed
    assert cells[5].strip().endswith("100.0%")
    screenshot(page, "feedback")
