"""POST /feedback on the real app: 201, 404, 422, newest wins, and feedback_total counted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from fastapi.testclient import TestClient

from app.main import create_app
from app.predlog.engine import create_db_engine
from app.predlog.feedback import feedback_history
from app.predlog.migrate import upgrade
from tests.app.conftest import add_version_copy, make_settings, wait_ready
from tests.app.predlog.backends import db_url, postgres_url  # noqa: F401  (fixtures)
from tests.app.predlog.factories import make_record
from tests.app.test_metrics import parse, value
from training.artifact import METADATA_FILE, read_metadata


def test_feedback_round_trip(db_url: str, tiny_model_repo: Path, tmp_path: Path) -> None:  # noqa: F811
    engine = create_db_engine(db_url)
    upgrade(engine)  # the server migrates SQLite itself; PostgreSQL is migrated by an operator
    settings = make_settings(
        tiny_model_repo,
        log_predictions=True,
        database_url=db_url,
        log_spill_path=tmp_path / "spill.jsonl",
    )
    labels = read_metadata(tiny_model_repo / "example" / "1").labels
    with TestClient(create_app(settings)) as c:
        wait_ready(c)
        answer = c.post("/classify", json={"texts": ["I lost my card", "refund please"]}).json()
        rid, predicted = answer["request_id"], answer["predictions"][1]["label"]
        wrong = next(label for label in labels if label != predicted)
        # Sent at once: the row may still be in the writer's queue; the route waits for it.
        first = c.post("/feedback", json={"request_id": rid, "index": 1, "label": wrong})
        assert first.status_code == 201, first.text
        body = first.json()
        assert body["label"] == wrong and body["predicted_label"] == predicted
        assert body["correct"] is False and (body["model"], body["version"]) == ("example", 1)
        again = c.post("/feedback", json={"request_id": rid, "index": 1, "label": predicted})
        assert again.status_code == 201 and again.json()["correct"] is True
        assert again.json()["id"] > body["id"]

        assert (
            c.post("/feedback", json={"request_id": rid, "index": 2, "label": wrong}).status_code
            == 404
        )
        unknown = c.post("/feedback", json={"request_id": "nope", "index": 0, "label": wrong})
        assert unknown.status_code == 404 and "nope" in unknown.json()["detail"]
        bad_label = c.post("/feedback", json={"request_id": rid, "index": 0, "label": "zzz"})
        assert bad_label.status_code == 422 and "zzz" in bad_label.json()["detail"]
        assert (
            c.post("/feedback", json={"request_id": rid, "index": -1, "label": wrong}).status_code
            == 422
        )
        assert c.post("/feedback", json={"request_id": rid, "label": wrong}).status_code == 422
        # Found by schemathesis: an index past 64 bits was an OverflowError in the driver (500).
        for index in (19960564091300921344, 2**63, 100_000):
            huge = c.post("/feedback", json={"request_id": rid, "index": index, "label": wrong})
            assert huge.status_code == 422, huge.text
            assert "less than 100000" in huge.text
        metrics = parse(c.get("/metrics").text)
    assert feedback_history(engine, rid, 1) == [wrong, predicted]
    assert feedback_history(engine, rid, 0) == []
    assert value(metrics, "textcls_feedback_total", model="example", correct="false") == 1
    assert value(metrics, "textcls_feedback_total", model="example", correct="true") == 1
    engine.dispose()


def test_labels_of_a_version_not_served_come_from_its_metadata(
    tiny_model_repo: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    shutil.copytree(tiny_model_repo, models)
    v2 = add_version_copy(models, "example", 1, 2)
    meta = json.loads((v2 / METADATA_FILE).read_text())
    old_name = meta["labels"][0]
    meta["labels"][0] = "renamed_in_v2"
    (v2 / METADATA_FILE).write_text(json.dumps(meta))
    settings = make_settings(
        models,
        log_predictions=True,
        pinned_versions={"example": 1},  # version 2 is on disk but not served
        database_url=f"sqlite:///{tmp_path / 'log.db'}",
        log_spill_path=tmp_path / "spill.jsonl",
    )
    app = create_app(settings)
    with TestClient(app) as c:
        wait_ready(c)
        writer = app.state.services.log_writer
        writer.submit([make_record(request_id="by-v2", version=2, label=meta["labels"][1])])
        assert writer.flush(10)
        ok = c.post("/feedback", json={"request_id": "by-v2", "index": 0, "label": "renamed_in_v2"})
        assert ok.status_code == 201, ok.text
        bad = c.post("/feedback", json={"request_id": "by-v2", "index": 0, "label": old_name})
        assert bad.status_code == 422 and "version 2" in bad.json()["detail"]


def test_feedback_without_the_prediction_log_is_503(tiny_model_repo: Path) -> None:
    with TestClient(create_app(make_settings(tiny_model_repo))) as c:
        r = c.post("/feedback", json={"request_id": "r", "index": 0, "label": "x"})
    assert r.status_code == 503 and "TEXTCLS_LOG_PREDICTIONS" in r.json()["detail"]
