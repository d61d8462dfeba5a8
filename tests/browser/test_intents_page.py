"""The review page's New intents view in Chromium: name a group, map one, dismiss one; each
decision ends in the right feedback and intent_cluster rows; bad decisions are 4xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.predlog.intents import FoundGroup, store_groups
from app.predlog.tables import Feedback, IntentCluster
from tests.browser.conftest import API_KEY, VIEWPORT, LiveServer
from tests.browser.test_review_page import TIMEOUT_MS, screenshot, sign_in

pytestmark = pytest.mark.browser

STOLEN = [f"my card was stolen {w}, block it" for w in ("today", "at the bar", "on the bus")]
PROMO = [f"the promo code {c} does not work" for c in ("SAVE10", "WELCOME", "SPRING")]
NOISE = ["asdf qwer", "hmm", "ok ok ok"]


@pytest.fixture(scope="module")
def groups(live_server: LiveServer) -> dict[str, Any]:
    """Three logged groups stored as `textcls intents discover` stores them."""
    keys: dict[str, list[tuple[str, int]]] = {}
    for name, texts in (("stolen", STOLEN), ("promo", PROMO), ("noise", NOISE)):
        answer = live_server.post("/classify", {"texts": texts})
        keys[name] = [(answer["request_id"], i) for i in range(len(texts))]
    services = live_server.app.state.services
    assert services.log_writer.flush(10)
    # A reviewer labelled one stolen-card text already: naming the group keeps that label.
    labels = services.repository.entries["example"].serving.model.labels
    first = keys["stolen"][0]
    live_server.post("/feedback", {"request_id": first[0], "index": first[1], "label": labels[0]})
    found = [
        FoundGroup(
            members=keys[name],
            examples=texts,
            terms=terms,
            nearest_label=labels[0],
            nearest_similarity=0.42,
        )
        for name, texts, terms in (
            ("stolen", STOLEN, ["stolen", "block"]),
            ("promo", PROMO, ["promo", "code"]),
            ("noise", NOISE, ["ok"]),
        )
    ]
    engine = services.log_writer.engine
    ids = store_groups(engine, "example", space="tfidf", groups=found)
    return {
        "ids": dict(zip(("stolen", "promo", "noise"), ids, strict=True)),
        "keys": keys,
        "labels": labels,
        "engine": engine,
    }


@pytest.fixture
def page(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT, locale="en-GB")
    context.set_default_timeout(TIMEOUT_MS)
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    yield p
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def _feedback(engine: Any, keys: list[tuple[str, int]]) -> list[tuple[str, int, str, str]]:
    with Session(engine) as session:
        rows = session.execute(
            select(Feedback.request_id, Feedback.index, Feedback.label, Feedback.source)
            .where(Feedback.request_id.in_({r for r, _ in keys}))
            .order_by(Feedback.id)
        ).all()
    return [tuple(r) for r in rows if (r[0], r[1]) in set(keys)]  # type: ignore[misc]


def _status(engine: Any, intent_id: int) -> tuple[str, str | None]:
    with Session(engine) as session:
        row = session.get(IntentCluster, intent_id)
        assert row is not None
        return row.status, row.label


def test_name_map_and_dismiss_in_the_page(
    page: Any, live_server: LiveServer, groups: dict[str, Any]
) -> None:
    ids, engine, labels = groups["ids"], groups["engine"], groups["labels"]
    sign_in(page, live_server.url)
    page.click(".tab[data-view=intents]")
    page.wait_for_selector("#intents .intent")
    assert page.locator("#intents .intent").count() == 3
    stolen = page.locator(f"#intents .intent[data-intent='{ids['stolen']}']")
    assert stolen.locator(".examples li").all_inner_texts() == STOLEN
    assert "stolen" in stolen.locator(".terms").inner_text()
    screenshot(page, "intents")

    # A name the model has already is refused in the page, and nothing is written.
    stolen.locator(".new-label").fill(labels[0])
    stolen.locator(".name-form button").click()
    stolen.locator(".item-error:has-text('exists already')").wait_for()
    assert _status(engine, ids["stolen"]) == ("open", None)

    stolen.locator(".new-label").fill("card_stolen")
    stolen.locator(".name-form button").click()
    stolen.locator(".saved:not([hidden])").wait_for()
    assert stolen.locator(".saved").inner_text() == "named card_stolen: 2 texts labelled"
    assert _status(engine, ids["stolen"]) == ("named", "card_stolen")
    first, *rest = groups["keys"]["stolen"]
    rows = _feedback(engine, groups["keys"]["stolen"])
    assert (first[0], first[1], labels[0], "api") in rows
    assert sorted(r for r in rows if r[3] == "intents") == sorted(
        (r, i, "card_stolen", "intents") for r, i in rest
    )

    promo = page.locator(f"#intents .intent[data-intent='{ids['promo']}']")
    promo.locator(".map-label").select_option(labels[1])
    promo.locator(".map-form button").click()
    promo.locator(".saved:not([hidden])").wait_for()
    assert _status(engine, ids["promo"]) == ("mapped", labels[1])
    assert {r[2:] for r in _feedback(engine, groups["keys"]["promo"])} == {(labels[1], "intents")}

    noise = page.locator(f"#intents .intent[data-intent='{ids['noise']}']")
    noise.locator(".dismiss").click()
    noise.locator(".saved:not([hidden])").wait_for()
    assert _status(engine, ids["noise"]) == ("dismissed", None)
    assert _feedback(engine, groups["keys"]["noise"]) == []

    page.reload()
    page.click(".tab[data-view=intents]")
    page.wait_for_selector("#intents li.muted")
    assert page.locator("#intents .intent").count() == 0


def test_bad_decisions_are_4xx(live_server: LiveServer, groups: dict[str, Any]) -> None:
    headers = {"X-API-Key": API_KEY}
    url = f"{live_server.url}/review/intents"
    listed = httpx.get(url, headers=headers).json()
    assert {i["id"] for i in listed["intents"]} >= set(groups["ids"].values())
    assert listed["labels"]["example"] == groups["labels"]
    cases = [
        (f"{url}/999999", {"action": "dismiss"}, 404),
        (f"{url}/0", {"action": "dismiss"}, 422),
        (f"{url}/{groups['ids']['stolen']}", {"action": "rename", "label": "x"}, 422),
        (f"{url}/{groups['ids']['stolen']}", {"action": "name"}, 422),
        (f"{url}/{groups['ids']['stolen']}", {"action": "name", "label": " padded "}, 422),
        (f"{url}/{groups['ids']['stolen']}", {"action": "map", "label": "no_such_label"}, 422),
        (f"{url}/{groups['ids']['stolen']}", {"action": "dismiss", "label": "x"}, 422),
        (f"{url}/{groups['ids']['stolen']}", {"action": "dismiss", "extra": 1}, 422),
    ]
    for target, body, status in cases:
        r = httpx.post(target, json=body, headers=headers)
        assert r.status_code == status, (body, r.text)
        assert r.json()["detail"]
    assert httpx.get(url).status_code == 401
    # Decided once: a second decision is a conflict.
    assert httpx.post(
        f"{url}/{groups['ids']['stolen']}", json={"action": "dismiss"}, headers=headers
    ).status_code in (200, 409)
    again = httpx.post(
        f"{url}/{groups['ids']['stolen']}", json={"action": "dismiss"}, headers=headers
    )
    assert again.status_code == 409, again.text
