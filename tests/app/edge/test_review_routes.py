"""GET /review/queue, /review/stats, /review/versions through the app, and the /ui/ files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.edge.review_page import UI_DIR
from app.main import create_app
from tests.app.live_service import make_settings, wait_ready

KEY = {"X-API-Key": "review-key"}


@pytest.fixture(scope="module")
def client(tiny_model_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = make_settings(
        tmp_path_factory.mktemp("review"), tiny_model_repo, api_keys="ui:review-key"
    )
    with TestClient(create_app(settings)) as c:
        wait_ready(c)
        r = c.post(
            "/classify",
            json={"texts": ["my card never arrived", "hello", "refund please"]},
            headers=KEY,
        )
        assert r.status_code == 200
        c.app.state.services.log_writer.flush(5)  # type: ignore[attr-defined]
        yield c


def test_queue_lists_logged_predictions_with_their_label_set(client: TestClient) -> None:
    body = client.get("/review/queue?order=newest", headers=KEY).json()
    assert body["total"] == 3
    items = body["items"]
    # order=newest: fallbacks first, then low confidence, then the rest.
    ranks = {"fallback": 0, "low_confidence": 1, "other": 2}
    assert [ranks[i["priority"]] for i in items] == sorted(ranks[i["priority"]] for i in items)
    assert {i["text"] for i in items} == {"my card never arrived", "hello", "refund please"}
    first = items[0]
    assert first["fallback"] == (first["priority"] == "fallback")
    assert first["ranking"][0] == {"label": first["label"], "confidence": first["confidence"]}
    (label_set,) = body["label_sets"]
    assert (label_set["model"], label_set["version"]) == ("example", 1)
    assert "lost_card" in label_set["labels"]


def test_default_order_ranks_by_teaching_value(client: TestClient) -> None:
    body = client.get("/review/queue", headers=KEY).json()
    items = body["items"]
    assert body["total"] == 3 and len(items) == 3
    scores = [i["score"] for i in items]
    assert all(s is not None for s in scores) and scores == sorted(scores, reverse=True)
    margins = [i["ranking"][0]["confidence"] - i["ranking"][1]["confidence"] for i in items]
    assert margins == sorted(margins)  # no duplicates here: the closest call first
    assert all(i["duplicates"] == 1 for i in items)
    assert client.get("/review/queue?order=oldest", headers=KEY).status_code == 422


def test_feedback_moves_an_item_out_of_pending_and_into_the_stats(client: TestClient) -> None:
    item = client.get("/review/queue", headers=KEY).json()["items"][0]
    other = next(x for x in ["lost_card", "refund_status"] if x != item["label"])
    r = client.post(
        "/feedback",
        json={"request_id": item["request_id"], "index": item["index"], "label": other},
        headers=KEY,
    )
    assert r.status_code == 201, r.text
    pending = client.get("/review/queue", headers=KEY).json()
    assert pending["total"] == 2
    reviewed = client.get("/review/queue", params={"status": "reviewed"}, headers=KEY).json()
    assert [(i["request_id"], i["corrected_label"]) for i in reviewed["items"]] == [
        (item["request_id"], other)
    ]
    stats = client.get("/review/stats", headers=KEY).json()
    assert (stats["predictions"], stats["reviewed"], stats["disagreed"]) == (3, 1, 1)
    assert stats["disagreement_rate"] == 1.0
    row = next(s for s in stats["labels"] if s["label"] == item["label"])
    assert (row["reviewed"], row["disagreed"], row["disagreement_rate"]) == (1, 1, 1.0)
    assert next(s for s in stats["labels"] if s["label"] == other)["corrected_to"] == 1


def test_filters(client: TestClient) -> None:
    get = lambda **q: client.get("/review/queue", params=q, headers=KEY).json()  # noqa: E731
    assert get(status="all", model="example", version=1)["total"] == 3
    assert get(status="all", model="other")["total"] == 0
    assert get(status="all", since="2999-01-01T00:00:00Z")["total"] == 0
    assert get(status="all", until="2000-01-01")["total"] == 0
    label = get(status="all")["items"][0]["label"]
    assert all(i["label"] == label for i in get(status="all", label=label)["items"])
    versions = client.get("/review/versions", headers=KEY).json()["versions"]
    assert versions == [{"model": "example", "version": 1, "predictions": 3, "served": True}]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/review/queue", {"limit": 0}),
        ("/review/queue", {"limit": 201}),
        ("/review/queue", {"offset": -1}),
        ("/review/queue", {"status": "done"}),
        ("/review/queue", {"low_confidence": 2}),
        ("/review/queue", {"since": "yesterday"}),
        ("/review/queue", {"since": "2026-01-02", "until": "2026-01-01"}),
        ("/review/queue", {"label": "a\x00b"}),
        ("/review/queue", {"until": "9999-12-31T23:59:59-05:00"}),
        ("/review/stats", {"version": 0}),
        ("/review/stats", {"model": ""}),
    ],
)
def test_bad_filters_are_422_with_a_message(
    client: TestClient, path: str, params: dict[str, object]
) -> None:
    r = client.get(path, params=params, headers=KEY)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]


def test_review_routes_need_the_api_key(client: TestClient) -> None:
    for path in ("/review/queue", "/review/stats", "/review/versions"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"X-API-Key": "wrong"}).status_code == 401


def test_without_the_prediction_log_the_review_routes_are_503(tiny_model_repo: Path) -> None:
    settings = make_settings(Path("/nonexistent"), tiny_model_repo, log_predictions=False)
    with TestClient(create_app(settings)) as c:
        wait_ready(c)
        r = c.get("/review/queue")
        assert r.status_code == 503 and "TEXTCLS_LOG_PREDICTIONS" in r.json()["detail"]


def test_the_page_is_served_with_local_assets_only(client: TestClient) -> None:
    r = client.get("/ui", follow_redirects=False)
    assert r.status_code in (307, 308) and r.headers["location"].endswith("/ui/")
    page = client.get("/ui/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for asset in ("app.js", "style.css"):
        assert client.get(f"/ui/{asset}").status_code == 200
    for path in UI_DIR.iterdir():
        text = path.read_text(encoding="utf-8")
        assert "http://" not in text and "https://" not in text, path.name  # no CDN
